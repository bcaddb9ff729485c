"""Mirrors of Stripe transfers and connected-account payouts, written from fresh reads of Stripe."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.services import audit_record, audit_snapshot
from payouts import stripe_client
from payouts.models import BankPayout, ConnectedAccount, StripeTransfer
from payouts.services._util import from_unix, from_unix_required

_TRANSFER_TRACKED = ["amount_minor", "amount_reversed_minor", "reversed", "currency", "destination_account_id",
                     "transfer_group"]


def _id_of(value: Any) -> str:
    """An expandable field's id, whether Stripe sent the id or the expanded object."""
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def stripe_transfer_apply(*, data: dict[str, Any], read_at: dt.datetime, actor: Any = None,
                          reason: str = "") -> StripeTransfer:
    """Create or update the mirror of a Stripe Transfer (a plain dict read at ``read_at``).

    The payout-run code calls this with the transfer it just created, and webhooks call it with a fresh
    read; whichever read is newer wins. A change of the reversed amount is audited: it takes money back.
    """
    with transaction.atomic():
        existing = StripeTransfer.objects.select_for_update().filter(stripe_transfer_id=data["id"]).first()
        if existing is not None and existing.stripe_synced_at > read_at:
            return existing
        created = existing is None
        row = existing or StripeTransfer(stripe_transfer_id=data["id"])
        before = None if created else audit_snapshot(row, fields=_TRANSFER_TRACKED)
        row.destination_account_id = _id_of(data.get("destination"))
        row.amount_minor = int(data["amount"])
        row.amount_reversed_minor = int(data.get("amount_reversed") or 0)
        row.currency = str(data["currency"]).lower()
        row.reversed = bool(data.get("reversed"))
        row.transfer_group = data.get("transfer_group") or ""
        row.metadata = dict(data.get("metadata") or {})
        row.balance_transaction_id = _id_of(data.get("balance_transaction"))
        row.stripe_created_at = from_unix_required(data["created"])
        row.stripe_synced_at = read_at
        row.save()
        after = audit_snapshot(row, fields=_TRANSFER_TRACKED)
        if created:
            audit_record(action="stripe_transfer.record", obj=row, actor=actor, actor_label="" if actor else "stripe",
                         after=after, reason=reason)
        elif before is not None and before != after:
            action = ("stripe_transfer.reversal" if before["amount_reversed_minor"] != row.amount_reversed_minor
                      else "stripe_transfer.update")
            audit_record(action=action, obj=row, actor=actor, actor_label="" if actor else "stripe", before=before,
                         after=after, reason=reason)
    return row


def stripe_transfer_sync(*, transfer_id: str, actor: Any = None, reason: str = "",
                         max_retries: int | None = None) -> StripeTransfer:
    """Re-read a transfer from Stripe and mirror it."""
    read_at = timezone.now()
    transfer = stripe_client.transfer_retrieve(transfer_id=transfer_id, max_retries=max_retries)
    return stripe_transfer_apply(data=transfer.to_dict(), read_at=read_at, actor=actor, reason=reason)


def bank_payout_apply(*, data: dict[str, Any], account_id: str, read_at: dt.datetime,
                      reason: str = "") -> BankPayout | None:
    """Mirror a connected account's payout to its bank; None when the account is not one of ours."""
    with transaction.atomic():
        account = ConnectedAccount.objects.filter(stripe_account_id=account_id).first()
        if account is None:
            return None
        row = BankPayout.objects.select_for_update().filter(stripe_payout_id=data["id"]).first()
        if row is not None and row.stripe_synced_at > read_at:
            return row
        old_status = row.status if row else None
        row = row or BankPayout(stripe_payout_id=data["id"], connected_account=account)
        row.amount_minor = int(data["amount"])
        row.currency = str(data["currency"]).lower()
        row.status = str(data.get("status") or "")
        row.failure_code = data.get("failure_code") or ""
        row.failure_message = (data.get("failure_message") or "")[:500]
        row.arrival_date = from_unix(data.get("arrival_date"))
        row.stripe_created_at = from_unix_required(data["created"])
        row.stripe_synced_at = read_at
        row.save()
        if old_status != row.status:
            audit_record(action=f"bank_payout.{row.status or 'unknown'}", obj=row, actor_label="stripe",
                         before={"status": old_status} if old_status else None,
                         after=audit_snapshot(row, fields=["stripe_payout_id", "amount_minor", "currency", "status",
                                                           "failure_code", "failure_message"]),
                         reason=reason)
    return row
