"""Every invariant of the ledger, verified from the rows themselves (``manage.py check_ledger``).

Read-only. Each check returns the breaches it found; none of them trusts a stored summary it could
recompute. Memory stays bounded: postings and detail rows are read entry range by entry range.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from django.db import connection
from django.db.models import Count, F, Max, Min, Sum

from royalties.ledger.errors import TermsError
from royalties.ledger.hashing import entry_content_hash
from royalties.ledger.models import Account, Accrual, JournalEntry, Period, Posting
from royalties.ledger.selectors import account_balances, program_terms_for
from royalties.ledger.services.entries import REVERSING_KINDS

ENTRY_BATCH = 500
EXPECTED_TRIGGERS = {
    "postgresql": [
        "ledger_journalentry_immutable", "ledger_posting_immutable", "ledger_accrual_immutable",
        "ledger_account_immutable", "ledger_royaltyprogramterms_immutable", "ledger_period_closed_final",
        "ledger_journalentry_open_period", "ledger_posting_open_period", "ledger_accrual_open_period",
    ],
    "sqlite": [
        "ledger_journalentry_no_update", "ledger_posting_no_update", "ledger_accrual_no_update",
        "ledger_account_no_update", "ledger_royaltyprogramterms_no_update", "ledger_period_closed_final",
        "ledger_journalentry_open_period", "ledger_posting_open_period", "ledger_accrual_open_period",
    ],
}


@dataclass(frozen=True)
class LedgerBreach:
    check: str
    message: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.message}"


@dataclass(frozen=True)
class LedgerCheckResult:
    breaches: list[LedgerBreach]
    entries: int
    postings: int
    accruals: int

    @property
    def ok(self) -> bool:
        return not self.breaches


def ledger_check() -> LedgerCheckResult:
    """Run every check; returns the breaches (empty when the ledger is sound) and what was counted."""
    breaches: list[LedgerBreach] = []
    for check in (
        _check_triggers, _check_balanced, _check_postings, _check_idempotency_keys, _check_closed_periods,
        _check_reversals, _check_balances, _check_accruals, _check_terms, _check_content_hashes,
    ):
        breaches.extend(check())
    return LedgerCheckResult(
        breaches=breaches, entries=JournalEntry.objects.count(), postings=Posting.objects.count(),
        accruals=Accrual.objects.count(),
    )


def _entry_ranges() -> Iterator[tuple[int, int]]:
    """Consecutive id ranges of about ENTRY_BATCH entries (range filters, no huge IN lists)."""
    ids = list(JournalEntry.objects.order_by("id").values_list("id", flat=True))
    for start in range(0, len(ids), ENTRY_BATCH):
        part = ids[start : start + ENTRY_BATCH]
        yield part[0], part[-1]


def _check_triggers() -> list[LedgerBreach]:
    expected = EXPECTED_TRIGGERS.get(connection.vendor)
    if expected is None:
        return []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT tgname, tgenabled FROM pg_trigger WHERE tgname LIKE %s AND NOT tgisinternal",
                           ["ledger_%"])
            present = {name: enabled != "D" for name, enabled in cursor.fetchall()}
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE %s", ["ledger_%"])
            present = {name: True for (name,) in cursor.fetchall()}
    out = []
    for name in expected:
        if name not in present:
            out.append(LedgerBreach("triggers", f"database trigger {name} is missing"))
        elif not present[name]:
            out.append(LedgerBreach("triggers", f"database trigger {name} is disabled"))
    return out


def _check_balanced() -> list[LedgerBreach]:
    rows = (
        Posting.objects.values("entry_id", "account__currency")
        .annotate(total=Sum("amount_micros"))
        .exclude(total=0)
        .order_by("entry_id")
    )
    return [
        LedgerBreach("balanced", f"entry #{r['entry_id']} is off by {r['total']:+d} micros in {r['account__currency']}")
        for r in rows
    ]


def _check_postings() -> list[LedgerBreach]:
    out = [
        LedgerBreach("postings", f"entry #{pk} has no postings")
        for pk in JournalEntry.objects.filter(postings__isnull=True).values_list("pk", flat=True)
    ]
    out += [
        LedgerBreach("postings", f"posting #{pk} has a zero amount")
        for pk in Posting.objects.filter(amount_micros=0).values_list("pk", flat=True)
    ]
    return out


def _check_idempotency_keys() -> list[LedgerBreach]:
    rows = JournalEntry.objects.values("idempotency_key").annotate(n=Count("id")).filter(n__gt=1)
    return [LedgerBreach("idempotency", f"key {r['idempotency_key']!r} is used by {r['n']} entries") for r in rows]


def _check_closed_periods() -> list[LedgerBreach]:
    late = JournalEntry.objects.filter(
        period__status=Period.Status.CLOSED, created_at__gt=F("period__closed_at")
    ).values_list("pk", "period__day")
    return [LedgerBreach("closed_period", f"entry #{pk} was posted to {day} after the period closed")
            for pk, day in late]


def _check_reversals() -> list[LedgerBreach]:
    out = []
    for row in JournalEntry.objects.exclude(reverses=None).values("reverses").annotate(n=Count("id")).filter(n__gt=1):
        out.append(LedgerBreach("reversal", f"entry #{row['reverses']} is reversed {row['n']} times"))
    for pk, kind in JournalEntry.objects.filter(kind__in=REVERSING_KINDS, reverses=None).values_list("pk", "kind"):
        out.append(LedgerBreach("reversal", f"{kind} entry #{pk} names no entry it reverses"))
    pairs = JournalEntry.objects.exclude(reverses=None).values_list("pk", "kind", "reverses_id", "reverses__kind")
    for pk, kind, original, original_kind in pairs:
        if kind not in REVERSING_KINDS:
            out.append(LedgerBreach("reversal", f"{kind} entry #{pk} carries a reversal link to #{original}"))
        if original_kind in REVERSING_KINDS:
            out.append(LedgerBreach("reversal", f"entry #{pk} reverses #{original}, which is itself a {original_kind}"))
        mine = _net_by_account(pk)
        theirs = _net_by_account(original)
        if any(mine.get(a, 0) + theirs.get(a, 0) for a in set(mine) | set(theirs)):
            out.append(LedgerBreach("reversal", f"entry #{pk} does not exactly negate the postings of #{original}"))
        if _net_accruals(pk) != {k: -v for k, v in _net_accruals(original).items()}:
            out.append(LedgerBreach("reversal",
                                    f"entry #{pk} does not exactly negate the accrual detail of #{original}"))
    return out


def _net_by_account(entry_id: int) -> dict[int, int]:
    rows = Posting.objects.filter(entry_id=entry_id).values("account_id").annotate(total=Sum("amount_micros"))
    return {r["account_id"]: int(r["total"]) for r in rows}


def _net_accruals(entry_id: int) -> dict[tuple, int]:
    rows = Accrual.objects.filter(journal_entry_id=entry_id).values_list(
        "period_id", "contributor_id", "work_id", "amount_micros", "baseline_micros", "generation_count"
    )
    return {(p, c, w, "amount"): a for p, c, w, a, _, _ in rows} | {
        (p, c, w, "baseline"): b for p, c, w, _, b, _ in rows
    } | {(p, c, w, "generations"): g for p, c, w, _, _, g in rows}


def _check_balances() -> list[LedgerBreach]:
    """Balances are sums of postings: the SQL aggregate the services use equals a sum streamed row by row."""
    streamed: dict[int, int] = defaultdict(int)
    for account_id, amount in Posting.objects.order_by().values_list("account_id", "amount_micros").iterator(
        chunk_size=20_000
    ):
        streamed[account_id] += amount
    out = []
    # order_by(): the model's default ordering would put "id" into the DISTINCT and defeat it.
    for kind, currency in Account.objects.order_by().values_list("kind", "currency").distinct():
        aggregated = account_balances(kind=kind, currency=currency)
        ids = Account.objects.filter(kind=kind, currency=currency).values_list("pk", flat=True)
        for pk in ids:
            if aggregated.get(pk, 0) != streamed.get(pk, 0):
                out.append(LedgerBreach("balance", f"account #{pk}: aggregate {aggregated.get(pk, 0)} != "
                                                   f"sum of postings {streamed.get(pk, 0)}"))
    orphans = set(streamed) - set(Account.objects.values_list("pk", flat=True))
    out += [LedgerBreach("balance", f"postings reference missing account #{pk}") for pk in sorted(orphans)]
    return out


def _check_accruals() -> list[LedgerBreach]:
    """Per entry, the detail explains the postings exactly: per contributor and in total."""
    out = []
    for pk in Accrual.objects.exclude(amount_micros=F("baseline_micros") + F("attributed_micros")).values_list(
        "pk", flat=True
    ):
        out.append(LedgerBreach("accrual", f"accrual #{pk}: amount != baseline + attributed"))
    with_detail = set(Accrual.objects.order_by().values_list("journal_entry_id", flat=True).distinct())
    for pk in JournalEntry.objects.filter(kind=JournalEntry.Kind.ACCRUAL).exclude(pk__in=with_detail).values_list(
        "pk", flat=True
    ):
        out.append(LedgerBreach("accrual", f"accrual entry #{pk} has no accrual detail"))
    for low, high in _entry_ranges():
        detail: dict[tuple[int, int], int] = defaultdict(int)
        detail_total: dict[int, int] = defaultdict(int)
        detail_programs: dict[int, set[int]] = defaultdict(set)
        rows = Accrual.objects.filter(journal_entry_id__gte=low, journal_entry_id__lte=high).values(
            "journal_entry_id", "contributor_id", "program_id"
        ).annotate(total=Sum("amount_micros"))
        for r in rows:
            detail[(r["journal_entry_id"], r["contributor_id"])] += int(r["total"])
            detail_total[r["journal_entry_id"]] += int(r["total"])
            detail_programs[r["journal_entry_id"]].add(r["program_id"])
        payable: dict[tuple[int, int], int] = defaultdict(int)
        expense: dict[int, int] = defaultdict(int)
        expense_programs: dict[int, set[int]] = defaultdict(set)
        postings = (
            Posting.objects.filter(entry_id__gte=low, entry_id__lte=high)
            .values("entry_id", "account__kind", "account__contributor_id", "account__program_id")
            .annotate(total=Sum("amount_micros"))
        )
        for p in postings:
            if p["account__kind"] == Account.Kind.CONTRIBUTOR_PAYABLE:
                payable[(p["entry_id"], p["account__contributor_id"])] += -int(p["total"])
            elif p["account__kind"] == Account.Kind.ROYALTY_EXPENSE:
                expense[p["entry_id"]] += int(p["total"])
                expense_programs[p["entry_id"]].add(p["account__program_id"])
        for entry_id in sorted({e for e, _ in detail}):
            contributors = {c for e, c in detail if e == entry_id} | {c for e, c in payable if e == entry_id}
            for c in sorted(contributors):
                if detail.get((entry_id, c), 0) != payable.get((entry_id, c), 0):
                    out.append(LedgerBreach(
                        "accrual", f"entry #{entry_id}: detail gives contributor {c} {detail.get((entry_id, c), 0)} "
                                   f"micros but the payable posting is {payable.get((entry_id, c), 0)}"))
            if detail_total[entry_id] != expense.get(entry_id, 0):
                out.append(LedgerBreach("accrual", f"entry #{entry_id}: detail sums to {detail_total[entry_id]} "
                                                   f"but the expense posting is {expense.get(entry_id, 0)}"))
            if detail_programs[entry_id] != expense_programs.get(entry_id, set()):
                out.append(LedgerBreach("accrual", f"entry #{entry_id}: detail and expense account name "
                                                   "different programs"))
    return out


def _check_terms() -> list[LedgerBreach]:
    """Each accrual was posted under the terms still recorded as in force for its day (no retroactive terms)."""
    out = []
    entries = JournalEntry.objects.filter(kind=JournalEntry.Kind.ACCRUAL).values_list("pk", "metadata")
    for pk, meta in entries.iterator(chunk_size=2_000):
        program_id, day, terms_id = meta.get("program_id"), meta.get("day"), meta.get("terms_id")
        if program_id is None or day is None or terms_id is None:
            out.append(LedgerBreach("terms", f"accrual entry #{pk} does not record its program, day and terms"))
            continue
        try:
            in_force = program_terms_for(program=program_id, day=dt.date.fromisoformat(day))
        except TermsError:
            out.append(LedgerBreach("terms", f"accrual entry #{pk}: no terms in force on {day} any more"))
            continue
        if in_force.pk != terms_id:
            out.append(LedgerBreach("terms", f"accrual entry #{pk} was posted under terms #{terms_id} but terms "
                                             f"#{in_force.pk} are now recorded as in force on {day}"))
    return out


def _check_content_hashes() -> list[LedgerBreach]:
    """Recompute every entry's content hash from its stored rows: any row changed or removed shows up."""
    out = []
    for low, high in _entry_ranges():
        lines: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for entry_id, account_id, amount in Posting.objects.filter(entry_id__gte=low, entry_id__lte=high).values_list(
            "entry_id", "account_id", "amount_micros"
        ):
            lines[entry_id].append((account_id, amount))
        accruals: dict[int, list] = defaultdict(list)
        for row in Accrual.objects.filter(journal_entry_id__gte=low, journal_entry_id__lte=high).values_list(
            "journal_entry_id", "period__day", "program_id", "contributor_id", "work_id", "amount_micros",
            "baseline_micros", "attributed_micros", "generation_count", "ownership_bps",
        ):
            accruals[row[0]].append(row[1:])
        entries = JournalEntry.objects.filter(pk__gte=low, pk__lte=high).values_list(
            "pk", "kind", "period__day", "reverses_id", "content_hash"
        )
        for pk, kind, day, reverses_id, stored in entries:
            actual = entry_content_hash(kind=kind, period_day=day, reverses_id=reverses_id, lines=lines[pk],
                                        accruals=accruals[pk])
            if actual != stored:
                out.append(LedgerBreach("content_hash", f"entry #{pk}: its rows no longer match the content "
                                                        "hash recorded when it was posted"))
    return out


def ledger_span() -> dict:
    """First and last day with entries, for the command's summary line."""
    return JournalEntry.objects.aggregate(first=Min("period__day"), last=Max("period__day"))
