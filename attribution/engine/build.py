"""The streaming build of a gradient index: featurise, write shards, gather curvature, write the manifest."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from attribution.engine.config import IndexConfig
from attribution.engine.curvature import fit_ekfac_eigenvalues
from attribution.engine.featurize import CurvatureStats, Featurizer, LossFn
from attribution.engine.fingerprint import model_fingerprint
from attribution.engine.layers import Plan
from attribution.engine.storage import (
    FORMAT,
    VERSION,
    ShardWriter,
    file_sha256,
    files_checksum,
    iter_shard_rows,
    save_stats,
    write_manifest,
)

Progress = Callable[[int, "int | None"], None]
Batches = Iterable[Any] | Callable[[], Iterable[Any]]


def fresh_batches(batches: Batches) -> Iterable[Any]:
    return batches() if callable(batches) else batches


def batch_count(batches: Iterable[Any]) -> int | None:
    try:
        return len(batches)  # type: ignore[arg-type]
    except TypeError:
        return None


def write_index(root: Path, models: list[nn.Module], loss_fn: LossFn, train_batches: Batches, plan: Plan,
                config: IndexConfig, work_ids: Sequence[Any] | None, progress: Progress | None) -> dict[str, Any]:
    """Featurise every training example of every checkpoint into ``root``; returns the manifest written.

    Memory stays bounded whatever the number of works: one shard buffer, the curvature sums (sized by the
    projection, not by N) and one batch at a time.
    """
    total = batch_count(fresh_batches(train_batches))
    total_steps = total * len(models) if total is not None else None
    done = 0
    checkpoints = []
    num_rows = None
    for c, member in enumerate(models):
        featurizer = Featurizer(member, plan, config.seed, config.device)
        stats = CurvatureStats()
        if config.keep_gram or config.curvature == "trak":
            stats.gram = torch.zeros(plan.dim, plan.dim, dtype=torch.float64)
        writer = ShardWriter(root / f"ckpt{c}", plan.dim, config.dtype, config.shard_size)
        for batch in fresh_batches(train_batches):
            writer.append(featurizer.features(loss_fn, batch, stats))
            done += 1
            if progress is not None:
                progress(done, total_steps)
        shards = writer.close()
        if num_rows is None:
            num_rows = writer.rows
        elif writer.rows != num_rows:
            raise ValueError(f"checkpoint {c} saw {writer.rows} examples, checkpoint 0 saw {num_rows}: "
                             "train_batches must give the same works every time")
        # EK-FAC's eigenvalue correction needs the eigenbases first: one more pass, over the stored
        # features rather than the model, so it costs a read of the shards.
        fit_ekfac_eigenvalues(plan, stats, (chunk for _, chunk in iter_shard_rows(root, shards,
                                                                                   config.batch_rows)))
        save_stats(root / f"ckpt{c}" / "curvature.npz", stats)
        checkpoints.append({"fingerprint": model_fingerprint(member), "shards": shards,
                            "curvature": f"ckpt{c}/curvature.npz"})
    num_rows = num_rows or 0
    if num_rows == 0:
        raise ValueError("train_batches gave no examples")
    ids = list(range(num_rows)) if work_ids is None else list(work_ids)
    if len(ids) != num_rows:
        raise ValueError(f"work_ids has {len(ids)} ids for {num_rows} training examples")
    if len(set(map(str, ids))) != len(ids):
        raise ValueError("work_ids must be unique")
    (root / "work_ids.json").write_text(json.dumps(ids))

    files = {"work_ids.json": file_sha256(root / "work_ids.json")}
    for checkpoint in checkpoints:
        for shard in checkpoint["shards"]:
            for key in ("file", "scale"):
                if key in shard:
                    files[shard[key]] = file_sha256(root / shard[key])
        files[checkpoint["curvature"]] = file_sha256(root / checkpoint["curvature"])
    manifest = {
        "format": FORMAT, "version": VERSION,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "config": config.to_dict(), "plan": plan.to_dict(),
        "feature_dim": plan.dim, "num_rows": num_rows,
        "checkpoints": checkpoints, "files": files, "checksum": files_checksum(files),
    }
    write_manifest(root, manifest)
    return manifest
