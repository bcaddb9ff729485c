"""The peers, run through their own public APIs: TRAK (traker 0.3.2, CPU BasicProjector) and Kronfluence
(1.0.1, EK-FAC). Installed only under .bench/peers by setup_peers.sh, never a runtime dependency.

Each peer gets a fresh deep copy of the model (traker's load_checkpoint overwrites the caller's weights).
"""

from __future__ import annotations

import copy
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
PEERS = ROOT / ".bench" / "peers"
if not (PEERS / ".installed").exists():
    raise SystemExit("peers missing: run benchmarks/engine/setup_peers.sh first")
sys.path.insert(0, str(PEERS))

from kronfluence.analyzer import Analyzer, prepare_model  # noqa: E402
from kronfluence.arguments import FactorArguments, ScoreArguments  # noqa: E402
from kronfluence.task import Task as KTask  # noqa: E402
from trak import TRAKer  # noqa: E402
from trak.modelout_functions import AbstractModelOutput, ImageClassificationModelOutput  # noqa: E402
from trak.projectors import BasicProjector, ProjectionType  # noqa: E402

logging.getLogger("kronfluence").setLevel(logging.ERROR)
logging.getLogger("TRAK").setLevel(logging.ERROR)
logging.getLogger("STORE").setLevel(logging.ERROR)


# ------------------------------------------------------------------------------------------------- TRAK
class LMOutput(AbstractModelOutput):
    """TRAK model output for the LM: the log-likelihood of the continuation (the quantity the LDS measures)."""

    def __init__(self, loss_fn: Any) -> None:
        self.loss_fn = loss_fn

    def get_output(self, model, weights, buffers, ids):
        wrapper = _Bound(model, weights, buffers, self.loss_fn)
        return -wrapper(ids.unsqueeze(0)).sum()

    def get_out_to_loss_grad(self, model, weights, buffers, batch):
        (ids,) = batch
        return torch.ones(ids.shape[0], 1)


class _Bound:
    def __init__(self, model, weights, buffers, loss_fn) -> None:
        self.model, self.weights, self.buffers, self.loss_fn = model, weights, buffers, loss_fn

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        class Functional(torch.nn.Module):
            def forward(inner, ids):
                return torch.func.functional_call(self.model, (self.weights, self.buffers), (ids,))
        return self.loss_fn(Functional(), batch)


class TrakPeer:
    """One TRAKer featurisation (per projection dim); scoring at any λ reuses the stored gradients."""

    def __init__(self, task: Any, model: torch.nn.Module, proj_dim: int) -> None:
        self.task = task
        self.model = copy.deepcopy(model)
        self.proj_dim = proj_dim
        self.dir = tempfile.mkdtemp(prefix="trak-")
        modelout = ImageClassificationModelOutput() if task.train_y is not None else LMOutput(task.loss_fn)
        self.traker = TRAKer(model=self.model, task=modelout, train_set_size=task.n, save_dir=self.dir,
                             device="cpu", projector=self._projector(), proj_dim=proj_dim,
                             use_half_precision=False, logging_level=logging.ERROR)
        self.experiments = 0
        started = time.perf_counter()
        self.traker.load_checkpoint(self.model.state_dict(), model_id=0)
        for batch in task.train_batches():
            parts = list(batch) if isinstance(batch, tuple) else [batch]
            self.traker.featurize(batch=parts, num_samples=parts[0].shape[0])
        self.featurize_seconds = time.perf_counter() - started
        grads = torch.as_tensor(np.asarray(self.traker.saver.current_store["grads"]), dtype=torch.float64)
        # the kernel's mean eigenvalue, to sweep λ on the same relative scale as ours
        self.mean_eig = float((grads * grads).sum() / grads.shape[1])

    def _projector(self) -> BasicProjector:
        grad_dim = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        return BasicProjector(grad_dim=grad_dim, proj_dim=self.proj_dim, seed=0, proj_type=ProjectionType.normal,
                              device="cpu", dtype=torch.float32)

    def scores(self, queries: Any, ratio: float | None) -> np.ndarray:
        """[Q, N] scores with λ = ratio x mean eigenvalue of ΦᵀΦ (ratio None: traker's default λ = 0)."""
        lam = 0.0 if ratio is None else ratio * self.mean_eig
        traker = self.traker
        traker.score_computer.lambda_reg = lam
        traker.projector = self._projector()  # finalize_features deletes the projection matrix
        traker.saver.model_ids[0]["is_finalized"] = 0
        traker.finalize_features()
        traker.projector = self._projector()
        self.experiments += 1
        name = f"q{self.experiments}"
        batches = self.task.query_batches(queries)
        count = sum((b[0] if isinstance(b, tuple) else b).shape[0] for b in batches)
        traker.start_scoring_checkpoint(exp_name=name, checkpoint=self.model.state_dict(), model_id=0,
                                        num_targets=count)
        for batch in batches:
            parts = list(batch) if isinstance(batch, tuple) else [batch]
            traker.score(batch=parts, num_samples=parts[0].shape[0])
        return np.asarray(traker.finalize_scores(exp_name=name)).T.copy()  # (Q, N)


