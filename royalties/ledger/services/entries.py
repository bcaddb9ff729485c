"""Posting journal entries: the only way money enters the ledger.

An entry is written whole or not at all (one transaction), only if its postings balance in every currency,
only into an open period, and only once per idempotency key: a replay with the same key and the same
content returns the entry already written, a replay with different content is refused.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction

from royalties.ledger.errors import (
    IdempotencyConflictError,
    LedgerValidationError,
    ReversalError,
    UnbalancedEntryError,
)
from royalties.ledger.hashing import AccrualTuple, entry_content_hash
from royalties.ledger.models import Account, Accrual, JournalEntry, Period, Posting
from royalties.ledger.services.common import actor_label, as_int, as_user, audit, bulk_insert, chunks
from royalties.ledger.services.periods import period_lock_open, period_resolve

# Kinds that carry a ``reverses`` link: their postings are exactly the negation of the linked entry's.
REVERSING_KINDS = {JournalEntry.Kind.REVERSAL, JournalEntry.Kind.HOLD_RELEASE}


@dataclass(frozen=True, slots=True)
class PostingLine:
    """One line to post: a signed amount in micro-units (debit +, credit -) on an account."""

    account: Account | int
    amount_micros: int


@dataclass(frozen=True)
class _Prepared:
    kind: str
    period: Period
    key: str
    lines: list[tuple[int, int]]
    accruals: list[AccrualTuple]
    content_hash: str


def _normalise_lines(lines: Sequence[PostingLine | tuple[Any, Any]]) -> list[tuple[int, int]]:
    if isinstance(lines, str | bytes) or not hasattr(lines, "__len__"):
        raise LedgerValidationError("lines must be a sequence of PostingLine", field="lines")
    if not lines:
        raise LedgerValidationError("an entry needs at least two postings; lines is empty", field="lines")
    out = []
    for i, line in enumerate(lines):
        if isinstance(line, PostingLine):
            account, amount = line.account, line.amount_micros
        elif isinstance(line, tuple) and len(line) == 2:
            account, amount = line
        else:
            raise LedgerValidationError(f"lines[{i}] must be a PostingLine, got {line!r}", field=f"lines[{i}]")
        account_id = as_int(getattr(account, "pk", account), f"lines[{i}].account")
        amount = as_int(amount, f"lines[{i}].amount_micros")
        if amount == 0:
            raise LedgerValidationError(f"lines[{i}].amount_micros is 0; a posting moves money",
                                        field=f"lines[{i}].amount_micros")
        out.append((account_id, amount))
    return out


def _check_balanced(lines: list[tuple[int, int]]) -> None:
    """Refuse unknown accounts and entries that do not sum to zero in each currency."""
    account_ids = sorted({a for a, _ in lines})
    currency_of: dict[int, str] = {}
    for part in chunks(account_ids):
        currency_of.update(Account.objects.filter(pk__in=list(part)).values_list("id", "currency"))
    for i, (account_id, _) in enumerate(lines):
        if account_id not in currency_of:
            raise LedgerValidationError(f"lines[{i}].account: account {account_id} does not exist",
                                        field=f"lines[{i}].account")
    sums: dict[str, int] = defaultdict(int)
    for account_id, amount in lines:
        sums[currency_of[account_id]] += amount
    unbalanced = {c: s for c, s in sorted(sums.items()) if s != 0}
    if unbalanced:
        detail = ", ".join(f"{c} off by {s:+d} micros" for c, s in unbalanced.items())
        raise UnbalancedEntryError(f"entry does not balance: {detail} (debits must equal credits)", field="lines")


def _check_common(kind: str, idempotency_key: str, memo: str, metadata: Any) -> dict:
    if kind not in JournalEntry.Kind.values:
        raise LedgerValidationError(
            f"kind must be one of {', '.join(JournalEntry.Kind.values)}, got {kind!r}", field="kind"
        )
    if not isinstance(idempotency_key, str) or not idempotency_key.strip() or len(idempotency_key) > 200:
        raise LedgerValidationError("idempotency_key must be a non-empty string of at most 200 characters",
                                    field="idempotency_key")
    if not isinstance(memo, str):
        raise LedgerValidationError("memo must be a string", field="memo")
    metadata = {} if metadata is None else metadata
    if not isinstance(metadata, dict):
        raise LedgerValidationError("metadata must be a dict", field="metadata")
    try:
        return json.loads(json.dumps(metadata, cls=DjangoJSONEncoder))
    except (TypeError, ValueError) as exc:
        raise LedgerValidationError(f"metadata must be JSON-serialisable: {exc}", field="metadata") from exc


def _existing(key: str, content_hash: str) -> JournalEntry | None:
    """The entry already posted under ``key`` if its content matches; a conflict if it does not."""
    entry = JournalEntry.objects.filter(idempotency_key=key).select_related("period").first()
    if entry is None:
        return None
    if entry.content_hash != content_hash:
        raise IdempotencyConflictError(
            f"idempotency key {key!r} was already used by entry #{entry.pk} with different content; "
            "use a new key, or reverse that entry and post a correction",
            field="idempotency_key",
        )
    return entry


def entry_write(
    prepared: _Prepared,
    *,
    memo: str,
    created_by: Any,
    created_by_label: str,
    reverses: JournalEntry | None,
    metadata: dict,
    accrual_period_ids: dict[dt.date, int] | None = None,
) -> JournalEntry:
    """Write a prepared, validated entry (idempotently). Callers hold an open transaction."""
    existing = _existing(prepared.key, prepared.content_hash)
    if existing is not None:
        return existing
    period = period_lock_open(prepared.period)
    label = actor_label(created_by, created_by_label)
    try:
        with transaction.atomic():
            entry = JournalEntry.objects.create(
                kind=prepared.kind, period=period, idempotency_key=prepared.key,
                content_hash=prepared.content_hash, memo=memo, created_by=created_by,
                created_by_label=label, reverses=reverses, metadata=metadata,
            )
    except IntegrityError:
        # A concurrent poster won the key (or the reversal link): theirs is the entry if it is the same.
        existing = _existing(prepared.key, prepared.content_hash)
        if existing is not None:
            return existing
        if reverses is not None:
            raise ReversalError(f"entry #{reverses.pk} has already been reversed", field="entry") from None
        raise
    bulk_insert(Posting, ["entry", "account", "amount_micros"], [(entry.pk, a, m) for a, m in prepared.lines])
    if prepared.accruals:
        period_ids = accrual_period_ids or {}
        bulk_insert(
            Accrual,
            ["journal_entry", "period", "program", "contributor", "work", "amount_micros", "baseline_micros",
             "attributed_micros", "generation_count", "ownership_bps"],
            [(entry.pk, period_ids[row[0]], *row[1:]) for row in prepared.accruals],
        )
    debits = sum(m for _, m in prepared.lines if m > 0)
    audit(
        action=f"ledger.entry.{prepared.kind}", obj=entry, actor=created_by, actor_label=label,
        after={
            "idempotency_key": prepared.key, "period": period.day, "postings": len(prepared.lines),
            "debits_micros": debits, "accrual_rows": len(prepared.accruals),
            "reverses": reverses.pk if reverses else None, "content_hash": prepared.content_hash,
        },
        reason=memo,
    )
    return entry


def entry_prepare(
    *,
    kind: str,
    period: Period | dt.date,
    idempotency_key: str,
    lines: list[tuple[int, int]],
    reverses: JournalEntry | None,
    accruals: list[AccrualTuple] | None = None,
) -> _Prepared:
    period = period_resolve(period)
    _check_balanced(lines)
    accruals = accruals or []
    content_hash = entry_content_hash(
        kind=kind, period_day=period.day, reverses_id=reverses.pk if reverses else None, lines=lines,
        accruals=accruals,
    )
    return _Prepared(kind=kind, period=period, key=idempotency_key, lines=lines, accruals=accruals,
                     content_hash=content_hash)


def _negation_lines(entry: JournalEntry) -> list[tuple[int, int]]:
    return [(a, -m) for a, m in entry.postings.order_by("id").values_list("account_id", "amount_micros")]


def _check_reversal_shape(kind: str, reverses: JournalEntry | None, lines: list[tuple[int, int]]) -> None:
    if reverses is None:
        if kind in REVERSING_KINDS:
            raise LedgerValidationError(f"a {kind} entry must name the entry it reverses", field="reverses")
        return
    if kind not in REVERSING_KINDS:
        raise LedgerValidationError(f"only {', '.join(sorted(REVERSING_KINDS))} entries may reverse another",
                                    field="reverses")
    if not isinstance(reverses, JournalEntry) or reverses.pk is None:
        raise LedgerValidationError("reverses must be a saved journal entry", field="reverses")
    if kind == JournalEntry.Kind.HOLD_RELEASE and reverses.kind != JournalEntry.Kind.HOLD:
        raise ReversalError(f"only a hold can be released; entry #{reverses.pk} is a {reverses.kind}",
                            field="reverses")
    if reverses.kind in REVERSING_KINDS:
        raise ReversalError(
            f"entry #{reverses.pk} is itself a {reverses.kind}; post a new entry instead of reversing it",
            field="reverses",
        )
    if sorted(lines) != sorted(_negation_lines(reverses)):
        raise LedgerValidationError(
            f"a {kind} must negate exactly the postings of entry #{reverses.pk}", field="lines"
        )


@transaction.atomic
def journal_entry_post(
    *,
    kind: str,
    period: Period | dt.date,
    idempotency_key: str,
    memo: str,
    lines: Sequence[PostingLine],
    created_by: Any = None,
    created_by_label: str = "",
    reverses: JournalEntry | None = None,
    metadata: dict | None = None,
) -> JournalEntry:
    """Post one balanced entry; the same key with the same content returns the existing entry."""
    metadata = _check_common(kind, idempotency_key, memo, metadata)
    if kind == JournalEntry.Kind.ACCRUAL:
        # An accrual without its detail would be money nobody can explain.
        raise LedgerValidationError("accruals are posted with accrual_post, which writes their detail too",
                                    field="kind")
    created_by = as_user(created_by)
    normalised = _normalise_lines(lines)
    _check_reversal_shape(kind, reverses, normalised)
    if reverses is not None and reverses.accruals.exists():
        raise LedgerValidationError(
            "an entry with accrual detail is reversed with journal_entry_reverse, which negates the detail too",
            field="reverses",
        )
    prepared = entry_prepare(kind=kind, period=period, idempotency_key=idempotency_key, lines=normalised,
                             reverses=reverses)
    return entry_write(prepared, memo=memo, created_by=created_by, created_by_label=created_by_label,
                       reverses=reverses, metadata=metadata)


@transaction.atomic
def journal_entry_reverse(
    *,
    entry: JournalEntry,
    idempotency_key: str | None = None,
    memo: str = "",
    created_by: Any = None,
    created_by_label: str = "",
    period: Period | dt.date | None = None,
    kind: str = JournalEntry.Kind.REVERSAL,
    metadata: dict | None = None,
) -> JournalEntry:
    """Post the exact negation of ``entry`` (postings and accrual detail), at most once per entry.

    The reversal goes into ``period`` (default: the original's period, which must still be open; a closed
    day is corrected in the current period). Its key defaults to ``reversal:<entry id>``.
    """
    if not isinstance(entry, JournalEntry) or entry.pk is None:
        raise LedgerValidationError("entry must be a saved journal entry", field="entry")
    entry = JournalEntry.objects.select_related("period").get(pk=entry.pk)
    key = idempotency_key or f"{kind}:{entry.pk}"
    memo = memo or f"Reversal of entry #{entry.pk} ({entry.kind})"
    metadata = _check_common(kind, key, memo, metadata)
    created_by = as_user(created_by)
    if kind not in REVERSING_KINDS:
        raise LedgerValidationError(f"kind must be one of {', '.join(sorted(REVERSING_KINDS))}", field="kind")
    lines = _negation_lines(entry)
    _check_reversal_shape(kind, entry, lines)
    accruals: list[AccrualTuple] = []
    period_ids: dict[dt.date, int] = {}
    for row in entry.accruals.select_related("period").order_by("id"):
        period_ids[row.period.day] = row.period_id
        accruals.append((row.period.day, row.program_id, row.contributor_id, row.work_id, -row.amount_micros,
                         -row.baseline_micros, -row.attributed_micros, -row.generation_count, row.ownership_bps))
    prepared = entry_prepare(kind=kind, period=period if period is not None else entry.period,
                             idempotency_key=key, lines=lines, reverses=entry, accruals=accruals)
    existing = JournalEntry.objects.filter(reverses=entry).first()
    if existing is not None and existing.idempotency_key != key:
        raise ReversalError(f"entry #{entry.pk} was already reversed by entry #{existing.pk}", field="entry")
    return entry_write(
        prepared, memo=memo, created_by=created_by, created_by_label=created_by_label, reverses=entry,
        metadata=metadata, accrual_period_ids=period_ids,
    )
