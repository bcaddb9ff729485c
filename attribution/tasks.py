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
