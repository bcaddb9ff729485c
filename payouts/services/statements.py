"""Issuing statements: every micro-unit a contributor was owed, earned and paid, traced to works and entries.

A statement covers the ledger entries on the contributor's payable account that no earlier statement
covers (``StatementEntry``, unique per account and entry) and whose day is on or before its period end;
a payout statement also covers its own payout entry, whichever day that was booked. So statements chain
exactly: ``opening`` is the previous ``closing``, and ``opening + accruals + other movements - transfer =
closing``; an entry booked late into an earlier day simply appears on the next statement. Other payouts'
entries are left to their own statements, which are issued first (in payout order).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
from collections import defaultdict
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import connections, transaction
from django.db.models import Max, Min, Q, Sum

from audit.services import audit_record
from contributors.models import Contributor, Work
from payouts.errors import StatementError
from payouts.models import Payout, PayoutRun, Statement, StatementEntry
from payouts.money import minor_to_micros
from payouts.services.runs import utc_today
from payouts.services.statement_render import render_csv, render_pdf
from royalties.ledger.models import Account, Accrual, JournalEntry, Posting

logger = logging.getLogger(__name__)

ACTOR_LABEL = "payouts.statements"
STATEMENT_THREADS = 4
_OTHER_LABELS = {
    JournalEntry.Kind.HOLD: "Put on hold",
    JournalEntry.Kind.HOLD_RELEASE: "Hold released",
    JournalEntry.Kind.PAYOUT_RETURN: "Transfer returned by Stripe",
    JournalEntry.Kind.ADJUSTMENT: "Adjustment",
    JournalEntry.Kind.REVERSAL: "Reversal",
    JournalEntry.Kind.FUNDING: "Funding",
    JournalEntry.Kind.PAYOUT: "Earlier payout",
    JournalEntry.Kind.ACCRUAL: "Royalty accrual",
}


def _payable(contributor_id: int, currency: str, *, lock: bool) -> Account | None:
    qs = Account.objects.filter(kind=Account.Kind.CONTRIBUTOR_PAYABLE, currency=currency, contributor_id=contributor_id)
    if lock:
        # One statement of a contributor at a time: the coverage of each entry is decided in one place.
        qs = qs.select_for_update()
    return qs.first()


def _uncovered(account: Account, *, up_to: dt.date, own_entry_id: int | None) -> Q:
    """The entries a new statement covers: not yet covered, on or before ``up_to``, no other payout's entry."""
    covered = StatementEntry.objects.filter(account=account).values("journal_entry_id")
    window = Q(entry__period__day__lte=up_to) & ~Q(entry__kind=JournalEntry.Kind.PAYOUT)
    if own_entry_id is not None:
        window |= Q(entry_id=own_entry_id)
    return window & ~Q(entry_id__in=covered)


def _previous(contributor_id: int, currency: str) -> Statement | None:
    return (Statement.objects.filter(contributor_id=contributor_id, currency=currency)
            .order_by("-issued_at", "-id").first())


