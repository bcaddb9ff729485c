from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.roles import CONTRIBUTOR, ROLES, role_grant, role_revoke


class Command(BaseCommand):
    help = "Give a user (by e-mail) one of the roles: " + ", ".join(ROLES) + " (or take it away with --revoke)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("email")
        parser.add_argument("role", choices=ROLES)
        parser.add_argument("--revoke", action="store_true", help="take the role away instead")

    def handle(self, *args, email: str, role: str, revoke: bool = False, **options) -> None:
        user = get_user_model().objects.filter(email__iexact=email).first()
        if user is None:
            raise CommandError(f"no user with e-mail {email!r}")
        if revoke:
            role_revoke(user=user, role=role, actor="command:grant_role")
            self.stdout.write(self.style.SUCCESS(f"{email} no longer has the role {role}"))
            return
        with transaction.atomic():
            role_grant(user=user, role=role)
            if role == CONTRIBUTOR:
                # A contributor needs a profile to own works; sign-up makes one, this command does too.
                from contributors.services import contributor_ensure

                contributor_ensure(user=user)
        self.stdout.write(self.style.SUCCESS(f"{email} now has the role {role}"))
