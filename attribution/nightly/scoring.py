"""Scoring one chunk: the version's adapter and index score its generations; top-k rows are written at once.

The scores are computed outside any transaction (minutes of engine time must not hold locks); then one
transaction locks the chunk, checks it is still unscored, inserts every ``Attribution`` row, sets the
generations' ``attributed_at`` (the retention clock) and marks the chunk scored. A worker killed at any
point before that commit leaves the chunk planned and row-less, and the next run scores it again; a chunk
scored twice at once (two runs racing) keeps the first result.

Each worker process keeps the loaded index and model of the versions it scored last (keyed by the index
checksum, so a rebuilt index is loaded afresh). Torch is imported here only, never by web code.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, OperationalError, transaction
from django.utils import timezone

from attribution.models import Attribution, AttributionChunk, Generation, ModelVersion
from attribution.nightly.errors import ChunkScoringError
from attribution.nightly.sql import bulk_insert

logger = logging.getLogger(__name__)

# Loaded (index, model) pairs kept per process: a night scores one or two versions, and a model can be large.
CACHE_SIZE = 2
_scorers: OrderedDict[tuple[int, str], Scorer] = OrderedDict()

ATTRIBUTION_FIELDS = ["chunk", "generation", "work", "day", "rank", "score", "copied", "copy_spans"]


@dataclass
class Scorer:
    """A version's loaded index (with its adapter and copy index) and model, ready to score chunks."""

    loaded: Any  # attribution.index_services.LoadedIndex
    model: Any
    checksum: str


@dataclass(frozen=True)
class ChunkResult:
    chunk_id: int
    status: str  # "scored" | "already_scored"
    generations: int
    attributions: int
    load_seconds: float = 0.0
    scoring_seconds: float = 0.0
    writing_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "chunk_id": self.chunk_id, "status": self.status, "generations": self.generations,
            "attributions": self.attributions, "load_seconds": round(self.load_seconds, 4),
            "scoring_seconds": round(self.scoring_seconds, 4), "writing_seconds": round(self.writing_seconds, 4),
        }


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def scorer_for(*, model_version: ModelVersion) -> tuple[Scorer, float]:
    """The version's scorer from this process's cache, else loaded (and verified); returns load seconds."""
    from attribution.index_services import attribution_index_load

    key = (model_version.pk, model_version.index_checksum)
    cached = _scorers.get(key)
    if cached is not None:
        _scorers.move_to_end(key)
        return cached, 0.0
    started = time.perf_counter()
    loaded = attribution_index_load(model_version=model_version)
    model = loaded.adapter.load_model()
    scorer = Scorer(loaded=loaded, model=model, checksum=model_version.index_checksum)
    _scorers[key] = scorer
    while len(_scorers) > CACHE_SIZE:
        _scorers.popitem(last=False)
    return scorer, time.perf_counter() - started


def scorer_cache_clear() -> None:
    _scorers.clear()


def copy_spans(copies: Any, work_id: int) -> list[dict[str, Any]]:
    """Where the generation copies ``work_id``: character spans of its text, or the region of its image."""
    spans: list[dict[str, Any]] = []
    for match in copies.text:
        if match.work_id == work_id:
            spans.append({
                "kind": "text", "generation_span": list(match.generation_span), "work_words": list(match.work_words),
                "matched_words": match.matched_words, "verbatim": match.verbatim,
            })
    for match in copies.images:
        if match.work_id == work_id:
            spans.append({
                "kind": "image", "region": list(match.region), "distance": match.distance,
                "correlation": round(float(match.correlation), 4), "whole_image": match.whole_image,
            })
    return spans


def _rows(chunk: AttributionChunk, results: list[Any]) -> list[tuple]:
    rows = []
    for result in results:
        rank = 0
        for work in result.works:
            # The policy needs finite scores; an infinite one is a diverged loss, dropped like NaN upstream.
            if not math.isfinite(work.score):
                continue
            rank += 1
            spans = json.dumps(copy_spans(result.copies, work.work_id)) if work.copied else None
            rows.append((chunk.pk, result.generation_id, work.work_id, chunk.day, rank, float(work.score),
                         bool(work.copied), spans))
    return rows


