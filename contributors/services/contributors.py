"""Contributor profiles: one per user account, created at sign-up together with the contributor role."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.roles import CONTRIBUTOR, role_grant, user_has_role
from audit.services import audit_record, audit_snapshot
from contributors.countries import COUNTRIES
from contributors.models import Contributor

_PROFILE_FIELDS = ["display_name", "legal_name", "country"]


def _clean_profile(*, display_name: str, legal_name: str, country: str) -> dict[str, str]:
    display_name = (display_name or "").strip()
    legal_name = (legal_name or "").strip()
    country = (country or "").strip().upper()
    if not display_name:
        raise ValidationError({"display_name": "Enter the name to show on your works."}, code="required")
    max_length = Contributor._meta.get_field("display_name").max_length
    if len(display_name) > max_length:
        raise ValidationError({"display_name": f"Use at most {max_length} characters."}, code="max_length")
    if len(legal_name) > Contributor._meta.get_field("legal_name").max_length:
        raise ValidationError({"legal_name": "The legal name is too long."}, code="max_length")
    if country and country not in COUNTRIES:
        raise ValidationError({"country": f"{country!r} is not an ISO 3166-1 alpha-2 country code."}, code="country")
    return {"display_name": display_name, "legal_name": legal_name, "country": country}


@transaction.atomic
def contributor_register(
    *, user: Any, display_name: str, legal_name: str = "", country: str = "", actor: Any = None
) -> Contributor:
    """Create the user's contributor profile and give them the contributor role (sign-up calls this)."""
    values = _clean_profile(display_name=display_name, legal_name=legal_name, country=country)
    if Contributor.objects.filter(user=user).exists():
        raise ValidationError({"user": "This account already has a contributor profile."}, code="exists")
    contributor = Contributor.objects.create(user=user, **values)
    if not user_has_role(user, CONTRIBUTOR):
        role_grant(user=user, role=CONTRIBUTOR, actor=actor or user)
    audit_record(
        action="contributor.create", obj=contributor, actor=actor or user,
        after=audit_snapshot(contributor, fields=["user_id", *_PROFILE_FIELDS]),
    )
    return contributor


@transaction.atomic
def contributor_ensure(*, user: Any) -> Contributor:
    """The user's contributor profile, created on first use for contributors made by ``grant_role``."""
    existing = Contributor.objects.filter(user=user).first()
    if existing is not None:
        return existing
    display_name = (user.get_full_name() or (user.email or "").split("@")[0] or user.get_username())[:200]
    return contributor_register(user=user, display_name=display_name, actor=user)


@transaction.atomic
def contributor_update(
    *, contributor: Contributor, actor: Any, display_name: str, legal_name: str, country: str
) -> Contributor:
    """Change a contributor's names or country; the payout status belongs to the payouts app."""
    values = _clean_profile(display_name=display_name, legal_name=legal_name, country=country)
    contributor = Contributor.objects.select_for_update().get(pk=contributor.pk)
    before = audit_snapshot(contributor, fields=_PROFILE_FIELDS)
    for name, value in values.items():
        setattr(contributor, name, value)
    after = audit_snapshot(contributor, fields=_PROFILE_FIELDS)
    if before != after:
        contributor.save(update_fields=[*_PROFILE_FIELDS, "updated_at"])
        audit_record(action="contributor.update", obj=contributor, actor=actor, before=before, after=after)
    return contributor
