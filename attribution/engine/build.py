"""The streaming build of a gradient index: featurise, write shards, gather curvature, write the manifest."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from attribution.engine.config import IndexConfig
from attribution.engine.curvature import fit_ekfac_eigenvalues
from attribution.engine.featurize import CurvatureStats, Featurizer, LossFn
from attribution.engine.fingerprint import model_fingerprint
from attribution.engine.layers import Plan, derived_seed
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
                config: IndexConfig, work_ids: Sequence[Any] | None, progress: Progress | None,
                fisher_loss_fn: LossFn | None = None) -> dict[str, Any]:
    """Featurise every training example of every checkpoint into ``root``; returns the manifest written.

    Memory stays bounded whatever the number of works: one shard buffer, the curvature sums (sized by the
    projection, not by N) and one batch at a time.

    With ``fisher_loss_fn`` (losses of targets sampled from the model) the curvature is the true Fisher's.
    Each batch gets two more passes, each under a random state seeded from ``config.seed``, the checkpoint
    and the batch (so a rebuild gives the same index): one draw gives the curvature sums, an independent
    one the gradients EK-FAC's eigenvalues are fitted from (through temporary shards, deleted once fitted).
    Fitting the eigenvalues on the same draw as the eigenbases they are measured in biases them: the bases
    are fitted to that draw's noise, so small eigenvalues come out too small and their directions too
    loud (docs/benchmarks.md measures it). The stored features are always those of ``loss_fn``. Without
    ``fisher_loss_fn`` the curvature is the empirical Fisher of the stored features themselves.
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
        fisher_dir = root / f"ckpt{c}-fisher"
        fisher_writer = ShardWriter(fisher_dir, plan.dim, config.dtype, config.shard_size) \
            if fisher_loss_fn is not None else None
        for b, batch in enumerate(fresh_batches(train_batches)):
            if fisher_writer is None:
                writer.append(featurizer.features(loss_fn, batch, stats))
            else:
                feats = featurizer.features(loss_fn, batch)
                writer.append(feats)
                # independent draws: some for the Kronecker factors, as many others for the eigenvalues
                # fitted in their eigenbases (fitting both on one draw overstates the eigenvalues' spread)
                for draw in range(config.fisher_samples):
                    extra = (str(draw),) if draw else ()
                    _sampled_features(featurizer, fisher_loss_fn, batch, stats, len(feats),
                                      derived_seed(config.seed, "fisher", "factors", str(c), str(b), *extra))
                    fisher_writer.append(_sampled_features(
                        featurizer, fisher_loss_fn, batch, None, len(feats),
                        derived_seed(config.seed, "fisher", "eigenvalues", str(c), str(b), *extra)))
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
        # features (or the independent sampled draw) rather than the model, so it costs a read of shards.
        curvature_shards = shards if fisher_writer is None else fisher_writer.close()
        try:
            fit_ekfac_eigenvalues(plan, stats, (chunk for _, chunk in iter_shard_rows(
                root, curvature_shards, config.batch_rows)))
        finally:
            if fisher_writer is not None:
                shutil.rmtree(fisher_dir, ignore_errors=True)
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


def _sampled_features(featurizer: Featurizer, fisher_loss_fn: LossFn, batch: Any, stats: CurvatureStats | None,
                      rows: int, seed: int) -> torch.Tensor:
    """Features of ``fisher_loss_fn`` under its own seeded random state; the caller's state is untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            feats = featurizer.features(fisher_loss_fn, batch, stats)
        except ValueError as exc:  # the featuriser's checks speak of "loss_fn"; say which one it was
            raise ValueError(f"fisher_loss_fn: {exc}") from exc
    if len(feats) != rows:
        raise ValueError(f"fisher_loss_fn returned {len(feats)} losses for a batch where loss_fn returned {rows}")
    return feats
