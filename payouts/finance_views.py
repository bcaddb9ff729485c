"""Finance pages for payout runs and reconciliation (mounted at /finance/). Finance users only: 404 for anyone
else. Views parse input and call services; every decision and write happens there."""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.roles import FINANCE, role_required
from audit.models import AuditEvent
from payouts import stripe_client
from payouts.errors import PayoutError
from payouts.forms import ExclusionFilterForm, PayoutFilterForm, PayoutRunCreateForm, ReasonForm, RunFilterForm
from payouts.models import Payout, PayoutRun
from payouts.money import format_minor
from payouts.selectors import (
    StatementFileTampered,
    payout_exclusion_list,
    payout_list,
    payout_run_get,
    payout_run_list,
    payout_run_progress,
    reconciliation_latest_by_run,
    statement_file_bytes,
    statement_get_for_user,
)
from payouts.services import (
    payout_run_approve,
    payout_run_can_approve,
    payout_run_cancel,
    payout_run_create,
    payout_run_execute,
    payout_run_reconcile,
    payout_run_release_failed,
    payout_run_resume,
    payout_run_retry_failed,
    payout_run_submit,
)

logger = logging.getLogger(__name__)

finance_only = role_required(FINANCE)


def _run_or_404(pk: int) -> PayoutRun:
    run = payout_run_get(pk=pk)
    if run is None:
        raise Http404
    return run


@require_GET
@login_required
@finance_only
def run_list(request: HttpRequest) -> HttpResponse:
    form = RunFilterForm(request.GET or None)
    status = form.cleaned_data.get("status") if form.is_valid() else ""
    page = Paginator(payout_run_list(status=status or None), 25).get_page(request.GET.get("page"))
    return render(request, "finance/run_list.html", {"form": form, "page_obj": page, "runs": page.object_list,
                                                      "filtered": bool(status)})


@require_http_methods(["GET", "POST"])
@login_required
@finance_only
def run_create(request: HttpRequest) -> HttpResponse:
    form = PayoutRunCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            run = payout_run_create(currency=form.cleaned_data["currency"], as_of=form.cleaned_data["as_of"],
                                    note=form.cleaned_data["note"], created_by=request.user)
        except PayoutError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, f"Draft run #{run.pk}: {run.payout_count} payouts, "
                             f"{format_minor(run.total_minor, run.currency)}; {run.excluded_count} left out.")
            return redirect("payouts:run_detail", pk=run.pk)
    return render(request, "finance/run_create.html", {"form": form}, status=400 if form.errors else 200)


def _actions(run: PayoutRun, user) -> dict[str, bool]:
    """Which buttons the page shows; the services refuse anything else whatever is posted."""
    failed = run.payouts.filter(status=Payout.Status.FAILED).exists() if run.status in (
        PayoutRun.Status.EXECUTING, PayoutRun.Status.COMPLETED_WITH_FAILURES) else False
    return {
        "submit": run.status == PayoutRun.Status.DRAFT and run.payout_count > 0,
        "approve": payout_run_can_approve(run=run, user=user),
        "own_run": run.status == PayoutRun.Status.PENDING_APPROVAL and user.pk in (run.created_by_id,
                                                                                   run.submitted_by_id),
        "cancel": run.status in (PayoutRun.Status.DRAFT, PayoutRun.Status.PENDING_APPROVAL, PayoutRun.Status.APPROVED),
        "execute": run.status == PayoutRun.Status.APPROVED,
        "retry": failed,
        "release": failed,
        "resume": run.status == PayoutRun.Status.EXECUTING,
    }


@require_GET
@login_required
@finance_only
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = _run_or_404(pk)
    payout_filter = PayoutFilterForm(request.GET or None)
    status = payout_filter.cleaned_data.get("status") if payout_filter.is_valid() else ""
    exclusion_filter = ExclusionFilterForm(request.GET or None)
    reason = exclusion_filter.cleaned_data.get("reason") if exclusion_filter.is_valid() else ""
    payouts = Paginator(payout_list(run=run, status=status or None).select_related("statement"), 50).get_page(
        request.GET.get("page"))
    exclusions = Paginator(payout_exclusion_list(run=run, reason=reason or None), 50).get_page(
        request.GET.get("xpage"))
    latest = run.reconciliations.order_by("-ran_at", "-id").first()
    context = {
        "run": run, "progress": payout_run_progress(run=run), "actions": _actions(run, request.user),
        "payout_filter": payout_filter, "exclusion_filter": exclusion_filter, "payouts": payouts,
        "exclusions": exclusions, "reconciliation": latest, "reason_form": ReasonForm(),
        "audit": run_audit_trail(run),
    }
    return render(request, "finance/run_detail.html", context)


