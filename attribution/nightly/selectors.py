"""Reading the nightly job's results: the generations behind every accrual, down to one attribution row.

The ledger's ``Accrual`` says what a contributor earned from a work on a day; these selectors give the
generations that drew on that work that day (``Attribution`` rows of the day, which is the accrual day: a
late generation appears under the day it was accrued on, with its own generation time beside it). Used by
the contributor portal and by statements. Contributor-facing selectors only return rows of works the
contributor owns.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Exists, F, OuterRef, QuerySet, Sum

from attribution.models import Attribution, AttributionRun, AttributionSettlement, Generation
from contributors.models import Contributor, Ownership


def _owned_by(contributor: Contributor | int) -> Exists:
    contributor_id = getattr(contributor, "pk", contributor)
    return Exists(Ownership.objects.filter(work_id=OuterRef("work_id"), contributor_id=contributor_id))


def attribution_list(
    *,
    contributor: Contributor | int | None = None,
    work: Any = None,
    program: Any = None,
    day_from: dt.date | None = None,
    day_to: dt.date | None = None,
    kept_only: bool = False,
) -> QuerySet[Attribution]:
    """Attribution rows, filtered; with ``contributor``, only those of works they own (``my_bps`` annotated).

    ``day_from``/``day_to`` are inclusive accrual days. ``kept_only`` keeps the rows the policy paid (they
    have an ``AttributionAmount``, ``settled``), dropping the top-k candidates it did not keep.
    """
    qs = Attribution.objects.select_related(
        "generation__model_version__ai_model", "generation__nightly", "work", "settled"
    )
    if contributor is not None:
        contributor_id = getattr(contributor, "pk", contributor)
        qs = qs.filter(_owned_by(contributor_id)).annotate(
            my_bps=Ownership.objects.filter(work_id=OuterRef("work_id"), contributor_id=contributor_id)
            .values("bps")[:1]
        )
    if work is not None:
        qs = qs.filter(work_id=getattr(work, "pk", work))
    if program is not None:
        qs = qs.filter(chunk__program_id=getattr(program, "pk", program))
    if day_from is not None:
        qs = qs.filter(day__gte=day_from)
    if day_to is not None:
        qs = qs.filter(day__lte=day_to)
    if kept_only:
        qs = qs.filter(settled__isnull=False)
    return qs


def work_top_generations(
    *, contributor: Contributor, work_id: int, day_from: dt.date | None = None, day_to: dt.date | None = None,
    limit: int = 25,
) -> list[Attribution]:
    """The generations that drew most on one of the contributor's works: highest amount, then score."""
    qs = attribution_list(contributor=contributor, work=work_id, day_from=day_from, day_to=day_to, kept_only=True)
    return list(qs.order_by("-settled__amount_micros", "-score", "generation_id")[:limit])


def work_copy_count(*, contributor: Contributor, work_id: int, day_from: dt.date | None = None,
                    day_to: dt.date | None = None) -> int:
    """How many generations copied the work (verbatim text or a near-duplicate image) in the days."""
    return attribution_list(contributor=contributor, work=work_id, day_from=day_from, day_to=day_to).filter(
        copied=True
    ).count()


def generation_visible_to_contributor(*, contributor: Contributor, generation_id: int) -> Generation | None:
    """A generation that drew on one of the contributor's works (else None: the caller answers 404).

    "Drew on" means a row the policy kept (it paid the work): the top-k also lists works that scored nothing,
    and those must not show a contributor other people's generations.
    """
    drew_on_mine = Attribution.objects.filter(generation_id=OuterRef("pk"), settled__isnull=False).filter(
        _owned_by(contributor)
    )
    return Generation.objects.filter(pk=generation_id).filter(Exists(drew_on_mine)).first()


def attribution_totals_by_work(*, program: Any, day: dt.date) -> dict[int, int]:
    """Work id -> the day's attributed micro-units over all its owners: equals the ledger's
    ``accrual_attributed_by_work`` for the same (program, day) (the cross-check between the two apps)."""
    rows = (
        Attribution.objects.filter(chunk__program_id=getattr(program, "pk", program), day=day,
                                   settled__amount_micros__gt=0)
        .order_by().values("work_id").annotate(total=Sum("settled__amount_micros"))
    )
    return {r["work_id"]: int(r["total"]) for r in rows}


def late_generation_list(*, program: Any = None, day: dt.date | None = None) -> QuerySet[Generation]:
    """Generations accrued on a later day than they were made (``nightly__day`` is the accrual day)."""
    qs = Generation.objects.filter(nightly__late=True).select_related("nightly", "model_version__ai_model")
    if program is not None:
        qs = qs.filter(nightly__chunk__program_id=getattr(program, "pk", program))
    if day is not None:
        qs = qs.filter(nightly__day=day)
    return qs.annotate(accrual_day=F("nightly__day")).order_by("nightly__day", "generated_at", "pk")


def attribution_run_list(*, day: dt.date | None = None) -> QuerySet[AttributionRun]:
    qs = AttributionRun.objects.all()
    if day is not None:
        qs = qs.filter(day=day)
    return qs.order_by("-started_at", "-pk")


def settlement_get(*, program: Any, day: dt.date) -> AttributionSettlement | None:
    return AttributionSettlement.objects.filter(program_id=getattr(program, "pk", program), day=day).first()
