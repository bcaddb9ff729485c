"""``manage.py demo_totp EMAIL``: the current TOTP code of a demo staff user, as their authenticator would show it.

Only for the demo's own people (addresses at the demo domain): their secrets are fixed and printed by
``manage.py demo``; nobody else's secret is ever read.
"""

from __future__ import annotations

import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from demo.corpus import DEMO_DOMAIN


class Command(BaseCommand):
    help = "Print the current TOTP code of a demo staff user (finance.a@demo.example, ...): demo only."

    def add_arguments(self, parser) -> None:
        parser.add_argument("email", help=f"a demo staff address (…@{DEMO_DOMAIN})")

    def handle(self, *args, email: str, **options) -> None:
        from demo.services.people import demo_totp_code, demo_totp_secret_of

        email = email.strip().lower()
        if not email.endswith(f"@{DEMO_DOMAIN}"):
            raise CommandError(f"{email!r} is not a demo address (…@{DEMO_DOMAIN}): only the demo's codes are shown")
        user = get_user_model().objects.filter(username=email).first()
        if user is None:
            raise CommandError(f"no demo user {email!r}: run `manage.py demo` first")
        secret = demo_totp_secret_of(user=user)
        if secret is None:
            raise CommandError(f"{email} has no authenticator enrolled (contributors sign in without one)")
        code, left = demo_totp_code(secret=secret, at=time.time())
        self.stdout.write(f"{code}  (valid for {left} more second{'s' if left != 1 else ''})")