def run_audit_trail(run: PayoutRun):
    return AuditEvent.objects.filter(object_type="payouts.payoutrun", object_id=str(run.pk)).order_by("created_at",
                                                                                                         "id")


@require_GET
@login_required
@finance_only
def run_progress(request: HttpRequest, pk: int) -> JsonResponse:
    """The live progress element polls this; it works as a plain JSON document too."""
    run = _run_or_404(pk)
    progress = payout_run_progress(run=run)
    progress["paid"] = format_minor(progress["paid_minor"], run.currency)
    progress["total_amount"] = format_minor(run.total_minor, run.currency)
    return JsonResponse(progress, headers={"Cache-Control": "no-store"})


def _transition(request: HttpRequest, pk: int, act: Callable[[PayoutRun], object], done: str) -> HttpResponse:
    run = _run_or_404(pk)
    try:
        act(run)
    except PayoutError as exc:
        messages.error(request, exc.message)
        return redirect("payouts:run_detail", pk=run.pk)
    messages.success(request, done)
    return redirect("payouts:run_detail", pk=run.pk)


def _reason(request: HttpRequest) -> str:
    form = ReasonForm(request.POST)
    return form.cleaned_data["reason"] if form.is_valid() else ""


@require_POST
@login_required
@finance_only
def run_submit(request: HttpRequest, pk: int) -> HttpResponse:
    return _transition(request, pk, lambda run: payout_run_submit(run=run, actor=request.user),
                       "Submitted for approval: another finance user must approve it.")


@require_POST
@login_required
@finance_only
def run_approve(request: HttpRequest, pk: int) -> HttpResponse:
    return _transition(request, pk, lambda run: payout_run_approve(run=run, actor=request.user),
                       "Approved. The run can now be executed.")


@require_POST
@login_required
@finance_only
def run_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    reason = _reason(request)
    return _transition(request, pk, lambda run: payout_run_cancel(run=run, actor=request.user, reason=reason),
                       "Run cancelled; every balance carries forward.")


def _after_sending(run: PayoutRun) -> str:
    """What to say once sending started: with a broker the run goes on in the workers; in-process it is done."""
    run.refresh_from_db()
    if run.status == PayoutRun.Status.EXECUTING:
        return "Executing: transfers are being sent; this page shows the progress."
    progress = payout_run_progress(run=run)
    failed = progress["counts"][Payout.Status.FAILED]
    return (f"Run {run.get_status_display().lower()}: {progress['counts'][Payout.Status.PAID]} paid "
            f"({format_minor(progress['paid_minor'], run.currency)})" + (f", {failed} failed." if failed else "."))


def _send(request: HttpRequest, pk: int, act: Callable[[PayoutRun], object]) -> HttpResponse:
    run = _run_or_404(pk)
    try:
        act(run)
    except PayoutError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _after_sending(run))
    return redirect("payouts:run_detail", pk=run.pk)


@require_POST
@login_required
@finance_only
def run_execute(request: HttpRequest, pk: int) -> HttpResponse:
    return _send(request, pk, lambda run: payout_run_execute(run=run, actor=request.user))


@require_POST
@login_required
@finance_only
def run_retry(request: HttpRequest, pk: int) -> HttpResponse:
    return _send(request, pk, lambda run: payout_run_retry_failed(run=run, actor=request.user))


@require_POST
@login_required
@finance_only
def run_release(request: HttpRequest, pk: int) -> HttpResponse:
    reason = _reason(request)
    return _transition(request, pk, lambda run: payout_run_release_failed(run=run, actor=request.user,
                                                                          reason=reason),
                       "Failed payouts released: their balances carry forward to a later run.")


