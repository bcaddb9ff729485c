"""The finance ledger explorer (mounted at /finance/ledger/): journal entries filtered by kind, day, account and
contributor; one entry with its postings and accrual detail; account balances; a CSV export. Read-only, finance
only (404 for anyone else)."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.roles import FINANCE, role_required
from payouts.forms import LedgerAccountFilterForm, LedgerEntryFilterForm
from payouts.money import plain_micros
from payouts.selectors import (
    LedgerEntryFilter,
    ledger_account_balances,
    ledger_account_list,
    ledger_entry_get,
    ledger_entry_list,
    ledger_postings_for_export,
)
from royalties.ledger.models import Account, JournalEntry

finance_only = role_required(FINANCE)


def _entry_filter(request: HttpRequest) -> tuple[LedgerEntryFilterForm, LedgerEntryFilter, bool]:
    form = LedgerEntryFilterForm(request.GET or None)
    if not form.is_valid():
        return form, LedgerEntryFilter(), False
    data = form.cleaned_data
    filters = LedgerEntryFilter(kind=data["kind"], day_from=data["day_from"], day_to=data["day_to"],
                                account_id=data["account"], contributor_id=data["contributor"],
                                q=(data["q"] or "").strip())
    return form, filters, filters != LedgerEntryFilter()


@require_GET
@login_required
@finance_only
def ledger_entries(request: HttpRequest) -> HttpResponse:
    form, filters, filtered = _entry_filter(request)
    # A bad filter shows its error and no rows, rather than silently listing everything.
    entries = JournalEntry.objects.none() if form.errors else ledger_entry_list(filters=filters)
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    return render(request, "finance/ledger_entries.html", {
        "form": form, "page_obj": page, "entries": page.object_list, "filtered": filtered,
        "export_query": request.GET.urlencode(),
    }, status=400 if form.errors else 200)


@require_GET
@login_required
@finance_only
def ledger_entry_detail(request: HttpRequest, pk: int) -> HttpResponse:
    detail = ledger_entry_get(pk=pk)
    if detail is None:
        raise Http404
    return render(request, "finance/ledger_entry.html", detail)


@require_GET
@login_required
@finance_only
def ledger_accounts(request: HttpRequest) -> HttpResponse:
    form = LedgerAccountFilterForm(request.GET or None)
    data = form.cleaned_data if form.is_valid() else {}
    accounts = ledger_account_list(kind=data.get("kind") or "", currency=data.get("currency") or "",
                                   contributor_id=data.get("contributor"))
    page = Paginator(accounts, 50).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    balances = ledger_account_balances(accounts=rows)
    # Shown in the account's normal direction: what the platform owes on liabilities, holds on assets.
    listed = [{"account": a, "raw_micros": balances[a.pk], "normal_micros": balances[a.pk] * a.normal_sign,
               "side": "credit" if a.normal_sign < 0 else "debit"} for a in rows]
    return render(request, "finance/ledger_accounts.html", {
        "form": form, "page_obj": page, "rows": listed, "filtered": bool(data and any(data.values())),
        "kinds": Account.Kind,
    }, status=400 if form.errors else 200)


class _Echo:
    def write(self, value: str) -> str:
        return value


@require_GET
@login_required
@finance_only
def ledger_export_csv(request: HttpRequest) -> HttpResponse:
    """The postings of every entry matching the filters, streamed (an export of years stays in constant memory)."""
    form, filters, _ = _entry_filter(request)
    if request.GET and not form.is_valid():
        return HttpResponse("; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()), status=400,
                            content_type="text/plain; charset=utf-8")
    writer = csv.writer(_Echo())

    def rows() -> Iterator[str]:
        yield writer.writerow(["entry_id", "created_at", "day", "kind", "idempotency_key", "memo", "account_id",
                               "account_kind", "currency", "contributor_id", "program_id", "amount_micros",
                               "amount"])
        for p in ledger_postings_for_export(filters=filters):
            yield writer.writerow([
                p["entry_id"], p["entry__created_at"].isoformat(), p["entry__period__day"].isoformat(),
                p["entry__kind"], p["entry__idempotency_key"], p["entry__memo"], p["account_id"],
                p["account__kind"], p["account__currency"], p["account__contributor_id"] or "",
                p["account__program_id"] or "", p["amount_micros"], plain_micros(p["amount_micros"]),
            ])

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="ledger-postings.csv"'
    return response
