from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts.roles import ROLES, role_grant


class Command(BaseCommand):
    help = "Give a user (by e-mail) one of the roles: " + ", ".join(ROLES)

    def add_arguments(self, parser) -> None:
        parser.add_argument("email")
        parser.add_argument("role", choices=ROLES)

    def handle(self, *args, email: str, role: str, **options) -> None:
        user = get_user_model().objects.filter(email__iexact=email).first()
        if user is None:
            raise CommandError(f"no user with e-mail {email!r}")
        role_grant(user=user, role=role)
        self.stdout.write(self.style.SUCCESS(f"{email} now has the role {role}"))
