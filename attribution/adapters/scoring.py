"""The one call path the nightly job uses for every model version, gradient or retrieval alike.

    adapter = adapter_load(version.adapter, version.checkpoint_uri, version.config, str(version))
    model = adapter.load_model()
    results = attribute_generations(adapter, index, generations, k=10, model=model, copy_index=copy_index)

``index`` is a ``GradientIndex`` or an ``EmbeddingIndex``; both answer ``top_k(model_or_encoder,
loss_fn_or_None, query_batches, k) -> (values [Q, k], rows [Q, k])`` and map rows to works with ``work_ids``.
With a copy index, every work a generation copies is credited even when its score missed the top k (see
``credit_copies``), and the copy is reported so it can be flagged for the contributor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import torch
from torch import nn

from attribution.adapters.base import GenerationInput, ModelAdapter
from attribution.engine.copy_detection import CopyIndex, CopyMatches

# A copied work whose score is not positive gets this one; with cosine scores it is the maximum possible.
COPY_FLOOR_SCORE = 1.0


class TopKIndex(Protocol):
    """What both index kinds provide."""

    @property
    def work_ids(self) -> Sequence[Any]: ...

    def top_k(self, model: Any, loss_fn: Any, query_batches: Any, k: int = 10) -> tuple[torch.Tensor, torch.Tensor]: ...


@dataclass(frozen=True)
class WorkScore:
    """One work's score for one generation; ``copied`` when copy detection found it in the output."""

    work_id: int
    score: float
    copied: bool = False


@dataclass(frozen=True)
class GenerationScores:
    """The best works for one generation (best first), and what it copies."""

    generation_id: int
    works: tuple[WorkScore, ...]
    copies: CopyMatches = field(default_factory=CopyMatches)


def index_top_k(
    adapter: ModelAdapter,
    index: TopKIndex,
    generations: Sequence[GenerationInput],
    k: int,
    *,
    model: nn.Module | None = None,
    work_ids: Sequence[Any] | None = None,
    batch_size: int | None = None,
) -> list[GenerationScores]:
    """Top-``k`` works per generation, through the adapter's batches and the index's ``top_k``.

    Args:
        adapter: the version's adapter (gives batches, and the loss for gradient indexes).
        index: a ``GradientIndex`` or ``EmbeddingIndex`` built with the same adapter.
        generations: the generations to score, in order.
        k: works kept per generation.
        model: the loaded model or encoder (``adapter.load_model()`` when omitted; pass it when scoring
            several chunks, so it is loaded once).
        work_ids: row -> work id (default: ``index.work_ids``).
        batch_size: generations per batch (default: the adapter's).

    Returns:
        One ``GenerationScores`` per generation, in input order. A NaN score (a diverged loss) is dropped.
    """
    if not generations:
        return []
    model = model if model is not None else adapter.load_model()
    ids = list(work_ids if work_ids is not None else index.work_ids)
    batches = adapter.generation_batches(generations, batch_size or adapter.default_batch_size)
    values, rows = index.top_k(model, adapter.loss_fn_or_none, batches, k=k)
    if values.shape[0] != len(generations):
        raise RuntimeError(f"index scored {values.shape[0]} queries for {len(generations)} generations")
    out: list[GenerationScores] = []
    for gen, vals, rws in zip(generations, values.tolist(), rows.tolist(), strict=True):
        works = tuple(
            WorkScore(work_id=int(ids[r]), score=float(v)) for v, r in zip(vals, rws, strict=True) if not math.isnan(v)
        )
        out.append(GenerationScores(generation_id=gen.id, works=works))
    return out


def generation_copies(copy_index: CopyIndex, generation: GenerationInput) -> CopyMatches:
    """What one generation copies: its output text against work texts, its output image against work images."""
    image = None
    if generation.has_binary_output() and generation.output_mime_type.startswith("image/"):
        image = generation.read_output_bytes()
    return copy_index.query(text=generation.output_text, image=image)


def credit_copies(result: GenerationScores, copies: CopyMatches) -> GenerationScores:
    """``result`` with every copied work present, flagged, and scored at least as high as the best work.

    A verbatim copy is always credited: a copied work outside the top k is added, and its score is raised to
    the generation's best positive score (``COPY_FLOOR_SCORE`` when none is positive), so the royalty policy,
    which keeps positive scores, cannot drop it.
    """
    if not copies:
        return result
    copied = set(copies.work_ids)
    best = max((w.score for w in result.works if w.score > 0), default=COPY_FLOOR_SCORE)
    works: list[WorkScore] = []
    seen: set[int] = set()
    for work in result.works:
        if work.work_id in copied:
            works.append(WorkScore(work_id=work.work_id, score=max(work.score, best), copied=True))
            seen.add(work.work_id)
        else:
            works.append(work)
    works.extend(WorkScore(work_id=w, score=best, copied=True) for w in copies.work_ids if w not in seen)
    works.sort(key=lambda w: (-w.score, not w.copied, w.work_id))
    return replace(result, works=tuple(works), copies=copies)


def attribute_generations(
    adapter: ModelAdapter,
    index: TopKIndex,
    generations: Sequence[GenerationInput],
    k: int,
    *,
    model: nn.Module | None = None,
    work_ids: Sequence[Any] | None = None,
    copy_index: CopyIndex | None = None,
    batch_size: int | None = None,
) -> list[GenerationScores]:
    """``index_top_k`` plus copy detection: what the nightly job stores for a chunk of generations."""
    results = index_top_k(adapter, index, generations, k, model=model, work_ids=work_ids, batch_size=batch_size)
    if copy_index is None:
        return results
    return [credit_copies(r, generation_copies(copy_index, g)) for r, g in zip(results, generations, strict=True)]
