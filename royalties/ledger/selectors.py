"""Reading the ledger: terms in force, balances (always sums of postings), accrual detail, holds."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Max, Q, QuerySet, Sum
from django.db.models.functions import TruncMonth

from royalties.ledger.errors import LedgerValidationError, TermsError
from royalties.ledger.models import Account, Accrual, JournalEntry, Period, RoyaltyProgram, RoyaltyProgramTerms


def _pk(value: Any, field: str) -> int:
    pk = getattr(value, "pk", value)
    if isinstance(pk, bool) or not isinstance(pk, int):
        raise LedgerValidationError(f"{field} must be a saved object or an id, got {value!r}", field=field)
    return pk


def _as_of_filter(as_of: dt.date | None, prefix: str = "") -> Q:
    if as_of is None:
        return Q()
    if isinstance(as_of, dt.datetime) or not isinstance(as_of, dt.date):
        raise LedgerValidationError(f"as_of must be a date (the last day included), got {as_of!r}", field="as_of")
    return Q(**{f"{prefix}entry__period__day__lte": as_of})


# --- programs -----------------------------------------------------------------------------------------


def program_terms_for(*, program: RoyaltyProgram | int, day: dt.date) -> RoyaltyProgramTerms:
    """The terms in force on ``day``: the latest version among those with the latest start on or before it."""
    program_id = _pk(program, "program")
    terms = (
        RoyaltyProgramTerms.objects.filter(program_id=program_id, effective_from__lte=day)
        .order_by("-effective_from", "-version")
        .first()
    )
    if terms is None:
        raise TermsError(f"royalty program {program_id} has no terms in force on {day}", field="day")
    return terms


def program_terms_list(*, program: RoyaltyProgram | int) -> QuerySet[RoyaltyProgramTerms]:
    return RoyaltyProgramTerms.objects.filter(program_id=_pk(program, "program")).order_by("effective_from", "version")


def program_for_ai_model(*, ai_model: Any) -> RoyaltyProgram | None:
    return RoyaltyProgram.objects.filter(ai_model_id=_pk(ai_model, "ai_model")).first()


# --- periods ------------------------------------------------------------------------------------------


def period_get(*, day: dt.date) -> Period | None:
    return Period.objects.filter(day=day).first()


def period_is_open(*, day: dt.date) -> bool:
    """True unless the day's period exists and is closed (a day without a period opens on first posting)."""
    return not Period.objects.filter(day=day, status=Period.Status.CLOSED).exists()


# --- balances -----------------------------------------------------------------------------------------


def account_balance(*, account: Account | int, as_of: dt.date | None = None) -> int:
    """Raw balance in micro-units (debit +, credit -): the sum of the account's postings up to ``as_of``."""
    account_id = _pk(account, "account")
    rows = Account.objects.filter(pk=account_id).aggregate(
        total=Sum("postings__amount_micros", filter=_as_of_filter(as_of, "postings__"))
    )
    return int(rows["total"] or 0)


def account_balances(
    *, kind: str, currency: str, as_of: dt.date | None = None, account_ids: list[int] | None = None
) -> dict[int, int]:
    """Raw balance of every account of ``kind`` in ``currency`` with postings: account id -> micro-units."""
    qs = Account.objects.filter(kind=kind, currency=currency)
    if account_ids is not None:
        qs = qs.filter(pk__in=account_ids)
    rows = qs.annotate(
        total=Sum("postings__amount_micros", filter=_as_of_filter(as_of, "postings__"))
    ).filter(total__isnull=False)
    return {pk: int(total) for pk, total in rows.values_list("pk", "total")}


def contributor_payable_balance(*, contributor: Any, currency: str, as_of: dt.date | None = None) -> int:
    """What the platform owes the contributor (positive) in micro-units, excluding held amounts."""
    return _contributor_balance(Account.Kind.CONTRIBUTOR_PAYABLE, contributor, currency, as_of)


