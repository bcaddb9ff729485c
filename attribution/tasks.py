"""Celery tasks of the attribution app: thin entry points that call one service each."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from attribution.services.retention import generation_text_purge


# A lost database connection passes; the purge is idempotent (it only touches rows not yet purged).
@shared_task(
    name="attribution.purge_generation_text", autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5
)
def purge_generation_text() -> dict:
    """Daily: erase prompt/output text of generations attributed more than the retention period ago."""
    report = generation_text_purge(actor_label="celery:attribution.purge_generation_text")
    return {"purged": report.purged, "files_deleted": report.files_deleted,
            "cutoff": report.cutoff.isoformat() if report.cutoff else None}


# --- the nightly job (attribution/nightly/): beat starts it, a chord fans its chunks out -----------------
# Every step is idempotent (a scored chunk is skipped, a settled day posts nothing), so retrying after a
# lost database connection, or a message redelivered after a worker died (acks_late), is always safe.


@shared_task(name="attribution.run_nightly", autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def run_nightly(day: str | None = None, close_period: bool = True, trigger: str = "beat") -> dict:
    """Beat, 02:00 UTC: the night of ``day`` (default: the previous UTC day), fanned out to the workers."""
    from attribution.nightly.services import night_day_parse, night_start

    run = night_start(day=night_day_parse(day), trigger=trigger, close_period=close_period,
                      actor_label="celery:attribution.run_nightly")
    return {"run_id": run.pk, "day": run.day.isoformat(), "status": run.status,
            "generations": run.generation_count, "chunks_planned": run.chunks_planned}


@shared_task(bind=True, name="attribution.nightly_score_chunk", acks_late=True, autoretry_for=(OperationalError,),
             retry_backoff=True, max_retries=5)
def nightly_score_chunk(self, chunk_id: int, run_id: int) -> dict:
    """Score one chunk and write its attribution rows (nothing if it is already scored)."""
    from attribution.nightly.scoring import chunk_score, worker_name

    worker = f"{self.request.hostname}:{worker_name().rsplit(':', 1)[-1]}" if self.request.hostname else ""
    return chunk_score(chunk_id=chunk_id, run_id=run_id, worker=worker).as_dict()


@shared_task(name="attribution.nightly_finalize", autoretry_for=(OperationalError,), retry_backoff=True,
             max_retries=5)
def nightly_finalize(chunk_results: list, run_id: int) -> dict:
    """The chord callback: settle every program's day, post, close the day, record the run."""
    from attribution.nightly.services import night_finalize

    run = night_finalize(run_id=run_id, actor_label="celery:attribution.nightly_finalize")
    return {"run_id": run.pk, "status": run.status, "programs": [(p["program_id"], p["outcome"]) for p in run.programs]}


@shared_task(name="attribution.nightly_failed")
def nightly_failed(request, exc, traceback, run_id: int) -> None:
    """The chord's error callback: a chunk failed for good (or the callback did); the run records why."""
    from attribution.nightly.services import night_fail

    night_fail(run_id=run_id, stage="celery", error=exc if isinstance(exc, BaseException) else str(exc),
               actor_label="celery:attribution.nightly_failed")