def chunk_score(*, chunk_id: int, run_id: int | None = None, worker: str = "") -> ChunkResult:
    """Score one chunk and write its attribution rows, unless it was scored already (then nothing is written)."""
    from attribution.adapters.scoring import attribute_generations
    from attribution.index_services import generation_inputs

    chunk = AttributionChunk.objects.select_related("model_version__ai_model").get(pk=chunk_id)
    if chunk.status == AttributionChunk.Status.SCORED:
        return ChunkResult(chunk_id, "already_scored", chunk.generation_count, chunk.attribution_count)
    AttributionChunk.objects.filter(pk=chunk_id).update(attempts=chunk.attempts + 1)
    try:
        version = chunk.model_version
        scorer, load_seconds = scorer_for(model_version=version)
        # Scoring time includes reading the chunk's generations: it is the chunk's work before the write.
        started = time.perf_counter()
        generations = list(Generation.objects.filter(nightly__chunk=chunk).order_by("id")
                           .only("id", "prompt", "output_text", "output_media", "output_mime_type"))
        if len(generations) != chunk.generation_count:
            raise ChunkScoringError(f"chunk {chunk.key} planned {chunk.generation_count} generations but holds "
                                    f"{len(generations)}")
        loaded = scorer.loaded
        results = attribute_generations(
            loaded.adapter, loaded.index, generation_inputs(generations), chunk.top_k, model=scorer.model,
            copy_index=loaded.copy_index,
        )
        scoring_seconds = time.perf_counter() - started
        rows = _rows(chunk, results)
    except Exception as exc:
        try:
            AttributionChunk.objects.filter(pk=chunk_id).update(last_error=f"{type(exc).__name__}: {exc}"[:2000])
        except DatabaseError:
            logger.warning("nightly: could not record the error of chunk %s", chunk.key)
        # A lost database connection may pass: the task retries it as it is (see attribution.tasks).
        if isinstance(exc, ChunkScoringError | OperationalError):
            raise
        raise ChunkScoringError(f"chunk {chunk.key} ({chunk.model_version}): {type(exc).__name__}: {exc}") from exc
    started = time.perf_counter()
    with transaction.atomic():
        locked = AttributionChunk.objects.select_for_update().get(pk=chunk_id)
        if locked.status == AttributionChunk.Status.SCORED:
            return ChunkResult(chunk_id, "already_scored", locked.generation_count, locked.attribution_count)
        bulk_insert(Attribution, ATTRIBUTION_FIELDS, rows)
        # The generations now have their attribution results: the retention clock starts, with the rows.
        Generation.objects.filter(pk__in=[g.pk for g in generations], attributed_at__isnull=True).update(
            attributed_at=timezone.now()
        )
        locked.status = AttributionChunk.Status.SCORED
        locked.attribution_count = len(rows)
        locked.scored_by_run_id = run_id
        locked.scored_at = timezone.now()
        locked.index_checksum = scorer.checksum
        locked.worker = (worker or worker_name())[:200]
        locked.load_seconds = load_seconds
        locked.scoring_seconds = scoring_seconds
        locked.last_error = ""
        locked.save(update_fields=["status", "attribution_count", "scored_by_run", "scored_at", "index_checksum",
                                   "worker", "load_seconds", "scoring_seconds", "last_error"])
    # Writing time includes the commit (the rows' index updates and the WAL flush are part of it).
    writing_seconds = time.perf_counter() - started
    AttributionChunk.objects.filter(pk=chunk_id).update(writing_seconds=writing_seconds)
    logger.info("nightly: chunk %s scored, %d generations, %d attribution rows (%.2fs scoring, %.2fs writing)",
                chunk.key, len(generations), len(rows), scoring_seconds, writing_seconds)
    return ChunkResult(chunk_id, "scored", len(generations), len(rows), load_seconds, scoring_seconds,
                       writing_seconds)

