"""Posting a day's royalty accrual: one balanced entry per (program, day), with the detail that explains it.

The entry debits the program's royalty expense and credits each contributor's payable once (their rows
aggregated); the ``Accrual`` rows beside it say which works, how much of it was baseline, and how many
generations. Idempotent by ``accrual:<program>:<YYYY-MM-DD>``: running the night twice posts nothing new.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from django.db import transaction

from royalties.ledger.errors import IdempotencyConflictError, LedgerValidationError
from royalties.ledger.hashing import AccrualTuple
from royalties.ledger.models import Account, Accrual, JournalEntry, Period, RoyaltyProgram
from royalties.ledger.selectors import accrual_entry_current, accrual_key, period_is_open, program_terms_for
from royalties.ledger.services.accounts import account_get_or_create, accounts_for_contributors
from royalties.ledger.services.common import as_int, as_user, chunks, utc_today
from royalties.ledger.services.entries import entry_prepare, entry_write, journal_entry_reverse
from royalties.ledger.services.periods import period_resolve

ACCRUAL_COLUMNS = ["contributor_id", "work_id", "amount_micros", "generation_count", "baseline_micros"]
# Optional sixth column: the contributor's ownership of the work in basis points, kept for statements.
OWNERSHIP_COLUMN = "ownership_bps"


def _allocation_arrays(allocations: Any) -> dict[str, np.ndarray]:
    """Accept a DataFrame (ACCRUAL_COLUMNS [+ ownership_bps]) or an iterable of such tuples; int64 arrays out.

    A missing ownership is stored as NULL; in the arrays it is 0 (never a valid share).
    """
    if isinstance(allocations, pd.DataFrame):
        missing = [c for c in ACCRUAL_COLUMNS if c not in allocations.columns]
        if missing:
            raise LedgerValidationError(f"allocations lacks column(s) {', '.join(missing)}", field="allocations")
        cols = {c: allocations[c].to_numpy() for c in ACCRUAL_COLUMNS}
        cols[OWNERSHIP_COLUMN] = (allocations[OWNERSHIP_COLUMN].to_numpy() if OWNERSHIP_COLUMN in allocations
                                  else np.zeros(len(allocations), dtype=np.int64))
    elif isinstance(allocations, Iterable) and not isinstance(allocations, str | bytes):
        names = [*ACCRUAL_COLUMNS, OWNERSHIP_COLUMN]
        rows = list(allocations)
        for i, row in enumerate(rows):
            if not isinstance(row, tuple | list) or len(row) not in (len(ACCRUAL_COLUMNS), len(names)):
                raise LedgerValidationError(
                    f"allocations[{i}] must be a tuple ({', '.join(ACCRUAL_COLUMNS)}[, {OWNERSHIP_COLUMN}])",
                    field=f"allocations[{i}]",
                )
            for j, value in enumerate(row):
                as_int(value, f"allocations[{i}].{names[j]}")
        matrix = np.array([(*row, 0)[: len(names)] for row in rows], dtype=np.int64).reshape(len(rows), len(names))
        cols = {c: matrix[:, j] for j, c in enumerate(names)}
    else:
        raise LedgerValidationError("allocations must be a DataFrame or an iterable of tuples", field="allocations")
    for name, values in cols.items():
        if len(values) and not np.issubdtype(values.dtype, np.integer):
            raise LedgerValidationError(f"allocations.{name} must hold integers (got {values.dtype})",
                                        field=f"allocations.{name}")
    out = {c: v.astype(np.int64, copy=False) for c, v in cols.items()}
    checks = [
        ("amount_micros", out["amount_micros"] < 0, "must be >= 0"),
        ("baseline_micros", (out["baseline_micros"] < 0) | (out["baseline_micros"] > out["amount_micros"]),
         "must be between 0 and amount_micros"),
        ("generation_count", out["generation_count"] < 0, "must be >= 0"),
        (OWNERSHIP_COLUMN, (out[OWNERSHIP_COLUMN] < 0) | (out[OWNERSHIP_COLUMN] > 10_000),
         "must be between 1 and 10000 basis points"),
    ]
    for name, bad, rule in checks:
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise LedgerValidationError(f"allocations.{name} {rule} (row {i})", field=f"allocations.{name}")
    frame = pd.DataFrame(out)
    if frame.duplicated(["contributor_id", "work_id"]).any():
        raise LedgerValidationError("allocations must have one row per (contributor_id, work_id)",
                                    field="allocations")
    # Rows with neither money nor generations carry no information.
    frame = frame[(frame["amount_micros"] != 0) | (frame["generation_count"] != 0)]
    frame = frame.sort_values(["contributor_id", "work_id"], kind="stable")
    return {c: frame[c].to_numpy() for c in [*ACCRUAL_COLUMNS, OWNERSHIP_COLUMN]}


def _check_works_exist(work_ids: np.ndarray) -> None:
    work_model = Accrual._meta.get_field("work").related_model
    wanted = np.unique(work_ids).tolist()
    found: set[int] = set()
    for part in chunks(wanted):
        found.update(work_model._default_manager.filter(pk__in=list(part)).values_list("pk", flat=True))
    unknown = [w for w in wanted if w not in found]
    if unknown:
        raise LedgerValidationError(f"{len(unknown)} work id(s) do not exist, e.g. {unknown[:5]}",
                                    field="allocations.work_id")


def _prepare_accrual(
    *, program: RoyaltyProgram, day: dt.date, booking: Period | dt.date, key: str, allocations: Any,
    expense_total_micros: int,
):
    terms = program_terms_for(program=program, day=day)
    cols = _allocation_arrays(allocations)
    expense_total_micros = as_int(expense_total_micros, "expense_total_micros")
    total = int(cols["amount_micros"].astype(object).sum()) if len(cols["amount_micros"]) else 0
    if total != expense_total_micros:
        raise LedgerValidationError(
            f"allocations sum to {total} micros but expense_total_micros is {expense_total_micros}",
            field="expense_total_micros",
        )
    if total == 0:
        return terms, None, None
    _check_works_exist(cols["work_id"])
    frame = pd.DataFrame(cols)
    per_contributor = frame.groupby("contributor_id", sort=True)["amount_micros"].sum()
    per_contributor = per_contributor[per_contributor != 0]
    payable = accounts_for_contributors(
        kind=Account.Kind.CONTRIBUTOR_PAYABLE, currency=terms.currency,
        contributor_ids=frame["contributor_id"].unique().tolist(),
    )
    expense = account_get_or_create(kind=Account.Kind.ROYALTY_EXPENSE, currency=terms.currency, program=program)
    lines = [(expense.pk, total)] + [(payable[int(c)], -int(a)) for c, a in per_contributor.items()]
    service_period = period_resolve(day, field="day")
    attributed = cols["amount_micros"] - cols["baseline_micros"]
    ownership = [bps or None for bps in cols[OWNERSHIP_COLUMN].tolist()]
    accruals: list[AccrualTuple] = list(zip(
        [day] * len(frame), [program.pk] * len(frame), cols["contributor_id"].tolist(), cols["work_id"].tolist(),
        cols["amount_micros"].tolist(), cols["baseline_micros"].tolist(), attributed.tolist(),
        cols["generation_count"].tolist(), ownership, strict=True,
    ))
    prepared = entry_prepare(kind=JournalEntry.Kind.ACCRUAL, period=booking, idempotency_key=key, lines=lines,
                             reverses=None, accruals=accruals)
    return terms, prepared, service_period


def _metadata(program: RoyaltyProgram, day: dt.date, terms: Any, rows: int, **extra: Any) -> dict:
    return {"program_id": program.pk, "day": day.isoformat(), "terms_id": terms.pk, "terms_version": terms.version,
            "currency": terms.currency, "accrual_rows": rows, **extra}


def _program(program: Any) -> RoyaltyProgram:
    if not isinstance(program, RoyaltyProgram) or program.pk is None:
        raise LedgerValidationError("program must be a saved royalty program", field="program")
    # Same lock as program_terms_create: the terms in force cannot change while the day is being posted.
    return RoyaltyProgram.objects.select_for_update().get(pk=program.pk)


@transaction.atomic
def accrual_post(
    *,
    program: RoyaltyProgram,
    period: Period | dt.date,
    allocations: Any,
    expense_total_micros: int,
    created_by_label: str = "",
    created_by: Any = None,
    memo: str = "",
) -> JournalEntry | None:
    """Post a day's accrual for a program (idempotent by ``accrual:<program>:<day>``).

    ``allocations``: a DataFrame with columns contributor_id, work_id, amount_micros, generation_count,
    baseline_micros (int64) and optionally ownership_bps, or an iterable of such tuples; one row per
    (contributor, work). ``royalty_compute(...).accruals`` has exactly this shape.
    ``expense_total_micros`` must equal their sum (a control total). A day that accrues nothing posts
    nothing and returns None.
    """
    program = _program(program)
    created_by = as_user(created_by)
    period = period_resolve(period)
    day = period.day
    key = accrual_key(program_id=program.pk, day=day)
    terms, prepared, _ = _prepare_accrual(program=program, day=day, booking=period, key=key,
                                          allocations=allocations, expense_total_micros=expense_total_micros)
    if prepared is None:
        existing = JournalEntry.objects.filter(idempotency_key=key).first()
        if existing is not None:
            raise IdempotencyConflictError(
                f"{key} was already posted as entry #{existing.pk} with a non-zero accrual; use accrual_correct",
                field="allocations",
            )
        return None
    memo = memo or f"Royalty accrual, {program.name}, {day.isoformat()}"
    return entry_write(
        prepared, memo=memo, created_by=created_by, created_by_label=created_by_label, reverses=None,
        metadata=_metadata(program, day, terms, len(prepared.accruals)), accrual_period_ids={day: period.pk},
    )


@transaction.atomic
def accrual_correct(
    *,
    program: RoyaltyProgram,
    day: dt.date,
    allocations: Any,
    expense_total_micros: int,
    reason: str,
    created_by: Any = None,
    created_by_label: str = "",
    booking_period: Period | dt.date | None = None,
) -> JournalEntry | None:
    """Replace a day's accrual: reverse the entry in effect and post the corrected one (``...:v<n>``).

    Both go into ``booking_period``: by default the day itself while it is open, else today's period, so a
    closed day is corrected without touching it. The new detail rows still belong to ``day``. Calling it
    again with the same allocations changes nothing (the content is compared with the entry in effect).
    """
    program = _program(program)
    created_by = as_user(created_by)
    if not isinstance(reason, str) or not reason.strip():
        raise LedgerValidationError("reason must say why the accrual is corrected", field="reason")
    if booking_period is None:
        booking_period = day if period_is_open(day=day) else utc_today()
    booking = period_resolve(booking_period, field="booking_period")
    current = accrual_entry_current(program=program, day=day)
    version = JournalEntry.objects.filter(
        kind=JournalEntry.Kind.ACCRUAL, idempotency_key__startswith=accrual_key(program_id=program.pk, day=day)
    ).count() + 1
    key = accrual_key(program_id=program.pk, day=day, version=version)
    terms, prepared, service_period = _prepare_accrual(
        program=program, day=day, booking=booking, key=key, allocations=allocations,
        expense_total_micros=expense_total_micros,
    )
    if current is not None and prepared is not None and _same_money(current, prepared):
        return current
    if current is None and prepared is None:
        return None
    if current is not None:
        journal_entry_reverse(
            entry=current, memo=f"Correction of the {day.isoformat()} accrual: {reason}", created_by=created_by,
            created_by_label=created_by_label, period=booking, metadata={"reason": reason},
        )
    if prepared is None:
        return None
    return entry_write(
        prepared, memo=f"Corrected royalty accrual, {program.name}, {day.isoformat()}: {reason}",
        created_by=created_by, created_by_label=created_by_label, reverses=None,
        metadata=_metadata(program, day, terms, len(prepared.accruals), reason=reason,
                           corrects=current.pk if current else None),
        accrual_period_ids={day: service_period.pk},
    )


def _same_money(entry: JournalEntry, prepared: Any) -> bool:
    """True when the entry in effect already books exactly the prepared postings and detail."""
    lines = sorted(entry.postings.values_list("account_id", "amount_micros"))
    if lines != sorted(prepared.lines):
        return False
    rows = sorted(
        entry.accruals.values_list("contributor_id", "work_id", "amount_micros", "baseline_micros",
                                   "attributed_micros", "generation_count", "ownership_bps")
    )
    return rows == sorted((c, w, a, b, t, g, s) for _, _, c, w, a, b, t, g, s in prepared.accruals)
