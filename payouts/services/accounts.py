"""Contributor onboarding to Stripe Connect: the Express account, its onboarding links, and its status."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from audit.services import audit_record, audit_snapshot
from contributors.models import Contributor
from payouts import stripe_client
from payouts.models import ConnectedAccount
from payouts.services._util import from_unix

# The fields whose change is worth an audit line (requirements and capability changes move money).
_TRACKED = [
    "details_submitted", "charges_enabled", "payouts_enabled", "transfers_capability", "requirements_due",
    "requirements_pending_verification", "requirements_deadline", "disabled_reason",
]


def _copy_stripe_state(row: ConnectedAccount, data: dict[str, Any]) -> None:
    """Copy what we keep of a Stripe Account object (a plain dict) onto our row."""
    requirements = data.get("requirements") or {}
    capabilities = data.get("capabilities") or {}
    due = set(requirements.get("currently_due") or []) | set(requirements.get("past_due") or [])
    row.country = data.get("country") or row.country
    row.default_currency = data.get("default_currency") or row.default_currency
    row.details_submitted = bool(data.get("details_submitted"))
    row.charges_enabled = bool(data.get("charges_enabled"))
    row.payouts_enabled = bool(data.get("payouts_enabled"))
    transfers = capabilities.get("transfers")
    row.transfers_capability = (
        transfers if transfers in ConnectedAccount.Capability.values else ConnectedAccount.Capability.UNREQUESTED
    )
    row.requirements_due = sorted(due)
    row.requirements_pending_verification = sorted(requirements.get("pending_verification") or [])
    row.requirements_deadline = from_unix(requirements.get("current_deadline"))
    row.disabled_reason = requirements.get("disabled_reason") or ""


def _contributor_status_sync(*, row: ConnectedAccount, actor: Any, reason: str) -> None:
    """Keep ``Contributor.payout_status`` equal to what the account's Stripe state means (audited)."""
    new = row.payout_status
    old = Contributor.objects.filter(pk=row.contributor_id).values_list("payout_status", flat=True).first()
    if old == new:
        return
    Contributor.objects.filter(pk=row.contributor_id).update(payout_status=new, updated_at=timezone.now())
    audit_record(action="contributor.payout_status_change", object_type="contributors.contributor",
                 object_id=row.contributor_id, actor=actor, actor_label="" if actor else "stripe",
                 before={"payout_status": old}, after={"payout_status": new}, reason=reason)


def connected_account_get_or_create(*, contributor: Contributor, actor: Any = None) -> ConnectedAccount:
    """The contributor's connected account, creating it on Stripe first if there is none (idempotent)."""
    existing = ConnectedAccount.objects.filter(contributor=contributor).first()
    if existing is not None:
        return existing
    read_at = timezone.now()
    # Outside any transaction: the Stripe call may take seconds. Its key is the contributor's id, so two
    # concurrent clicks get the same Stripe account, and the unique contributor column keeps one row.
    account = stripe_client.account_create(contributor_id=contributor.pk, country=contributor.country)
    data = account.to_dict()
    with transaction.atomic():
        row, created = ConnectedAccount.objects.get_or_create(
            contributor=contributor, defaults={"stripe_account_id": data["id"]}
        )
        if not created:
            return row
        _copy_stripe_state(row, data)
        row.stripe_synced_at = read_at
        row.save()
        audit_record(action="payout_account.create", obj=row, actor=actor,
                     after=audit_snapshot(row, fields=["stripe_account_id", "contributor_id", *_TRACKED]),
                     reason="contributor started Stripe onboarding")
        _contributor_status_sync(row=row, actor=actor, reason="Stripe account created")
    return row


def connected_account_onboarding_link(*, connected_account: ConnectedAccount) -> str:
    """A fresh Account Link URL (they are single-use and expire within minutes, so one per visit)."""
    site = settings.SITE_URL.rstrip("/")
    link = stripe_client.account_link_create(
        account_id=connected_account.stripe_account_id,
        refresh_url=site + reverse("payout_account:refresh"),
        return_url=site + reverse("payout_account:return"),
        # Our row id plus a nonce: retries of this call share the key, the next visit gets a new link.
        key=stripe_client.idempotency_key("account-link", connected_account.pk, uuid.uuid4().hex),
    )
    return str(link.url)


def connected_account_apply(*, data: dict[str, Any], read_at: dt.datetime, actor: Any = None,
                            reason: str = "") -> ConnectedAccount | None:
    """Store a Stripe Account read at ``read_at``; None if it is not one of ours.

    An older read never overwrites a newer one, so webhooks processed out of order (or concurrently with the
    contributor's return from Stripe) always leave the latest state behind.
    """
    with transaction.atomic():
        row = ConnectedAccount.objects.select_for_update().filter(stripe_account_id=data.get("id")).first()
        if row is None:
            return None
        if row.stripe_synced_at and row.stripe_synced_at > read_at:
            return row
        before = audit_snapshot(row, fields=_TRACKED)
        _copy_stripe_state(row, data)
        row.stripe_synced_at = read_at
        row.save()
        after = audit_snapshot(row, fields=_TRACKED)
        if before != after:
            audit_record(action="payout_account.update", obj=row, actor=actor,
                         actor_label="" if actor else "stripe", before=before, after=after, reason=reason)
        _contributor_status_sync(row=row, actor=actor, reason=reason or "Stripe account updated")
    return row


def connected_account_sync(*, connected_account: ConnectedAccount, actor: Any = None, reason: str = "",
                           max_retries: int | None = None) -> ConnectedAccount:
    """Re-read the account from Stripe and store its state."""
    read_at = timezone.now()
    account = stripe_client.account_retrieve(account_id=connected_account.stripe_account_id,
                                             max_retries=max_retries)
    row = connected_account_apply(data=account.to_dict(), read_at=read_at, actor=actor, reason=reason)
    return row or connected_account
