"""Reading payout runs: lists, one run with its payouts and exclusions, live progress, reconciliations."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery, Sum

from payouts.models import Payout, PayoutExclusion, PayoutRun, PayoutRunReconciliation


def payout_run_list(*, status: str | None = None, currency: str | None = None) -> QuerySet[PayoutRun]:
    runs = PayoutRun.objects.select_related("created_by", "approved_by")
    if status:
        runs = runs.filter(status=status)
    if currency:
        runs = runs.filter(currency=currency.upper())
    return runs.order_by("-created_at", "-id")


def payout_run_get(*, pk: int) -> PayoutRun | None:
    return (PayoutRun.objects.select_related("created_by", "submitted_by", "approved_by", "executed_by",
                                             "cancelled_by").filter(pk=pk).first())


def payout_list(*, run: PayoutRun, status: str | None = None) -> QuerySet[Payout]:
    payouts = run.payouts.select_related("contributor").order_by("id")
    if status:
        payouts = payouts.filter(status=status)
    return payouts


def payout_exclusion_list(*, run: PayoutRun, reason: str | None = None) -> QuerySet[PayoutExclusion]:
    rows = run.exclusions.select_related("contributor").order_by("reason", "contributor__display_name", "id")
    if reason:
        rows = rows.filter(reason=reason)
    return rows


def payout_run_progress(*, run: PayoutRun) -> dict[str, Any]:
    """What an executing run has done so far: counts by status, amounts paid, and whether it is finished."""
    stats = run.payouts.aggregate(
        **{status: Count("id", filter=Q(status=status)) for status in Payout.Status.values},
        paid_minor=Sum("amount_minor", filter=Q(status__in=Payout.SETTLED_STATUSES)),
        failed_minor=Sum("amount_minor", filter=Q(status=Payout.Status.FAILED)),
    )
    total = run.payout_count
    done = stats[Payout.Status.PAID] + stats[Payout.Status.REVERSED] + stats[Payout.Status.FAILED] + stats[
        Payout.Status.CANCELLED]
    return {
        "run": run.pk,
        "status": run.status,
        "status_label": run.get_status_display(),
        "total": total,
        "done": done,
        "percent": 100 if total == 0 else (100 * done) // total,
        "counts": {status: stats[status] for status in Payout.Status.values},
        "paid_minor": int(stats["paid_minor"] or 0),
        "failed_minor": int(stats["failed_minor"] or 0),
        "total_minor": run.total_minor,
        "currency": run.currency,
        "finished": run.status not in PayoutRun.OPEN_STATUSES,
    }


def reconciliation_latest_by_run() -> QuerySet[PayoutRun]:
    """Runs that have moved money, each with its latest reconciliation's time and mismatch count."""
    latest = PayoutRunReconciliation.objects.filter(run=OuterRef("pk")).order_by("-ran_at", "-id")
    return (PayoutRun.objects.filter(execution_started_at__isnull=False)
            .annotate(last_reconciled_at=Subquery(latest.values("ran_at")[:1]),
                      last_mismatch_count=Subquery(latest.values("mismatch_count")[:1]),
                      last_reconciliation_id=Subquery(latest.values("pk")[:1]))
            .order_by("-execution_started_at", "-id"))