@require_POST
@login_required
@finance_only
def run_resume(request: HttpRequest, pk: int) -> HttpResponse:
    return _send(request, pk, lambda run: payout_run_resume(run=run, actor=request.user))


@require_GET
@login_required
@finance_only
def run_export_csv(request: HttpRequest, pk: int) -> HttpResponse:
    """Every payout and every exclusion of the run, amounts exact (minor units and micro-units)."""
    run = _run_or_404(pk)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="payout-run-{run.pk}.csv"'
    writer = csv.writer(response)
    writer.writerow(["run_id", "row", "payout_id", "contributor_id", "contributor", "status_or_reason", "currency",
                     "amount_minor", "amount_micros", "balance_micros", "remainder_micros", "attempt",
                     "stripe_account_id", "stripe_transfer_id", "ledger_entry_id", "amount_reversed_minor",
                     "failure_code", "failure_message_or_detail"])
    for p in payout_list(run=run).iterator(chunk_size=1_000):
        writer.writerow([run.pk, "payout", p.pk, p.contributor_id, p.contributor.display_name, p.status, p.currency,
                         p.amount_minor, p.amount_micros, p.balance_micros, p.remainder_micros, p.attempt,
                         p.stripe_account_id, p.stripe_transfer_id, p.ledger_entry_id or "", p.amount_reversed_minor,
                         p.failure_code, p.failure_message])
    for x in payout_exclusion_list(run=run).iterator(chunk_size=1_000):
        writer.writerow([run.pk, "excluded", "", x.contributor_id, x.contributor.display_name, x.reason,
                         run.currency, "", "", x.balance_micros, x.balance_micros, "", "", "", "", "", "", x.detail])
    return response


# --- reconciliation -----------------------------------------------------------------------------------


@require_GET
@login_required
@finance_only
def reconciliation_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(reconciliation_latest_by_run(), 25).get_page(request.GET.get("page"))
    return render(request, "finance/reconciliation_list.html", {"page_obj": page, "runs": page.object_list})


@require_http_methods(["GET", "POST"])
@login_required
@finance_only
def reconciliation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = _run_or_404(pk)
    if request.method == "POST":
        try:
            result = payout_run_reconcile(run=run, actor=request.user)
        except stripe_client.StripeFailure as exc:
            logger.warning("reconciliation of run %s: %s", run.pk, exc)
            messages.error(request, f"Stripe could not be read: {exc.message}. Nothing was recorded; try again.")
        else:
            if result.ok:
                messages.success(request, f"Run #{run.pk} reconciles: {result.transfers_checked} transfers, "
                                 f"{result.payouts_checked} payouts, no mismatch.")
            else:
                messages.warning(request, f"{len(result.mismatches)} mismatches found in run #{run.pk}.")
        return redirect("payouts:reconciliation_detail", pk=run.pk)
    history = list(run.reconciliations.select_related("ran_by").order_by("-ran_at", "-id")[:20])
    return render(request, "finance/reconciliation_detail.html",
                  {"run": run, "latest": history[0] if history else None, "history": history})


# --- statements (finance may read every statement) ------------------------------------------------------


@require_GET
@login_required
@finance_only
def statement_download(request: HttpRequest, pk: int, fmt: str) -> HttpResponse:
    return statement_response(request, pk, fmt)


def statement_response(request: HttpRequest, pk: int, fmt: str) -> HttpResponse:
    """A statement file for a reader allowed to see it (else 404); refused if it differs from what was issued."""
    if fmt not in ("pdf", "csv"):
        raise Http404
    statement = statement_get_for_user(user=request.user, pk=pk)
    if statement is None:
        raise Http404
    try:
        data = statement_file_bytes(statement=statement, fmt=fmt)
    except StatementFileTampered:
        return HttpResponse("This statement's file does not match the fingerprint recorded when it was issued; "
                            "it is withheld and the finance team has been alerted.", status=409,
                            content_type="text/plain; charset=utf-8")
    content_type = "application/pdf" if fmt == "pdf" else "text/csv; charset=utf-8"
    response = HttpResponse(data, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="statement-{statement.number}.{fmt}"'
    response["X-Content-SHA256"] = statement.pdf_sha256 if fmt == "pdf" else statement.csv_sha256
    response["Cache-Control"] = "private, no-store"
    return response

