"""Holds: money owed to a contributor that must not be paid out yet (a dispute, a compliance check).

A hold is modelled as accounts, not as a flag: placing it moves the amount from the contributor's payable
account to their hold account (debit payable, credit hold), so "available to pay" is simply the payable
balance and the held money stays a visible liability. Releasing posts the exact negation, linked to the
hold through ``reverses``; the one-to-one link makes a second release impossible at the database.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction

from royalties.ledger.errors import LedgerValidationError, ReversalError
from royalties.ledger.models import Account, JournalEntry, Period
from royalties.ledger.selectors import account_balance
from royalties.ledger.services.accounts import account_get_or_create
from royalties.ledger.services.common import as_currency, as_int, as_user, utc_today
from royalties.ledger.services.entries import PostingLine, journal_entry_post, journal_entry_reverse


@transaction.atomic
def hold_place(
    *,
    contributor: Any,
    currency: str,
    amount_micros: int,
    reason: str,
    idempotency_key: str,
    created_by: Any = None,
    created_by_label: str = "",
    period: Period | dt.date | None = None,
) -> JournalEntry:
    """Hold back ``amount_micros`` of what the contributor is owed (at most their payable balance)."""
    amount_micros = as_int(amount_micros, "amount_micros")
    if amount_micros <= 0:
        raise LedgerValidationError("amount_micros must be > 0", field="amount_micros")
    if not isinstance(reason, str) or not reason.strip():
        raise LedgerValidationError("reason must say why the money is held", field="reason")
    currency = as_currency(currency)
    created_by = as_user(created_by)
    payable = account_get_or_create(kind=Account.Kind.CONTRIBUTOR_PAYABLE, currency=currency, contributor=contributor)
    hold = account_get_or_create(kind=Account.Kind.HOLD, currency=currency, contributor=contributor)
    existing = JournalEntry.objects.filter(idempotency_key=idempotency_key).first()
    if existing is None:
        # Lock the payable account so a concurrent payout or hold cannot spend the same balance.
        Account.objects.select_for_update().filter(pk=payable.pk).first()
        owed = -account_balance(account=payable)
        if amount_micros > owed:
            raise LedgerValidationError(
                f"amount_micros {amount_micros} exceeds the payable balance {owed}", field="amount_micros"
            )
    return journal_entry_post(
        kind=JournalEntry.Kind.HOLD, period=period or utc_today(), idempotency_key=idempotency_key,
        memo=f"Hold: {reason}", lines=[PostingLine(payable, amount_micros), PostingLine(hold, -amount_micros)],
        created_by=created_by, created_by_label=created_by_label,
        metadata={"reason": reason, "contributor_id": payable.contributor_id, "currency": currency},
    )


@transaction.atomic
def hold_release(
    *,
    hold_entry: JournalEntry,
    reason: str,
    created_by: Any = None,
    created_by_label: str = "",
    period: Period | dt.date | None = None,
) -> JournalEntry:
    """Release a hold whole, back to the payable account; releasing it again returns the same entry."""
    if not isinstance(hold_entry, JournalEntry) or hold_entry.kind != JournalEntry.Kind.HOLD:
        raise LedgerValidationError("hold_entry must be a hold entry", field="hold_entry")
    if not isinstance(reason, str) or not reason.strip():
        raise ReversalError("reason must say why the hold is released", field="reason")
    return journal_entry_reverse(
        entry=hold_entry, kind=JournalEntry.Kind.HOLD_RELEASE, idempotency_key=f"hold-release:{hold_entry.pk}",
        memo=f"Hold released: {reason}", created_by=created_by, created_by_label=created_by_label,
        period=period or utc_today(),
        metadata={"reason": reason, "hold_entry_id": hold_entry.pk,
                  "contributor_id": hold_entry.metadata.get("contributor_id")},
    )