def contributor_held_balance(*, contributor: Any, currency: str, as_of: dt.date | None = None) -> int:
    """What the platform owes the contributor but holds back (positive), in micro-units."""
    return _contributor_balance(Account.Kind.HOLD, contributor, currency, as_of)


def _contributor_balance(kind: str, contributor: Any, currency: str, as_of: dt.date | None) -> int:
    account = Account.objects.filter(kind=kind, currency=currency, contributor_id=_pk(contributor, "contributor"))
    account_id = account.values_list("pk", flat=True).first()
    if account_id is None:
        return 0
    # Liabilities are credit-normal: the raw balance is negative when the platform owes money.
    return -account_balance(account=account_id, as_of=as_of)


def contributor_payable_balances(*, currency: str, as_of: dt.date | None = None) -> dict[int, int]:
    """Contributor id -> amount owed (positive, micro-units) for every contributor with a payable balance."""
    balances = (
        Account.objects.filter(kind=Account.Kind.CONTRIBUTOR_PAYABLE, currency=currency)
        .annotate(total=Sum("postings__amount_micros", filter=_as_of_filter(as_of, "postings__")))
        .filter(total__isnull=False)
        .exclude(total=0)
    )
    return {cid: -int(total) for cid, total in balances.values_list("contributor_id", "total")}


# --- accrual detail -----------------------------------------------------------------------------------


def accrual_list(
    *,
    contributor: Any,
    period_from: dt.date,
    period_to: dt.date,
    program: RoyaltyProgram | int | None = None,
    work: Any = None,
) -> QuerySet[Accrual]:
    """A contributor's accrual detail rows for the days ``period_from..period_to`` (inclusive).

    Reversed accruals appear with their negating rows, so the rows always sum to what is currently owed.
    """
    qs = Accrual.objects.filter(
        contributor_id=_pk(contributor, "contributor"), period__day__gte=period_from, period__day__lte=period_to
    )
    if program is not None:
        qs = qs.filter(program_id=_pk(program, "program"))
    if work is not None:
        qs = qs.filter(work_id=_pk(work, "work"))
    return qs.select_related("period", "journal_entry").order_by("period__day", "work_id", "id")


_TOTALS = {
    "amount_micros": Sum("amount_micros"),
    "baseline_micros": Sum("baseline_micros"),
    "attributed_micros": Sum("attributed_micros"),
    "generation_count": Sum("generation_count"),
}


def _totals(qs: QuerySet, *group: str) -> list[dict[str, Any]]:
    rows = qs.order_by().values(*group).annotate(**_TOTALS).order_by(*group)
    # A day reversed and re-posted nets out; drop groups that sum to nothing at all.
    return [
        {**r, **{k: int(r[k] or 0) for k in _TOTALS}}
        for r in rows
        if any(r[k] for k in _TOTALS)
    ]


def accrual_totals_by_work(
    *, contributor: Any, period_from: dt.date, period_to: dt.date, program: RoyaltyProgram | int | None = None
) -> list[dict[str, Any]]:
    """Per work: amount, baseline, attributed and generation count over the days (net of reversals)."""
    qs = accrual_list(contributor=contributor, period_from=period_from, period_to=period_to, program=program)
    return _totals(qs, "work_id")


def accrual_totals_by_period(
    *, contributor: Any, period_from: dt.date, period_to: dt.date, program: RoyaltyProgram | int | None = None
) -> list[dict[str, Any]]:
    """Per day (``period__day``): the same totals, for the portal's earnings chart."""
    qs = accrual_list(contributor=contributor, period_from=period_from, period_to=period_to, program=program)
    return _totals(qs, "period__day")


def accrual_totals_by_month(
    *, contributor: Any, period_from: dt.date, period_to: dt.date, program: RoyaltyProgram | int | None = None
) -> list[dict[str, Any]]:
    """Per calendar month (``month``, a date on the 1st) and work: what monthly statements aggregate."""
    qs = accrual_list(contributor=contributor, period_from=period_from, period_to=period_to, program=program)
    qs = qs.annotate(month=TruncMonth("period__day"))
    rows = _totals(qs, "month", "work_id")
    for row in rows:
        if isinstance(row["month"], dt.datetime):  # SQLite returns a datetime for TruncMonth on a date
            row["month"] = row["month"].date()
    return rows