def _compose(*, contributor: Contributor, currency: str, account: Account | None, up_to: dt.date,
             payout: Payout | None) -> dict[str, Any]:
    """Everything a statement says, computed from the ledger rows (nothing written)."""
    previous = _previous(contributor.pk, currency)
    opening = previous.closing_balance_micros if previous else 0
    own_entry_id = payout.ledger_entry_id if payout else None
    entries: list[dict[str, Any]] = []
    detail_rows: list[dict[str, Any]] = []
    if account is not None:
        where = _uncovered(account, up_to=up_to, own_entry_id=own_entry_id)
        entries = list(
            Posting.objects.filter(Q(account=account) & where)
            .values("entry_id", "entry__kind", "entry__period__day", "entry__memo", "entry__metadata")
            .annotate(raw=Sum("amount_micros")).order_by("entry__period__day", "entry_id")
        )
        accrual_where = Q(contributor_id=contributor.pk) & Q(journal_entry__period__day__lte=up_to) & ~Q(
            journal_entry_id__in=StatementEntry.objects.filter(account=account).values("journal_entry_id"))
        detail_rows = list(
            Accrual.objects.filter(accrual_where).values("work_id", "journal_entry_id")
            .annotate(amount=Sum("amount_micros"), baseline=Sum("baseline_micros"),
                      attributed=Sum("attributed_micros"), generations=Sum("generation_count"),
                      first=Min("period__day"), last=Max("period__day"))
        )
    # What the contributor is owed moves opposite to the payable account's raw (credit-normal) balance.
    for row in entries:
        row["owed"] = -int(row["raw"])
    detail_entries = {row["journal_entry_id"] for row in detail_rows}
    accrual_total = sum(row["owed"] for row in entries if row["entry_id"] in detail_entries)
    detail_total = sum(int(row["amount"]) for row in detail_rows)
    if accrual_total != detail_total:
        # The ledger's own invariant (check_ledger); a statement that does not explain every micro-unit is
        # never issued. A posting racing this read also lands here: the next attempt covers it.
        raise StatementError(f"accrual detail sums to {detail_total} but the payable postings of those entries to "
                             f"{accrual_total} micro-units; statement not issued", field="lines")

    works = defaultdict(lambda: {"amount": 0, "baseline": 0, "attributed": 0, "generations": 0, "first": None,
                                 "last": None})
    for row in detail_rows:
        agg = works[row["work_id"]]
        for key in ("amount", "baseline", "attributed", "generations"):
            agg[key] += int(row[key] or 0)
        agg["first"] = min(filter(None, [agg["first"], row["first"]]))
        agg["last"] = max(filter(None, [agg["last"], row["last"]]))
    titles = dict(Work.objects.filter(pk__in=list(works)).values_list("pk", "title"))

    lines: list[dict[str, Any]] = [{
        "type": "opening",
        "label": f"Balance carried forward from statement {previous.number}" if previous else "Opening balance",
        "amount_micros": opening,
    }]
    for work_id, agg in sorted(works.items(), key=lambda kv: (titles.get(kv[0], ""), kv[0])):
        if not agg["amount"] and not agg["generations"]:
            continue  # reversed and re-posted to nothing
        lines.append({
            "type": "accrual", "label": titles.get(work_id, f"Work {work_id}"), "work_id": work_id,
            "generations": agg["generations"], "baseline_micros": agg["baseline"],
            "attributed_micros": agg["attributed"], "amount_micros": agg["amount"],
            "first_day": agg["first"].isoformat(), "last_day": agg["last"].isoformat(),
        })
    other_total = 0
    for row in entries:
        if row["entry_id"] in detail_entries or row["entry_id"] == own_entry_id:
            continue
        meta = row["entry__metadata"] or {}
        label = _OTHER_LABELS.get(row["entry__kind"], row["entry__kind"])
        if meta.get("reason"):
            label += f": {meta['reason']}"
        elif meta.get("stripe_reversal_id"):
            label += f" ({meta['stripe_reversal_id']} of {meta.get('stripe_transfer_id', '')})"
        lines.append({"type": row["entry__kind"], "label": label, "entry_id": row["entry_id"],
                      "day": row["entry__period__day"].isoformat(), "amount_micros": row["owed"]})
        other_total += row["owed"]

    transfer_micros = 0
    if payout is not None:
        own = [row for row in entries if row["entry_id"] == own_entry_id]
        if len(own) != 1:
            raise StatementError(f"payout #{payout.pk}'s ledger entry is not on the contributor's payable account "
                                 "or is covered already", field="payout")
        transfer_micros = -own[0]["owed"]
        if transfer_micros != minor_to_micros(amount_minor=payout.amount_minor, currency=currency):
            raise StatementError(f"payout #{payout.pk}: the booked amount differs from the transfer", field="payout")
        lines.append({
            "type": "transfer", "label": f"Transfer {payout.stripe_transfer_id} (payout run #{payout.run_id})",
            "amount_micros": -transfer_micros, "amount_minor": payout.amount_minor,
            "stripe_transfer_id": payout.stripe_transfer_id, "day": own[0]["entry__period__day"].isoformat(),
        })
    closing = opening + accrual_total + other_total - transfer_micros
    lines.append({"type": "closing", "label": "Balance carried forward", "amount_micros": closing})

    # The period runs from the day after the previous statement, or from the earliest entry it covers when an
    # entry was booked late into an earlier day, to its cut-off.
    starts = [row["entry__period__day"] for row in entries if row["entry_id"] != own_entry_id] + [up_to]
    if previous is not None:
        starts.append(previous.period_end + dt.timedelta(days=1))
    return {
        "previous": previous, "entries": entries, "lines": lines, "opening": opening, "accruals": accrual_total,
        "other": other_total, "transfer": transfer_micros, "closing": closing,
        "period_start": min(starts), "period_end": up_to,
    }