# ------------------------------------------------------------------------------------------- Kronfluence
class _KTask(KTask):
    def __init__(self, task: Any) -> None:
        self.task = task

    def compute_train_loss(self, batch, model, sample=False):
        if self.task.train_y is not None:
            x, y = batch
            logits = model(x)
            if sample:
                with torch.no_grad():
                    y = torch.multinomial(F.softmax(logits, -1), 1).flatten()
            return F.cross_entropy(logits, y, reduction="sum")
        (batch,) = batch
        if not sample:
            return self.task.loss_fn(model, batch).sum()
        prompt, ids = batch[:, 0], batch[:, 1:]
        logits = model(ids[:, :-1])
        with torch.no_grad():
            sampled = torch.multinomial(F.softmax(logits.reshape(-1, logits.shape[-1]), -1), 1)
        nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), sampled.flatten(), reduction="none")
        nll = nll.reshape(ids.shape[0], -1)
        positions = torch.arange(nll.shape[1]).unsqueeze(0)
        return (nll * (positions >= (prompt.unsqueeze(1) - 1))).sum()

    def compute_measurement(self, batch, model):
        if self.task.train_y is not None:
            return self.task.loss_fn(model, tuple(batch)).sum()
        return self.task.loss_fn(model, batch[0]).sum()


def _dataset(task: Any, data: Any) -> torch.utils.data.Dataset:
    parts = data if isinstance(data, tuple) else (data,)
    return torch.utils.data.TensorDataset(*parts)


class KronfluencePeer:
    """EK-FAC factors fitted once; pairwise scores at any damping."""

    def __init__(self, task: Any, model: torch.nn.Module, seed: int = 0) -> None:
        torch.manual_seed(seed)  # its factor fitting samples labels
        self.task = task
        self.ktask = _KTask(task)
        self.model = prepare_model(copy.deepcopy(model), self.ktask)
        self.dir = tempfile.mkdtemp(prefix="kronfluence-")
        self.analyzer = Analyzer(analysis_name="bench", model=self.model, task=self.ktask, cpu=True,
                                 disable_tqdm=True, output_dir=self.dir)
        train = task.select(list(range(task.n)))
        self.train = _dataset(task, train)
        started = time.perf_counter()
        self.analyzer.fit_all_factors(factors_name="ekfac", dataset=self.train, per_device_batch_size=task.batch_size,
                                      factor_args=FactorArguments(strategy="ekfac"), overwrite_output_dir=True)
        self.factor_seconds = time.perf_counter() - started
        self.runs = 0
        self.tracked = [n for n, m in self.model.named_modules() if type(m).__name__.startswith("Tracked")]

    def scores(self, queries: Any, damping: float | None) -> np.ndarray:
        self.runs += 1
        name = f"s{self.runs}"
        self.analyzer.compute_pairwise_scores(
            scores_name=name, factors_name="ekfac", query_dataset=_dataset(self.task, queries),
            train_dataset=self.train, per_device_query_batch_size=64, per_device_train_batch_size=self.task.batch_size,
            score_args=ScoreArguments(damping_factor=damping), overwrite_output_dir=True)
        return self.analyzer.load_pairwise_scores(name)["all_modules"].numpy().copy()  # (Q, N)


# ------------------------------------------------------------------------------------------- ensembles
class CheckpointEnsemble:
    """A peer over several checkpoints of one training run: the mean of one peer's scores per checkpoint.

    TRAK's own ensembling averages per-model scores the same way; Kronfluence has none, so this gives it the
    same checkpoints the engine ensembles over (``GradientIndex.build`` with a list of models).
    """

    def __init__(self, make_peer: Any, checkpoints: list[torch.nn.Module]) -> None:
        self.peers = [make_peer(model) for model in checkpoints]

    def scores(self, queries: Any, setting: Any) -> np.ndarray:
        return np.mean([peer.scores(queries, setting) for peer in self.peers], axis=0)