def accrual_totals_by_program_period(*, program: RoyaltyProgram | int, day: dt.date) -> dict[str, int]:
    """A program's totals for one day (net of reversals): what the nightly report shows."""
    qs = Accrual.objects.filter(program_id=_pk(program, "program"), period__day=day)
    totals = qs.aggregate(**_TOTALS, contributors=Count("contributor_id", distinct=True),
                          works=Count("work_id", distinct=True))
    return {k: int(v or 0) for k, v in totals.items()}


@dataclass(frozen=True)
class AccrualSource:
    """Where an accrual row's attributed micros came from, as keys into the attribution app's rows.

    The generations behind it are the ``attribution.Attribution`` rows of ``work_id`` whose generation's model
    version belongs to ``ai_model_id`` and was generated on ``day`` (UTC). Their ``amount_micros`` sum to the
    work's attributed total for the day (``accrual_attributed_by_work``), of which this contributor received
    the largest-remainder share for ``ownership_bps``.
    """

    program_id: int
    ai_model_id: int
    work_id: int
    contributor_id: int
    day: dt.date
    ownership_bps: int | None


def accrual_source(*, accrual: Accrual) -> AccrualSource:
    return AccrualSource(
        program_id=accrual.program_id, ai_model_id=accrual.program.ai_model_id, work_id=accrual.work_id,
        contributor_id=accrual.contributor_id, day=accrual.period.day, ownership_bps=accrual.ownership_bps,
    )


def accrual_attributed_by_work(*, program: RoyaltyProgram | int, day: dt.date) -> dict[int, int]:
    """Work id -> attributed micros accrued for ``day`` over all its owners, net of corrections.

    Equals, per work, the sum of the attribution rows' ``amount_micros`` for that day: the cross-check between
    the attribution app's detail and the ledger.
    """
    rows = (
        Accrual.objects.filter(program_id=_pk(program, "program"), period__day=day)
        .order_by()
        .values("work_id")
        .annotate(total=Sum("attributed_micros"))
    )
    return {r["work_id"]: int(r["total"]) for r in rows if r["total"]}


def accrual_entry_current(*, program: RoyaltyProgram | int, day: dt.date) -> JournalEntry | None:
    """The accrual entry currently in effect for (program, day): posted and not reversed."""
    program_id = _pk(program, "program")
    return (
        JournalEntry.objects.filter(
            kind=JournalEntry.Kind.ACCRUAL,
            idempotency_key__startswith=accrual_key(program_id=program_id, day=day),
            reversed_by__isnull=True,
        )
        .order_by("-id")
        .first()
    )


def accrual_key(*, program_id: int, day: dt.date, version: int = 1) -> str:
    """``accrual:<program>:<YYYY-MM-DD>``, and ``...:v<n>`` for the n-th correction of that day."""
    base = f"accrual:{program_id}:{day.isoformat()}"
    return base if version == 1 else f"{base}:v{version}"


def accrual_last_day(*, program: RoyaltyProgram | int) -> dt.date | None:
    return Accrual.objects.filter(program_id=_pk(program, "program")).aggregate(d=Max("period__day"))["d"]


# --- holds --------------------------------------------------------------------------------------------


def hold_list(*, contributor: Any = None, open_only: bool = True) -> QuerySet[JournalEntry]:
    """Hold entries (newest first); ``open_only`` keeps those not yet released."""
    qs = JournalEntry.objects.filter(kind=JournalEntry.Kind.HOLD)
    if contributor is not None:
        qs = qs.filter(metadata__contributor_id=_pk(contributor, "contributor"))
    if open_only:
        qs = qs.filter(reversed_by__isnull=True)
    return qs.select_related("period").order_by("-created_at", "-id")
