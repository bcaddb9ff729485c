"""What a fresh read of a Stripe transfer means for our payout: confirmation, and reversals.

Called from the transfer webhooks (``transfer.created``/``updated``/``reversed``), inside the transaction
that marks the event processed, so the effect and the "processed" mark commit together, once:

- a payout still ``sending`` (its worker died after Stripe answered) is booked from the webhook, exactly as
  the worker would have booked it;
- each reversal on the transfer posts one entry (Stripe clearing -> payable, key ``payout-return:<trr id>``)
  that puts the amount back on the contributor's balance; a replayed event finds the entries and adds none.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from payouts.models import Payout
from payouts.money import minor_to_micros
from payouts.services.execution import payout_run_finalize, payout_settle
from payouts.services.runs import utc_today
from royalties.ledger.models import Account, JournalEntry
from royalties.ledger.services import PostingLine, account_get_or_create, journal_entry_post

logger = logging.getLogger(__name__)

ACTOR_LABEL = "stripe"


def payout_return_key(reversal_id: str) -> str:
    return f"payout-return:{reversal_id}"


def _payout_for(transfer: dict[str, Any]) -> Payout | None:
    by_transfer = Payout.objects.select_for_update().filter(stripe_transfer_id=transfer["id"]).first()
    if by_transfer is not None:
        return by_transfer
    # Not booked yet: the payout the transfer names, if it is the attempt in flight.
    metadata = transfer.get("metadata") or {}
    payout_id = str(metadata.get("payout_id") or "")
    if not payout_id.isdigit():
        return None
    payout = Payout.objects.select_for_update().filter(pk=int(payout_id)).first()
    if payout is None or str(metadata.get("attempt") or "1") != str(payout.attempt):
        return None
    return payout


def payout_return_post(*, payout: Payout, reversal: dict[str, Any]) -> JournalEntry | None:
    """Book one Stripe transfer reversal of a paid payout (once per reversal id); None if already booked."""
    key = payout_return_key(reversal["id"])
    if JournalEntry.objects.filter(idempotency_key=key).exists():
        return None
    amount_micros = minor_to_micros(amount_minor=int(reversal["amount"]), currency=payout.currency)
    payable = account_get_or_create(kind=Account.Kind.CONTRIBUTOR_PAYABLE, currency=payout.currency,
                                    contributor=payout.contributor_id)
    clearing = account_get_or_create(kind=Account.Kind.STRIPE_CLEARING, currency=payout.currency)
    return journal_entry_post(
        kind=JournalEntry.Kind.PAYOUT_RETURN, period=utc_today(), idempotency_key=key,
        memo=f"Stripe reversed {reversal['amount']} of transfer {payout.stripe_transfer_id} (payout #{payout.pk})",
        lines=[PostingLine(clearing, amount_micros), PostingLine(payable, -amount_micros)],
        created_by_label=ACTOR_LABEL,
        metadata={"payout_id": payout.pk, "run_id": payout.run_id, "contributor_id": payout.contributor_id,
                  "currency": payout.currency, "stripe_transfer_id": payout.stripe_transfer_id,
                  "stripe_reversal_id": reversal["id"], "amount_minor": int(reversal["amount"])},
    )


def payout_apply_transfer(*, transfer: dict[str, Any], read_at: dt.datetime, reason: str = "") -> str:
    """Apply a fresh read of a transfer to its payout; returns a short outcome for the event row."""
    with transaction.atomic():
        payout = _payout_for(transfer)
        if payout is None:
            return "no payout of ours"
        if payout.status == Payout.Status.SENDING:
            payout = payout_settle(payout_id=payout.pk, transfer=transfer, read_at=read_at,
                                   reason=reason or "transfer confirmed by a Stripe webhook")
            payout = Payout.objects.select_for_update().get(pk=payout.pk)
            payout_run_finalize(run_id=payout.run_id)  # it may have been the run's last payout in doubt
        if not payout.is_settled:
            return f"payout #{payout.pk} is {payout.status}"
        reversals = sorted((transfer.get("reversals") or {}).get("data") or [], key=lambda r: (r["created"], r["id"]))
        booked = [r for r in reversals if payout_return_post(payout=payout, reversal=r) is not None]
        reversed_minor = sum(int(r["amount"]) for r in reversals)
        if int(transfer.get("amount_reversed") or 0) != reversed_minor:
            # Stripe lists at most ten reversals inline; the fetch pages the rest in, so this is a bug.
            raise ValueError(f"transfer {transfer['id']}: reversals list {reversed_minor} but amount_reversed is "
                             f"{transfer.get('amount_reversed')}")
        if reversed_minor != payout.amount_reversed_minor:
            before = {"status": payout.status, "amount_reversed_minor": payout.amount_reversed_minor}
            payout.amount_reversed_minor = reversed_minor
            if reversed_minor == payout.amount_minor:
                payout.status = Payout.Status.REVERSED
            payout.save(update_fields=["amount_reversed_minor", "status", "updated_at"])
            audit_record(action="payout.reversed", obj=payout, actor_label=ACTOR_LABEL, before=before,
                         after={"status": payout.status, "amount_reversed_minor": reversed_minor,
                                "reversals": [r["id"] for r in booked]},
                         reason=reason)
        logger.info("payout %s: transfer %s, %s reversed (%d new reversal entries) at %s", payout.pk,
                    transfer["id"], reversed_minor, len(booked), timezone.now())
        return f"payout #{payout.pk} {payout.status}, {reversed_minor} reversed"
