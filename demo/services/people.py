"""The demo people: a fixed, printed password, verified addresses, roles, and staff TOTP with fixed secrets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from accounts.roles import CONTRIBUTOR, STAFF_ROLES, role_grant, user_has_role
from demo.corpus import DEMO_PASSWORD, DEMO_PEOPLE, demo_totp_secret

ACTOR = "command:demo"
Say = Callable[[str], None]


def demo_totp_activate(*, user: Any, secret: str) -> bool:
    """Enrol ``user``'s authenticator with the demo secret unless one is enrolled; True when enrolled now."""
    from allauth.mfa.models import Authenticator
    from allauth.mfa.totp.internal.auth import TOTP

    if Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
        return False
    TOTP.activate(user, secret)
    return True


def demo_totp_secret_of(*, user: Any) -> str | None:
    """The TOTP secret enrolled for ``user`` (as allauth stores it, decrypted by its adapter), or None."""
    from allauth.mfa.models import Authenticator
    from allauth.mfa.utils import decrypt

    authenticator = Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).first()
    if authenticator is None:
        return None
    return decrypt(authenticator.data["secret"])


def demo_totp_code(*, secret: str, at: float) -> tuple[str, int]:
    """The code an authenticator app shows at time ``at`` for ``secret``, and the seconds it stays valid."""
    from allauth.mfa import app_settings
    from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value

    period = app_settings.TOTP_PERIOD
    return format_hotp_value(hotp_value(secret, int(at) // period)), period - int(at) % period


def demo_otpauth_uri(*, email: str, secret: str) -> str:
    """The ``otpauth://`` URI an authenticator app scans (as a QR code) or accepts pasted."""
    from urllib.parse import quote

    from django.conf import settings

    issuer = getattr(settings, "MFA_TOTP_ISSUER", "") or "Contributor Royalties"
    return f"otpauth://totp/{quote(issuer)}:{quote(email)}?secret={secret}&issuer={quote(issuer)}"


def demo_people_ensure(*, say: Say) -> dict[str, Any]:
    """Create (or keep) every demo person; returns users by e-mail. Contributors get their profile."""
    from allauth.account.models import EmailAddress

    from contributors.models import Contributor
    from contributors.services import contributor_register

    User = get_user_model()
    users: dict[str, Any] = {}
    for person in DEMO_PEOPLE:
        with transaction.atomic():
            user, created = User.objects.get_or_create(username=person.email, defaults={"email": person.email})
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save(update_fields=["password"])
            # Demo addresses receive no mail: mark them verified so mandatory verification lets them in.
            EmailAddress.objects.update_or_create(
                user=user, email=person.email, defaults={"verified": True, "primary": True}
            )
            if person.role == CONTRIBUTOR:
                if not Contributor.objects.filter(user=user).exists():
                    contributor_register(user=user, display_name=person.display_name, country=person.country,
                                         actor=ACTOR)
            elif not user_has_role(user, person.role):
                role_grant(user=user, role=person.role)
            enrolled = person.role in STAFF_ROLES and demo_totp_activate(
                user=user, secret=demo_totp_secret(person.email))
        users[person.email] = user
        what = "created" if created else "kept"
        say(f"  {what} {person.email} ({person.role}){', TOTP enrolled' if enrolled else ''}")
    return users
