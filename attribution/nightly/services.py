"""The nightly job: plan the day, score every chunk, settle every program's day, close the day.

Two ways in, one set of steps:

- ``night_run``: everything in this process, chunk after chunk (``manage.py run_nightly``, the embedded
  default), with a progress callback.
- ``night_start``: the chunks as a Celery ``chord`` (a group of ``nightly_score_chunk`` tasks whose callback is
  ``nightly_finalize``) on however many workers there are; with no broker the chord runs in-process.

Both call ``night_plan``, ``chunk_score`` and ``night_finalize``. A night can be run again at any time: it
scores only the chunks still unscored, settles only the days whose chunks changed, and posts nothing for a
day already posted from the same chunks.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import traceback as tb
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from attribution.models import AttributionChunk, AttributionRun
from attribution.nightly.errors import NightlyError
from attribution.nightly.planning import NightPlan, night_plan
from attribution.nightly.scoring import chunk_score
from attribution.nightly.settlement import FAILED, ProgramOutcome, program_day_settle
from audit.services import audit_record
from royalties.ledger.errors import LedgerValidationError
from royalties.ledger.services import period_close

logger = logging.getLogger(__name__)

EXECUTOR_IN_PROCESS = "in-process"
EXECUTOR_CELERY = "celery"

Progress = Callable[[int, int], None]


def utc_yesterday() -> dt.date:
    return timezone.now().astimezone(dt.UTC).date() - dt.timedelta(days=1)


def night_day_parse(value: str | dt.date | None, *, field: str = "day") -> dt.date:
    """The night's day: ``YYYY-MM-DD`` (or a date), default yesterday (UTC); it must have ended."""
    if value is None or value == "":
        return utc_yesterday()
    if isinstance(value, dt.datetime):
        raise NightlyError(f"{field} must be a calendar day (YYYY-MM-DD), not a date and time", field=field)
    if isinstance(value, dt.date):
        day = value
    else:
        try:
            day = dt.date.fromisoformat(str(value).strip())
        except ValueError:
            raise NightlyError(f"{field} must be a day as YYYY-MM-DD, got {value!r}", field=field) from None
    today = timezone.now().astimezone(dt.UTC).date()
    if day >= today:
        raise NightlyError(
            f"{field} {day} has not ended yet (UTC today is {today}): generations may still arrive for it; "
            "a night runs for a day that is over", field=field,
        )
    return day


def _chunk_size(chunk_size: int | None) -> int:
    size = settings.ROYALTIES_NIGHTLY_CHUNK_SIZE if chunk_size is None else chunk_size
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise NightlyError(f"chunk_size must be a positive integer, got {size!r}", field="chunk_size")
    return size


def _plan(*, day: dt.date, trigger: str, executor: str, close_period: bool, chunk_size: int | None) -> NightPlan:
    if trigger not in AttributionRun.Trigger.values:
        raise NightlyError(f"trigger must be one of {', '.join(AttributionRun.Trigger.values)}", field="trigger")
    started = time.perf_counter()
    plan = night_plan(day=night_day_parse(day), trigger=trigger, executor=executor, close_period=close_period,
                      chunk_size=_chunk_size(chunk_size))
    _timings_merge(plan.run.pk, plan=round(time.perf_counter() - started, 4), dispatched_at=time.time())
    return plan


def _timings_merge(run_id: int, **values: Any) -> None:
    with transaction.atomic():
        run = AttributionRun.objects.select_for_update().get(pk=run_id)
        run.timings = {**run.timings, **values}
        run.save(update_fields=["timings"])


