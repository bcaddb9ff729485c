"""Retention: prompts and outputs can hold personal data, so their text does not outlive its use.

Once a generation has been attributed (the nightly job sets ``attributed_at``) and N days have passed
(ROYALTIES_GENERATION_TEXT_RETENTION_DAYS, 0 = keep forever), its prompt and output text are erased and an
uploaded output file is deleted. Hashes, revenue, metadata and attribution results stay, so statements remain
explainable: the SHA-256 still identifies what was generated.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from attribution.models import Generation
from audit.services import audit_record

# Rows per UPDATE: small enough that one transaction never holds many row locks for long.
PURGE_CHUNK = 2_000


@dataclass(frozen=True)
class PurgeReport:
    cutoff: dt.datetime | None
    purged: int
    files_deleted: int
    dry_run: bool


def generation_purge_queryset(*, cutoff: dt.datetime):
    """Generations whose text the purge erases: attributed at or before ``cutoff`` and not purged yet."""
    return Generation.objects.filter(
        attributed_at__isnull=False, attributed_at__lte=cutoff, text_purged_at__isnull=True
    )


def generation_text_purge(
    *,
    retention_days: int | None = None,
    now: dt.datetime | None = None,
    dry_run: bool = False,
    actor_label: str = "system",
) -> PurgeReport:
    """Erase prompt and output text of generations attributed more than ``retention_days`` ago."""
    days = settings.ROYALTIES_GENERATION_TEXT_RETENTION_DAYS if retention_days is None else retention_days
    if days < 0:
        raise ValueError(f"retention_days must be >= 0, got {days}")
    if days == 0:
        return PurgeReport(cutoff=None, purged=0, files_deleted=0, dry_run=dry_run)
    now = now or timezone.now()
    cutoff = now - dt.timedelta(days=days)
    if dry_run:
        return PurgeReport(cutoff=cutoff, purged=generation_purge_queryset(cutoff=cutoff).count(), files_deleted=0,
                           dry_run=True)
    purged = 0
    media_names: set[str] = set()
    while True:
        with transaction.atomic():
            chunk: list[tuple[int, Any]] = list(
                generation_purge_queryset(cutoff=cutoff).order_by("pk").values_list("pk", "output_media")[:PURGE_CHUNK]
            )
            if not chunk:
                break
            ids = [pk for pk, _ in chunk]
            media_names.update(name for _, name in chunk if name)
            purged += Generation.objects.filter(pk__in=ids, text_purged_at__isnull=True).update(
                prompt="", output_text="", output_media="", text_purged_at=now
            )
    files_deleted = _delete_unreferenced(media_names)
    if purged:
        audit_record(
            action="generation.text_purge", object_type="attribution.generation", object_id="*",
            actor_label=actor_label,
            after={"cutoff": cutoff, "retention_days": days, "purged": purged, "files_deleted": files_deleted},
        )
    return PurgeReport(cutoff=cutoff, purged=purged, files_deleted=files_deleted, dry_run=False)


def _delete_unreferenced(names: set[str]) -> int:
    """Delete purged output files no other generation still points at (media is stored by content hash)."""
    if not names:
        return 0
    still_used = set(Generation.objects.filter(output_media__in=names).values_list("output_media", flat=True))
    deleted = 0
    for name in sorted(names - still_used):
        if default_storage.exists(name):
            default_storage.delete(name)
            deleted += 1
    return deleted