def _write(*, number: str, kind: str, contributor: Contributor, currency: str, account: Account | None,
           payout: Payout | None, composed: dict[str, Any]) -> Statement:
    meta = {"number": number, "kind": kind, "contributor": contributor.display_name,
            "contributor_id": contributor.pk, "legal_name": contributor.legal_name, "currency": currency,
            "period_start": composed["period_start"], "period_end": composed["period_end"],
            "opening": composed["opening"], "accruals": composed["accruals"], "other": composed["other"],
            "transfer": composed["transfer"], "closing": composed["closing"],
            "payout": ({"id": payout.pk, "run_id": payout.run_id, "amount_minor": payout.amount_minor,
                        "stripe_transfer_id": payout.stripe_transfer_id,
                        "remainder_micros": payout.remainder_micros} if payout else None)}
    csv_bytes = render_csv(meta=meta, lines=composed["lines"])
    pdf_bytes = render_pdf(meta=meta, lines=composed["lines"])
    statement = Statement(
        number=number, kind=kind, contributor=contributor, currency=currency, payout=payout,
        period_start=composed["period_start"], period_end=composed["period_end"],
        opening_balance_micros=composed["opening"], accruals_micros=composed["accruals"],
        other_movements_micros=composed["other"], transfer_micros=composed["transfer"],
        closing_balance_micros=composed["closing"], lines=composed["lines"],
        csv_sha256=hashlib.sha256(csv_bytes).hexdigest(), pdf_sha256=hashlib.sha256(pdf_bytes).hexdigest(),
    )
    statement.csv_file.save(f"{number}.csv", ContentFile(csv_bytes), save=False)
    statement.pdf_file.save(f"{number}.pdf", ContentFile(pdf_bytes), save=False)
    try:
        statement.save()
        if account is not None and composed["entries"]:
            StatementEntry.objects.bulk_create([
                StatementEntry(statement=statement, account=account, journal_entry_id=row["entry_id"],
                               owed_micros=row["owed"]) for row in composed["entries"]
            ], batch_size=1_000)
    except Exception:
        # The transaction rolls back; the files written for it must not linger as unreferenced copies.
        statement.csv_file.storage.delete(statement.csv_file.name)
        statement.pdf_file.storage.delete(statement.pdf_file.name)
        raise
    audit_record(action=f"statement.issue_{kind}", obj=statement, actor_label=ACTOR_LABEL,
                 after={"number": number, "contributor_id": contributor.pk, "currency": currency,
                        "period_start": statement.period_start, "period_end": statement.period_end,
                        "opening_micros": statement.opening_balance_micros,
                        "transfer_micros": statement.transfer_micros,
                        "closing_micros": statement.closing_balance_micros, "entries": len(composed["entries"]),
                        "csv_sha256": statement.csv_sha256, "pdf_sha256": statement.pdf_sha256})
    return statement


def _issue_earlier_payout_statements(contributor_id: int, currency: str, *, before: Payout | None) -> None:
    pending = Payout.objects.filter(contributor_id=contributor_id, currency=currency,
                                    status__in=Payout.SETTLED_STATUSES, statement__isnull=True)
    if before is not None:
        pending = pending.filter(paid_at__lt=before.paid_at)
    for payout in pending.order_by("paid_at", "id"):
        _issue_payout(payout)


def _issue_payout(payout: Payout) -> Statement:
    existing = Statement.objects.filter(payout=payout).first()
    if existing is not None:
        return existing
    account = _payable(payout.contributor_id, payout.currency, lock=True)
    composed = _compose(contributor=payout.contributor, currency=payout.currency, account=account,
                        up_to=payout.run.as_of, payout=payout)
    return _write(number=f"PS-{payout.pk:08d}", kind=Statement.Kind.PAYOUT, contributor=payout.contributor,
                  currency=payout.currency, account=account, payout=payout, composed=composed)


@transaction.atomic
def statement_issue_for_payout(*, payout: Payout | int) -> Statement:
    """The statement of a paid payout (issued once; a second call returns it)."""
    payout = Payout.objects.select_related("run", "contributor").get(pk=getattr(payout, "pk", payout))
    if not payout.is_settled:
        raise StatementError(f"payout #{payout.pk} is {payout.status}; only a paid payout has a statement",
                             field="payout")
    existing = Statement.objects.filter(payout=payout).first()
    if existing is not None:
        return existing
    _payable(payout.contributor_id, payout.currency, lock=True)
    _issue_earlier_payout_statements(payout.contributor_id, payout.currency, before=payout)
    return _issue_payout(payout)


