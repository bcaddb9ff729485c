"""Reading the catalog. Contributor-facing selectors only ever return that contributor's own works."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Count, F, Q, QuerySet

from contributors.models import Contributor, Dispute, OptOut, Ownership, Work


def contributor_for_user(*, user: Any) -> Contributor | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return Contributor.objects.filter(user=user).first()


def work_list_for_contributor(
    *,
    contributor: Contributor,
    q: str = "",
    kind: str = "",
    status: str = "",
    opted_out: bool | None = None,
) -> QuerySet[Work]:
    """The works the contributor (co-)owns, with ``my_bps`` = their share, newest first."""
    qs = Work.objects.filter(ownerships__contributor=contributor).annotate(my_bps=F("ownerships__bps"))
    if q:
        qs = qs.filter(Q(title__icontains=q) | Q(description__icontains=q) | Q(sha256__iexact=q))
    if kind:
        qs = qs.filter(kind=kind)
    if status:
        qs = qs.filter(status=status)
    if opted_out is not None:
        qs = qs.filter(opted_out_at__isnull=not opted_out)
    return qs.order_by("-created_at", "-id")


def work_get_for_contributor(*, contributor: Contributor, work_id: int) -> Work | None:
    """One of the contributor's works, or None: callers answer 404, whether the work exists or not."""
    return work_list_for_contributor(contributor=contributor).filter(pk=work_id).first()


def work_owner_list(*, work: Work) -> list[Ownership]:
    return list(Ownership.objects.filter(work=work).select_related("contributor").order_by("-bps", "contributor_id"))


def work_dispute_list(*, work: Work) -> QuerySet[Dispute]:
    """Disputes the work is part of, as the original registration or as the later claim."""
    return (
        Dispute.objects.filter(Q(work=work) | Q(claim_work=work))
        .select_related("work", "claim_work", "claimant")
        .order_by("-created_at", "-id")
    )


def work_opt_out_list(*, work: Work) -> QuerySet[OptOut]:
    return OptOut.objects.filter(work=work).select_related("requested_by").order_by("-opted_out_at", "-id")


def contributor_work_summary(*, contributor: Contributor) -> dict[str, int]:
    """Counts for the dashboard: works by status, opted out, open disputes."""
    works = Work.objects.filter(ownerships__contributor=contributor)
    counts = works.aggregate(
        total=Count("id"),
        active=Count("id", filter=Q(status=Work.Status.ACTIVE)),
        disputed=Count("id", filter=Q(status=Work.Status.DISPUTED)),
        removed=Count("id", filter=Q(status=Work.Status.REMOVED)),
        opted_out=Count("id", filter=Q(opted_out_at__isnull=False)),
    )
    work_ids = works.values("id")
    counts["open_disputes"] = (
        Dispute.objects.filter(Q(work_id__in=work_ids) | Q(claim_work_id__in=work_ids), status=Dispute.Status.OPEN)
        .distinct()
        .count()
    )
    return counts


def opt_out_export_list(*, since: dt.datetime | None = None, active_only: bool = False) -> QuerySet[OptOut]:
    """Opt-out events for model teams, oldest first: opted out (or withdrawn) at or after ``since``."""
    qs = OptOut.objects.select_related("work")
    if since is not None:
        qs = qs.filter(Q(opted_out_at__gte=since) | Q(withdrawn_at__gte=since))
    if active_only:
        qs = qs.filter(withdrawn_at__isnull=True)
    return qs.order_by("opted_out_at", "id")


def dispute_queue() -> QuerySet[Dispute]:
    """Open disputes, oldest first: the catalog admins' work list."""
    return (
        Dispute.objects.filter(status=Dispute.Status.OPEN)
        .select_related("work", "claim_work", "claimant")
        .order_by("created_at", "id")
    )
