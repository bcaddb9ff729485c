"""manage.py revoke_api_key: refuse every later request made with a key."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from attribution.models import ApiKey
from attribution.services.api_keys import api_key_revoke


class Command(BaseCommand):
    help = "Revoke an API key by its prefix (the 12 characters after 'rk_'); it stops working at once."

    def add_arguments(self, parser) -> None:
        parser.add_argument("prefix")
        parser.add_argument("--reason", default="", help="Why, for the audit trail.")

    def handle(self, *args, prefix: str, reason: str, **options) -> None:
        prefix = prefix.removeprefix("rk_").split("_", 1)[0]
        api_key = ApiKey.objects.filter(prefix=prefix).first()
        if api_key is None:
            raise CommandError(f"no API key with prefix {prefix!r}")
        if api_key.revoked_at is not None:
            self.stdout.write(f"{api_key} was already revoked at {api_key.revoked_at:%Y-%m-%d %H:%M} UTC")
            return
        api_key = api_key_revoke(api_key=api_key, actor_label="command:revoke_api_key", reason=reason)
        self.stdout.write(self.style.SUCCESS(f"revoked {api_key}"))