def night_run(
    *,
    day: dt.date,
    trigger: str = AttributionRun.Trigger.COMMAND,
    close_period: bool = True,
    chunk_size: int | None = None,
    progress: Progress | None = None,
    actor_label: str = "command:run_nightly",
) -> AttributionRun:
    """Run the night of ``day`` in this process; raises after recording the failure if a chunk fails."""
    plan = _plan(day=day, trigger=trigger, executor=EXECUTOR_IN_PROCESS, close_period=close_period,
                 chunk_size=chunk_size)
    total = len(plan.chunk_ids)
    if progress is not None:
        progress(0, total)
    try:
        for done, chunk_id in enumerate(plan.chunk_ids, 1):
            chunk_score(chunk_id=chunk_id, run_id=plan.run.pk)
            if progress is not None:
                progress(done, total)
    except Exception as exc:
        night_fail(run_id=plan.run.pk, stage="scoring", error=exc, actor_label=actor_label)
        raise
    return night_finalize(run_id=plan.run.pk, actor_label=actor_label)


def night_start(
    *,
    day: dt.date,
    trigger: str = AttributionRun.Trigger.TASK,
    close_period: bool = True,
    chunk_size: int | None = None,
    actor_label: str = "celery:attribution.run_nightly",
) -> AttributionRun:
    """Plan the night and hand its chunks to Celery as a chord; its callback settles and closes the day."""
    from celery import chord, group

    from attribution.tasks import nightly_failed, nightly_finalize, nightly_score_chunk

    plan = _plan(day=day, trigger=trigger, executor=EXECUTOR_CELERY, close_period=close_period,
                 chunk_size=chunk_size)
    run_id = plan.run.pk
    body = nightly_finalize.s(run_id).on_error(nightly_failed.s(run_id))

    def dispatch() -> None:
        if plan.chunk_ids:
            header = group(nightly_score_chunk.s(chunk_id, run_id) for chunk_id in plan.chunk_ids)
            chord(header, body).apply_async()
        else:
            body.apply_async(args=([],))

    if nightly_finalize.app.conf.task_always_eager:
        # No broker: the chord runs here and now, and a failing chunk raises here (errbacks are not called).
        try:
            dispatch()
        except Exception as exc:
            night_fail(run_id=run_id, stage="scoring", error=exc, actor_label=actor_label)
            raise
    else:
        # Workers must see the committed plan.
        transaction.on_commit(dispatch)
    plan.run.refresh_from_db()
    return plan.run


def night_fail(*, run_id: int, stage: str, error: BaseException | str, actor_label: str = "") -> AttributionRun:
    """Record that the run failed at ``stage``; the day stays as it was (nothing half-written), re-run it."""
    message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    with transaction.atomic():
        run = AttributionRun.objects.select_for_update().get(pk=run_id)
        run.errors = [*run.errors, {"stage": stage, "message": message[:4000]}]
        if run.status == AttributionRun.Status.RUNNING:
            run.status = AttributionRun.Status.FAILED
            run.finished_at = timezone.now()
        run.save(update_fields=["errors", "status", "finished_at"])
        audit_record(action="attribution.night.fail", obj=run, actor_label=actor_label or "system",
                     after={"day": run.day, "stage": stage, "message": message[:500]})
    logger.error("nightly run #%s for %s failed at %s: %s", run_id, run.day, stage, message)
    return run


def unfinished_night_before(day: dt.date) -> dt.date | None:
    """The first earlier day with chunks still unscored (a night that died and was not re-run), if any."""
    return (AttributionChunk.objects.filter(day__lt=day, status=AttributionChunk.Status.PLANNED)
            .order_by("day").values_list("day", flat=True).first())


