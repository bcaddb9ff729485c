"""Load the demo: the people of each role with a fixed, printed password. Idempotent."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.roles import CATALOG_ADMIN, CONTRIBUTOR, FINANCE, role_grant, user_has_role

DEMO_PASSWORD = "demo-royalties-2026"  # noqa: S105 - printed on purpose; only ever used by the demo
DEMO_PEOPLE = [
    ("ada@demo.example", CONTRIBUTOR, "Contributor"),
    ("finance.a@demo.example", FINANCE, "Finance user A (creates payout runs)"),
    ("finance.b@demo.example", FINANCE, "Finance user B (approves them)"),
    ("catalog@demo.example", CATALOG_ADMIN, "Catalog admin"),
]


class Command(BaseCommand):
    help = "Create (or refresh) the demo data; safe to run again."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", default="8000")

    def handle(self, *args, host: str, port: str, **options) -> None:
        User = get_user_model()
        with transaction.atomic():
            for email, role, _label in DEMO_PEOPLE:
                user, created = User.objects.get_or_create(username=email, defaults={"email": email})
                if created:
                    user.set_password(DEMO_PASSWORD)
                    user.save()
                if not user_has_role(user, role):
                    role_grant(user=user, role=role)
                self.stdout.write(f"  {'created' if created else 'kept'} {email} ({role})")
        self.stdout.write(self.style.SUCCESS(f"\nThe platform will be at http://{host}:{port}/"))
        self.stdout.write(f"Logins (password for all: {DEMO_PASSWORD}):")
        for email, _role, label in DEMO_PEOPLE:
            self.stdout.write(f"  {label:40s} {email}")
