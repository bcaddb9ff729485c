"""GradientIndex: build, save, load and query the projected-gradient features of the training works."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import weakref
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from attribution.engine.build import Batches, Progress, batch_count, fresh_batches, write_index
from attribution.engine.config import SCORE_NORM_POWER, IndexConfig, IndexMismatchError
from attribution.engine.curvature import Preconditioner
from attribution.engine.featurize import CurvatureStats, Featurizer, LossFn
from attribution.engine.fingerprint import model_fingerprint
from attribution.engine.layers import Plan, make_plan
from attribution.engine.storage import iter_shard_rows, load_stats, read_manifest, verify_files

logger = logging.getLogger(__name__)

Models = nn.Module | Sequence[nn.Module]


def _models(model: Models) -> list[nn.Module]:
    models = [model] if isinstance(model, nn.Module) else list(model)
    if not models or not all(isinstance(m, nn.Module) for m in models):
        raise TypeError("model must be an nn.Module or a non-empty sequence of nn.Module checkpoints")
    return models


class GradientIndex:
    """Projected per-example gradients of the training works, and the curvature to precondition them.

    Build it once per model version; score generations against it every night. Scores are
    ⟨C⁻¹ φ(query), φ(work)⟩ averaged over checkpoints: positive means the work made the query more likely.
    """

    def __init__(self, root: Path, manifest: dict[str, Any], *, curvature: str | None = None,
                 damping_ratio: float | None = None, damping: float | None = None,
                 score_norm: str | None = None) -> None:
        self.root = Path(root)
        self.manifest = manifest
        self.config = IndexConfig.from_dict(manifest["config"])
        self.plan = Plan.from_dict(manifest["plan"])
        self.curvature = curvature or self.config.curvature
        self.damping_ratio = damping_ratio if damping_ratio is not None else self.config.damping_ratio
        self.damping = damping if damping is not None else (self.config.damping if damping_ratio is None
                                                             else None)
        self.score_norm = score_norm or self.config.score_norm
        self._norms: list[torch.Tensor] | None = None
        self._work_ids: list[Any] | None = None
        self._stats: list[CurvatureStats] | None = None
        self._preconditioners: list[Preconditioner] | None = None
        self._cleanup: Any = None

    # ---------------------------------------------------------------- properties
    @property
    def coverage(self) -> dict[str, Any]:
        """Which parameters take part (names, shapes, share of the trainable ones) and which are left out."""
        return self.plan.coverage

    @property
    def fingerprint(self) -> str:
        """The model fingerprint of the (first) checkpoint the index was built on."""
        return self.manifest["checkpoints"][0]["fingerprint"]

    @property
    def fingerprints(self) -> list[str]:
        return [c["fingerprint"] for c in self.manifest["checkpoints"]]

    @property
    def checksum(self) -> str:
        return self.manifest["checksum"]

    @property
    def num_works(self) -> int:
        return int(self.manifest["num_rows"])

    @property
    def feature_dim(self) -> int:
        return int(self.manifest["feature_dim"])

    @property
    def work_ids(self) -> list[Any]:
        if self._work_ids is None:
            self._work_ids = json.loads((self.root / "work_ids.json").read_text())
        return self._work_ids

    def rows_to_work_ids(self, rows: torch.Tensor) -> list[list[Any]]:
        ids = self.work_ids
        return [[ids[int(r)] for r in row] for row in rows.reshape(rows.shape[0], -1)]

    # ---------------------------------------------------------------- build
    @classmethod
    def build(cls, model: Models, loss_fn: LossFn, train_batches: Batches, *, projection_dim: int | None = None,
              seed: int | None = None, config: IndexConfig | None = None, work_ids: Sequence[Any] | None = None,
              path: str | Path | None = None, progress: Progress | None = None,
              fisher_loss_fn: LossFn | None = None) -> GradientIndex:
        """Featurise every training example and gather the curvature, streaming to disk.

        Args:
            model: the trained model, or a sequence of checkpoints to ensemble over (TRAK-style).
            loss_fn: ``loss_fn(model, batch) -> per-example losses [B]``; the only thing a model provides.
            train_batches: the training works in a fixed order, or a callable returning a fresh iterable
                (needed to go over them once per checkpoint).
            projection_dim, seed: shortcuts that override the same fields of ``config``.
            config: an :class:`IndexConfig`.
            work_ids: one id per training example, in order (default: 0..N-1).
            path: directory to write to (default: a temporary directory until :meth:`save`).
            progress: ``progress(done_batches, total_batches_or_None)`` after every batch.
            fisher_loss_fn: optional ``fisher_loss_fn(model, batch) -> [B]`` whose targets are sampled from
                the model's own predictive distribution (a fresh draw on every call, from torch's global
                random state, which the build seeds). The curvature is then the true Fisher's, as
                Kronfluence's is, instead of the empirical Fisher of the observed targets (it sets
                ``config.fisher`` to ``"sampled"``); the stored features stay those of ``loss_fn``. It costs
                two more forward and backward passes per batch and per ``config.fisher_samples`` draw (one
                for the curvature sums, an independent one for EK-FAC's eigenvalues); scoring costs the same.

        Returns:
            The index, ready to score.
        """
        config = config or IndexConfig()
        overrides = {k: v for k, v in (("projection_dim", projection_dim), ("seed", seed),
                                       ("fisher", "sampled" if fisher_loss_fn is not None else None))
                     if v is not None}
        if overrides:
            config = IndexConfig.from_dict({**config.to_dict(), **overrides})
        if config.fisher == "sampled" and fisher_loss_fn is None:
            raise ValueError("config.fisher is 'sampled': pass fisher_loss_fn (the losses of targets drawn from "
                             "the model), or use fisher='empirical'")
        models = _models(model)
        if len(models) > 1 and not callable(train_batches) and iter(train_batches) is train_batches:
            raise ValueError("ensembling over checkpoints goes over train_batches once per checkpoint: pass a "
                             "list or a callable returning a fresh iterable, not an iterator")
        plan = make_plan(models[0], config)
        for other in models[1:]:
            if make_plan(other, config).structure() != plan.structure():
                raise ValueError("all checkpoints must have the same architecture and trainable parameters")

        temporary = path is None
        root = Path(tempfile.mkdtemp(prefix="gradient-index-")) if temporary else Path(path)
        root.mkdir(parents=True, exist_ok=True)
        if (root / "manifest.json").exists():
            raise FileExistsError(f"{root} already holds an index; choose an empty directory")
        try:
            manifest = write_index(root, models, loss_fn, train_batches, plan, config, work_ids, progress,
                                   fisher_loss_fn)
        except BaseException:
            if temporary:  # a failed build leaves nothing behind (a given path keeps its partial files)
                shutil.rmtree(root, ignore_errors=True)
            raise
        index = cls(root, manifest)
        if temporary:
            index._cleanup = weakref.finalize(index, shutil.rmtree, root, True)
        logger.info("built gradient index: %d works x %d dims, %d checkpoint(s), coverage %.1f%%",
                    index.num_works, plan.dim, len(models), 100 * plan.coverage["share"])
        return index

    # ---------------------------------------------------------------- save / load
    def save(self, path: str | Path) -> Path:
        """Write the index to ``path`` (a new or empty directory) and use it from there."""
        target = Path(path)
        if target.resolve() == self.root.resolve():
            return target
        if target.exists() and any(target.iterdir()):
            raise FileExistsError(f"{target} is not empty; an index is saved into a new or empty directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            target.rmdir()
        if self._cleanup is not None:
            shutil.move(str(self.root), str(target))
            self._cleanup.detach()
            self._cleanup = None
        else:
            shutil.copytree(self.root, target)
        self.root = target
        return target

    @classmethod
    def load(cls, path: str | Path, *, expect_model_fingerprint: str | Sequence[str] | None = None,
             expect_work_ids: Sequence[Any] | None = None, expect_config: IndexConfig | None = None,
             verify: bool = True) -> GradientIndex:
        """Open a saved index, refusing a stale or foreign one.

        Args:
            path: the index directory.
            expect_model_fingerprint: the fingerprint (or one per checkpoint) of the model it must belong to.
            expect_work_ids: the works, in order, it must cover (the model version's training manifest).
            expect_config: options whose feature-defining fields (projection, seed, layers) must match.
            verify: re-hash every file against the manifest (raises ``IndexIntegrityError`` if altered).

        Raises:
            IndexMismatchError: the index belongs to another model, other works or other options.
            IndexIntegrityError: files missing or altered.
        """
        root = Path(path)
        manifest = read_manifest(root)
        if verify:
            verify_files(root, manifest)
        index = cls(root, manifest)
        if expect_model_fingerprint is not None:
            expected = ([expect_model_fingerprint] if isinstance(expect_model_fingerprint, str)
                        else list(expect_model_fingerprint))
            if expected != index.fingerprints:
                raise IndexMismatchError(
                    f"index at {root} was built for model fingerprint(s) {[f[:12] for f in index.fingerprints]}, "
                    f"expected {[f[:12] for f in expected]}: the model changed since the build (stale index)")
        if expect_work_ids is not None:
            expected_ids = json.loads(json.dumps(list(expect_work_ids)))
            if expected_ids != index.work_ids:
                missing = len(set(map(str, expected_ids)) - set(map(str, index.work_ids)))
                raise IndexMismatchError(
                    f"index at {root} covers {index.num_works} works, expected {len(expected_ids)} "
                    f"({missing} expected work(s) not in the index, or another order): rebuild it")
        if expect_config is not None and expect_config.feature_defining() != index.config.feature_defining():
            raise IndexMismatchError(f"index at {root} was built with {index.config.feature_defining()}, expected "
                                     f"{expect_config.feature_defining()}")
        return index

    def with_curvature(self, curvature: str | None = None, *, damping_ratio: float | None = None,
                       damping: float | None = None, score_norm: str | None = None) -> GradientIndex:
        """The same stored features under another preconditioner, damping or normalisation (no rebuild)."""
        check = IndexConfig(curvature=curvature or self.curvature,
                            damping_ratio=damping_ratio if damping_ratio is not None else self.damping_ratio,
                            damping=damping, score_norm=score_norm or self.score_norm)
        other = GradientIndex(self.root, self.manifest, curvature=check.curvature,
                              damping_ratio=check.damping_ratio, damping=damping, score_norm=check.score_norm)
        other._stats = self._checkpoint_stats()  # loaded once, eigendecompositions shared between views
        other._work_ids = self._work_ids
        other._parent = self  # keeps a temporary index's files alive while this view is in use
        return other

    # ---------------------------------------------------------------- scoring
    def _checkpoint_stats(self) -> list[CurvatureStats]:
        if self._stats is None:
            self._stats = [load_stats(self.root / c["curvature"]) for c in self.manifest["checkpoints"]]
        return self._stats

    def _preconditioner(self) -> list[Preconditioner]:
        if self._preconditioners is None:
            self._preconditioners = [Preconditioner(self.plan, stats, self.curvature, self.damping_ratio,
                                                    self.damping) for stats in self._checkpoint_stats()]
        return self._preconditioners

    @property
    def dampings(self) -> list[dict[str, float]]:
        """The λ actually used, per checkpoint and block ("*" for TRAK's global one)."""
        return [p.dampings for p in self._preconditioner()]

    def _check_models(self, models: list[nn.Module], check_fingerprint: bool) -> None:
        if len(models) != len(self.manifest["checkpoints"]):
            raise IndexMismatchError(f"index was built on {len(self.manifest['checkpoints'])} checkpoint(s), "
                                     f"got {len(models)} model(s)")
        for c, member in enumerate(models):
            if check_fingerprint:
                actual = model_fingerprint(member)
                if actual != self.fingerprints[c]:
                    raise IndexMismatchError(f"model (checkpoint {c}) has fingerprint {actual[:12]}, the index was "
                                             f"built for {self.fingerprints[c][:12]}: stale or foreign index")
            params = dict(member.named_parameters(remove_duplicate=False))
            for block in self.plan.blocks:
                for name, shape in zip(block.params, block.shapes, strict=True):
                    if name not in params or list(params[name].shape) != shape:
                        raise IndexMismatchError(f"model has no parameter {name} of shape {shape}: foreign index")

    def _query_blocks(self, models: list[nn.Module], loss_fn: LossFn, query_batches: Batches,
                      progress: Progress | None) -> Iterator[torch.Tensor]:
        """Preconditioned query features in blocks: (C, q, K) with q <= query_block (one batch may exceed)."""
        featurizers = [Featurizer(m, self.plan, self.config.seed, self.config.device) for m in models]
        preconditioners = self._preconditioner()
        batches = fresh_batches(query_batches)
        total = batch_count(batches)
        pending: list[torch.Tensor] = []
        count = 0
        for done, batch in enumerate(batches, start=1):
            feats = torch.stack([p(f.features(loss_fn, batch)) for f, p in
                                 zip(featurizers, preconditioners, strict=True)])  # (C, B, K)
            pending.append(feats)
            count += feats.shape[1]
            if progress is not None:
                progress(done, total)
            if count >= self.config.query_block:
                yield torch.cat(pending, dim=1)
                pending, count = [], 0
        if pending:
            yield torch.cat(pending, dim=1)

    def _row_chunks(self) -> Iterator[tuple[int, list[torch.Tensor]]]:
        """(first row, per-checkpoint features (n, K)) over the stored works, chunk by chunk."""
        iterators = [iter_shard_rows(self.root, c["shards"], self.config.batch_rows)
                     for c in self.manifest["checkpoints"]]
        for parts in zip(*iterators, strict=True):
            yield parts[0][0], [chunk for _, chunk in parts]

    def _work_norms(self) -> list[torch.Tensor] | None:
        """(φ_iᵀ C⁻¹ φ_i)^(power/2) per work and checkpoint (see score_norm): one pass over the shards, cached."""
        if self.score_norm == "none":
            return None
        if self._norms is None:
            preconditioners = self._preconditioner()
            device = torch.device(self.config.device)
            # Preallocated: small long-lived tensors appended between large freed chunks would fragment
            # the heap and make the process grow with N.
            norms = torch.ones(len(preconditioners), self.num_works)
            for start, chunks in self._row_chunks():
                for c, (chunk, p) in enumerate(zip(chunks, preconditioners, strict=True)):
                    chunk = chunk.to(device)
                    self_influence = torch.einsum("nk,nk->n", p(chunk), chunk).clamp_min(0).sqrt().cpu()
                    # A work whose gradient is exactly zero keeps norm 1 (its score is 0 either way).
                    norms[c, start:start + len(chunk)] = torch.where(self_influence > 0, self_influence, 1.0)
            self._norms = list(norms ** SCORE_NORM_POWER[self.score_norm])
        return self._norms

    def _block_scores(self, queries: torch.Tensor, start: int, chunks: list[torch.Tensor]) -> torch.Tensor:
        device = queries.device
        norms = self._work_norms()
        total = torch.zeros(queries.shape[1], chunks[0].shape[0], device=device)
        for c, (q, chunk) in enumerate(zip(queries, chunks, strict=True)):
            part = q @ chunk.to(device).T  # (q, n)
            if norms is not None:
                part = part / norms[c][start:start + chunk.shape[0]].to(device)
            total += part
        return total / len(chunks)

    def query_features(self, model: Models, loss_fn: LossFn, query_batches: Batches, *,
                       check_fingerprint: bool = True) -> torch.Tensor:
        """Raw (unpreconditioned) projected query gradients, (C, Q, K): for analysis and tests."""
        models = _models(model)
        self._check_models(models, check_fingerprint)
        featurizers = [Featurizer(m, self.plan, self.config.seed, self.config.device) for m in models]
        return torch.stack([torch.cat([f.features(loss_fn, b) for b in fresh_batches(query_batches)]) for f in
                            featurizers])

    def score_features(self, query_features: torch.Tensor) -> torch.Tensor:
        """Scores [Q, N] from raw query features (C, Q, K) as given by :meth:`query_features`.

        Lets a caller featurise queries once and score them under several curvatures or dampings.
        """
        if query_features.dim() != 3 or query_features.shape[0] != len(self.manifest["checkpoints"]) \
                or query_features.shape[2] != self.feature_dim:
            raise ValueError(f"query_features must be (checkpoints, Q, {self.feature_dim}), got "
                             f"{tuple(query_features.shape)}")
        queries = torch.stack([p(f) for p, f in zip(self._preconditioner(), query_features, strict=True)])
        out = torch.empty(queries.shape[1], self.num_works, dtype=torch.float32)
        for start, chunks in self._row_chunks():
            out[:, start:start + chunks[0].shape[0]] = self._block_scores(queries, start, chunks).cpu()
        return out

    def train_features(self, checkpoint: int = 0) -> torch.Tensor:
        """All stored work features of one checkpoint, (N, K) float32. Loads everything: small indexes only."""
        shards = self.manifest["checkpoints"][checkpoint]["shards"]
        return torch.cat([chunk for _, chunk in iter_shard_rows(self.root, shards, self.config.batch_rows)])

    def score(self, model: Models, loss_fn: LossFn, query_batches: Batches, *, progress: Progress | None = None,
              check_fingerprint: bool = True) -> torch.Tensor:
        """Scores of every query against every work: torch.Tensor [Q, N] (float32).

        Args:
            model: the model (or the checkpoints) the index was built on; refused if its weights changed.
            loss_fn: ``loss_fn(model, batch) -> per-example losses [B]`` (for an LM: NLL of the generation).
            query_batches: the queries, e.g. generations.
            progress: ``progress(done_batches, total_batches_or_None)``.
            check_fingerprint: compare the model's fingerprint with the index's (costs one hash of the weights).
        """
        models = _models(model)
        self._check_models(models, check_fingerprint)
        blocks = []
        for queries in self._query_blocks(models, loss_fn, query_batches, progress):
            out = torch.empty(queries.shape[1], self.num_works, dtype=torch.float32)
            for start, chunks in self._row_chunks():
                out[:, start:start + chunks[0].shape[0]] = self._block_scores(queries, start, chunks).cpu()
            blocks.append(out)
        if not blocks:
            return torch.empty(0, self.num_works)
        return torch.cat(blocks)

    def top_k(self, model: Models, loss_fn: LossFn, query_batches: Batches, k: int = 10, *,
              progress: Progress | None = None, check_fingerprint: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """The k highest-scoring works per query, never holding the whole [Q, N] matrix.

        Returns:
            (values [Q, k] float32, rows [Q, k] int64), best first; map rows to works with ``work_ids``.
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        k = min(k, self.num_works)
        models = _models(model)
        self._check_models(models, check_fingerprint)
        return self._top_k_blocks(self._query_blocks(models, loss_fn, query_batches, progress), k)

    def top_k_features(self, query_features: torch.Tensor, k: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
        """Like :meth:`top_k`, from raw query features (C, Q, K) as given by :meth:`query_features`."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        preconditioners = self._preconditioner()
        step = self.config.query_block
        blocks = (torch.stack([p(f[i:i + step]) for p, f in zip(preconditioners, query_features, strict=True)])
                  for i in range(0, query_features.shape[1], step))
        return self._top_k_blocks(blocks, min(k, self.num_works))

    def _top_k_blocks(self, query_blocks: Iterable[torch.Tensor], k: int) -> tuple[torch.Tensor, torch.Tensor]:
        all_values, all_rows = [], []
        for queries in query_blocks:
            best_values = torch.full((queries.shape[1], 0), float("-inf"))
            best_rows = torch.zeros((queries.shape[1], 0), dtype=torch.int64)
            for start, chunks in self._row_chunks():
                block = self._block_scores(queries, start, chunks).cpu()  # (q, n) for this chunk only
                take = min(k, block.shape[1])
                values, rows = torch.topk(block, take, dim=1)
                merged_values = torch.cat([best_values, values], dim=1)
                merged_rows = torch.cat([best_rows, rows + start], dim=1)
                order = _stable_order(merged_values, merged_rows)[:, :k]
                best_values = torch.gather(merged_values, 1, order)
                best_rows = torch.gather(merged_rows, 1, order)
            all_values.append(best_values)
            all_rows.append(best_rows)
        if not all_values:
            return torch.empty(0, k), torch.empty(0, k, dtype=torch.int64)
        return torch.cat(all_values), torch.cat(all_rows)


def _stable_order(values: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Descending by value, ties by lower row: the same ranking whatever the chunking."""
    by_row = torch.argsort(rows, dim=1, stable=True)
    by_value = torch.argsort(torch.gather(values, 1, by_row), dim=1, descending=True, stable=True)
    return torch.gather(by_row, 1, by_value)