def night_finalize(*, run_id: int, actor_label: str = "celery:attribution.nightly_finalize") -> AttributionRun:
    """The chord callback: settle every program of the day, close the day, and record the run's figures."""
    run = AttributionRun.objects.get(pk=run_id)
    day = run.day
    finalize_started = time.perf_counter()
    fanout = round(time.time() - run.timings["dispatched_at"], 4) if "dispatched_at" in run.timings else None
    chunks = AttributionChunk.objects.filter(day=day)
    unscored = chunks.filter(status=AttributionChunk.Status.PLANNED).count()
    if unscored:
        return night_fail(run_id=run_id, stage="settlement",
                          error=f"{unscored} chunk(s) of {day} are still unscored: re-run the night",
                          actor_label=actor_label)
    outcomes: list[ProgramOutcome] = []
    errors: list[dict[str, Any]] = []
    for program_id in sorted(set(chunks.values_list("program_id", flat=True))):
        try:
            outcome = program_day_settle(program_id=program_id, day=day, run=run, actor_label=actor_label)
        except Exception as exc:
            logger.exception("nightly run #%s: settling program %s for %s failed", run_id, program_id, day)
            message = f"{type(exc).__name__}: {exc}"
            outcomes.append(ProgramOutcome(program_id=program_id, program="", day=day.isoformat(), outcome=FAILED,
                                           message=message))
            errors.append({"stage": "settlement", "program_id": program_id, "message": message[:4000],
                           "traceback": tb.format_exc(limit=5)[-4000:]})
            continue
        outcomes.append(outcome)
    warnings: list[str] = list(run.warnings)
    close_started = time.perf_counter()
    closed = False
    unfinished = unfinished_night_before(day)
    if run.close_period and not errors and unfinished is not None:
        # Days close in order: an earlier night that died half-way must finish (and close) first.
        warnings.append(f"period {day} was left open: the night of {unfinished} has unscored chunks; re-run it")
    elif run.close_period and not errors:
        try:
            period_close(day=day, closed_by_label=actor_label)
            closed = True
        except LedgerValidationError as exc:
            warnings.append(f"period {day} was not closed: {exc.message}")
    elif run.close_period:
        warnings.append(f"period {day} was left open because a program failed to settle")
    close_seconds = time.perf_counter() - close_started
    now = timezone.now()

    mine = chunks.filter(scored_by_run=run)
    sums = mine.aggregate(load=Sum("load_seconds"), scoring=Sum("scoring_seconds"), writing=Sum("writing_seconds"),
                          rows=Sum("attribution_count"))
    stage_sum = {key: round(sum(o.timings.get(key, 0.0) for o in outcomes), 4)
                 for key in ("aggregation", "amounts", "posting", "amount_rows", "generation_pools")}
    with transaction.atomic():
        run = AttributionRun.objects.select_for_update().get(pk=run_id)
        run.chunks_scored = mine.count()
        run.chunks_skipped = chunks.count() - run.chunks_scored
        run.attribution_count = int(sums["rows"] or 0)
        run.programs = [o.as_dict() for o in outcomes]
        run.warnings = warnings
        run.errors = [*run.errors, *errors]
        run.timings = {
            **run.timings,
            "load": round(sums["load"] or 0.0, 4), "scoring": round(sums["scoring"] or 0.0, 4),
            "writing": round(sums["writing"] or 0.0, 4), **({"fanout": fanout} if fanout is not None else {}),
            **stage_sum, "close": round(close_seconds, 4),
            "finalize": round(time.perf_counter() - finalize_started, 4),
            "total": round((now - run.started_at).total_seconds(), 4),
        }
        run.status = AttributionRun.Status.FAILED if run.errors else AttributionRun.Status.COMPLETED
        run.finished_at = now
        run.save()
        if run.status == AttributionRun.Status.COMPLETED:
            # Runs of the day that died mid-way (a killed worker never reports) were finished by this one.
            AttributionRun.objects.filter(day=day, status=AttributionRun.Status.RUNNING, pk__lt=run.pk).update(
                status=AttributionRun.Status.SUPERSEDED, finished_at=now
            )
        audit_record(
            action="attribution.night.finish", obj=run, actor_label=actor_label,
            after={"day": day, "status": run.status, "closed": closed, "generations": run.generation_count,
                   "late": run.late_generation_count, "chunks_scored": run.chunks_scored,
                   "programs": [{"program_id": o.program_id, "outcome": o.outcome, "entry_id": o.entry_id}
                                for o in outcomes]},
        )
    logger.info("nightly run #%s for %s: %s, %d chunks scored, %d skipped, programs %s", run.pk, day, run.status,
                run.chunks_scored, run.chunks_skipped, [(o.program_id, o.outcome) for o in outcomes])
    return run