def statements_issue_for_run(*, run: PayoutRun | int, threads: int | None = None) -> dict[str, int]:
    """Statements for every paid payout of a run that has none yet (each in its own transaction).

    A few threads overlap one statement's database round trips with another's rendering; each payout is a
    different contributor, so they never wait on each other's lock.
    """
    run_id = getattr(run, "pk", run)
    ids = list(Payout.objects.filter(run_id=run_id, status__in=Payout.SETTLED_STATUSES, statement__isnull=True)
               .order_by("id").values_list("id", flat=True))
    outcome = {"issued": 0, "failed": 0}
    lock = threading.Lock()

    def issue(payout_id: int) -> None:
        try:
            statement_issue_for_payout(payout=payout_id)
            key = "issued"
        except StatementError:
            logger.exception("statement of payout %s not issued", payout_id)
            key = "failed"
        with lock:
            outcome[key] += 1

    width = max(1, min(threads or min(STATEMENT_THREADS, settings.PAYOUTS_EXECUTION_THREADS), len(ids)))
    if width == 1:
        for payout_id in ids:
            issue(payout_id)
        return outcome

    def worker(chunk: list[int]) -> None:
        try:
            for payout_id in chunk:
                issue(payout_id)
        finally:
            connections.close_all()  # this thread's connections only

    pool = [threading.Thread(target=worker, args=(ids[i::width],), name=f"statements-{run_id}-{i}", daemon=True)
            for i in range(width)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return outcome


def _month_bounds(month: dt.date) -> tuple[dt.date, dt.date]:
    first = month.replace(day=1)
    nxt = (first + dt.timedelta(days=32)).replace(day=1)
    return first, nxt - dt.timedelta(days=1)


@transaction.atomic
def statement_issue_monthly(*, contributor: Contributor | int, currency: str, month: dt.date) -> Statement | None:
    """The monthly statement of a contributor not paid that month: their balance, growing or carried.

    None when there is nothing to say (no movement and nothing owed), when a statement already reaches the
    month's end, or when a payout of theirs is still in flight (its own statement will cover the month).
    """
    contributor = Contributor.objects.get(pk=getattr(contributor, "pk", contributor))
    currency = currency.upper()
    _, last = _month_bounds(month)
    if last >= utc_today():
        raise StatementError(f"{month:%Y-%m} has not ended yet; a monthly statement is issued after its month",
                             field="month")
    account = _payable(contributor.pk, currency, lock=True)
    if Statement.objects.filter(contributor=contributor, currency=currency, period_end__gte=last).exists():
        return None
    if Payout.objects.filter(contributor=contributor, currency=currency,
                             status__in=Payout.IN_FLIGHT_STATUSES).exclude(run__status=PayoutRun.Status.CANCELLED
                                                                           ).exists():
        return None
    _issue_earlier_payout_statements(contributor.pk, currency, before=None)
    composed = _compose(contributor=contributor, currency=currency, account=account, up_to=last, payout=None)
    if not composed["entries"] and composed["closing"] == 0:
        return None
    number = f"MS-{last:%Y%m}-{contributor.pk:08d}-{currency}"
    return _write(number=number, kind=Statement.Kind.MONTHLY, contributor=contributor, currency=currency,
                  account=account, payout=None, composed=composed)


def statements_issue_monthly(*, month: dt.date) -> dict[str, int]:
    """Monthly statements for ``month`` for every contributor with a payable account (idempotent)."""
    accounts = Account.objects.filter(kind=Account.Kind.CONTRIBUTOR_PAYABLE).values_list("contributor_id", "currency")
    issued = skipped = failed = 0
    for contributor_id, currency in accounts.order_by("contributor_id", "currency"):
        try:
            statement = statement_issue_monthly(contributor=contributor_id, currency=currency, month=month)
        except StatementError:
            logger.exception("monthly statement of contributor %s (%s) not issued", contributor_id, currency)
            failed += 1
            continue
        if statement is None:
            skipped += 1
        else:
            issued += 1
    return {"issued": issued, "skipped": skipped, "failed": failed}
