"""The finance ledger explorer's reads: journal entries by kind, day, account and contributor; an entry with its
postings and accrual detail; account balances (through the ledger's own balance selector)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Prefetch, Q, QuerySet, Sum

from payouts.models import Payout
from royalties.ledger.models import Account, Accrual, JournalEntry, Posting
from royalties.ledger.selectors import account_balances

ACCRUAL_DETAIL_LIMIT = 200


@dataclass(frozen=True)
class LedgerEntryFilter:
    kind: str = ""
    day_from: dt.date | None = None
    day_to: dt.date | None = None
    account_id: int | None = None
    contributor_id: int | None = None
    q: str = ""

    def condition(self) -> Q:
        cond = Q()
        if self.kind:
            cond &= Q(kind=self.kind)
        if self.day_from:
            cond &= Q(period__day__gte=self.day_from)
        if self.day_to:
            cond &= Q(period__day__lte=self.day_to)
        if self.account_id:
            cond &= Q(postings__account_id=self.account_id)
        if self.contributor_id:
            cond &= Q(postings__account__contributor_id=self.contributor_id)
        if self.q:
            cond &= Q(idempotency_key__icontains=self.q) | Q(memo__icontains=self.q)
        return cond


def ledger_entry_list(*, filters: LedgerEntryFilter) -> QuerySet[JournalEntry]:
    """Entries matching every filter, newest first, with their debit total and posting count."""
    matching = JournalEntry.objects.filter(filters.condition()).values("pk")
    return (JournalEntry.objects.filter(pk__in=matching).select_related("period")
            .annotate(debits_micros=Sum("postings__amount_micros", filter=Q(postings__amount_micros__gt=0)),
                      posting_count=Count("postings"))
            .order_by("-created_at", "-id"))


def ledger_entry_get(*, pk: int) -> dict[str, Any] | None:
    """One entry: its postings (with account owners), accrual detail (first rows and totals), links."""
    entry = (JournalEntry.objects.select_related("period", "reverses", "created_by")
             .prefetch_related(Prefetch("postings", queryset=Posting.objects.select_related(
                 "account", "account__contributor", "account__program").order_by("id")))
             .filter(pk=pk).first())
    if entry is None:
        return None
    accruals = Accrual.objects.filter(journal_entry=entry)
    totals = accruals.aggregate(rows=Count("id"), amount=Sum("amount_micros"), generations=Sum("generation_count"))
    detail = list(accruals.select_related("work", "contributor", "period").order_by("contributor_id", "work_id")
                  [:ACCRUAL_DETAIL_LIMIT])
    currencies = {p.account.currency for p in entry.postings.all()}
    return {
        "entry": entry,
        "postings": list(entry.postings.all()),
        "currency": next(iter(currencies)) if len(currencies) == 1 else "",
        "accruals": detail,
        "accrual_totals": {k: int(v or 0) for k, v in totals.items()},
        "accruals_truncated": (totals["rows"] or 0) > len(detail),
        "reversed_by": JournalEntry.objects.filter(reverses=entry).first(),
        "payout": Payout.objects.filter(ledger_entry=entry).select_related("run", "contributor").first(),
    }


def ledger_account_list(*, kind: str = "", currency: str = "", contributor_id: int | None = None
                        ) -> QuerySet[Account]:
    accounts = Account.objects.select_related("contributor", "program")
    if kind:
        accounts = accounts.filter(kind=kind)
    if currency:
        accounts = accounts.filter(currency=currency.upper())
    if contributor_id:
        accounts = accounts.filter(contributor_id=contributor_id)
    return accounts.order_by("kind", "currency", "id")


def ledger_account_balances(*, accounts: list[Account]) -> dict[int, int]:
    """Raw balance (debit +, credit -) of each account, through the ledger's selector, one query per kind."""
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for account in accounts:
        groups[(account.kind, account.currency)].append(account.pk)
    balances: dict[int, int] = {}
    for (kind, currency), ids in groups.items():
        balances.update(account_balances(kind=kind, currency=currency, account_ids=ids))
    return {account.pk: balances.get(account.pk, 0) for account in accounts}


def ledger_postings_for_export(*, filters: LedgerEntryFilter) -> Iterator[dict[str, Any]]:
    """Every posting of the matching entries, oldest first, streamed (for the CSV export)."""
    matching = JournalEntry.objects.filter(filters.condition()).values("pk")
    rows = (Posting.objects.filter(entry_id__in=matching)
            .values("entry_id", "entry__created_at", "entry__period__day", "entry__kind", "entry__idempotency_key",
                    "entry__memo", "account_id", "account__kind", "account__currency", "account__contributor_id",
                    "account__program_id", "amount_micros")
            .order_by("entry_id", "id"))
    yield from rows.iterator(chunk_size=2_000)
