"""The two benchmark tasks: a classifier on scikit-learn's digits and a tiny char-level LM on local text.

Each task gives: works (training examples) in a fixed order, a deterministic `train(indices)` recipe, a
per-example loss, validation/test queries (for the LM: its own sampled generations), planted near-copies of
training works, and `query_losses(model, queries)` for the LDS ground truth.
"""

from __future__ import annotations

import copy
import inspect
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from attribution.engine import sampled_nll

torch.set_num_threads(1)  # every method alike; 2 threads thrash on the shared 2-core machine


@dataclass
class Task:
    name: str
    train_x: Any
    train_y: Any
    val: Any
    test: Any
    planted: Any
    planted_rows: list[int]
    model_fn: Any
    loss_fn: Any
    train_fn: Any
    batch_size: int
    snapshot_epochs: tuple[int, ...] = ()  # the checkpoints (besides the final model) of the ensemble runs
    fisher_loss: Any = None  # the same losses with targets sampled from the model (true Fisher curvature)
    # IndexConfig.include patterns the ensemble sweep tries (besides every trainable parameter)
    layer_sets: dict[str, tuple[str, ...]] = field(default_factory=lambda: {"all": ("*",)})

    def checkpoints(self) -> list[nn.Module]:
        """The full training run's snapshots at ``snapshot_epochs`` and its final model (same run, same seed)."""
        if not hasattr(self, "_checkpoints"):
            self._checkpoints = self.train_fn(list(range(self.n)), seed=0, snapshots=self.snapshot_epochs)
        return self._checkpoints

    @property
    def n(self) -> int:
        return len(self.train_x)

    def train_batches(self, rows: list[int] | None = None, batch_size: int | None = None) -> list[Any]:
        rows = list(range(self.n)) if rows is None else rows
        size = batch_size or self.batch_size
        return [self.select(rows[i:i + size]) for i in range(0, len(rows), size)]

    def select(self, rows: list[int]) -> Any:
        if self.train_y is None:
            return self.train_x[rows]
        return (self.train_x[rows], self.train_y[rows])

    def query_batches(self, queries: Any, size: int = 64) -> list[Any]:
        if isinstance(queries, tuple):
            return [tuple(part[i:i + size] for part in queries) for i in range(0, len(queries[0]), size)]
        return [queries[i:i + size] for i in range(0, len(queries), size)]

    def query_losses(self, model: nn.Module, queries: Any) -> np.ndarray:
        model.eval()
        with torch.no_grad():
            return torch.cat([self.loss_fn(model, b) for b in self.query_batches(queries)]).numpy()


# ---------------------------------------------------------------------------------------------- digits
class DigitsMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(64, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 64) -> (B, 10)
        return self.fc2(torch.tanh(self.fc1(x)))


def digits_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    x, y = batch
    return F.cross_entropy(model(x), y, reduction="none")


def digits_fisher_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """``digits_loss`` with each label drawn from the model's own prediction (a fresh draw every call)."""
    x, _ = batch
    return sampled_nll(model(x))


def digits_task() -> Task:
    from sklearn.datasets import load_digits

    data = load_digits()
    order = np.random.default_rng(0).permutation(len(data.target))
    x = torch.tensor(data.data[order] / 16.0, dtype=torch.float32)
    y = torch.tensor(data.target[order], dtype=torch.int64)
    train_x, train_y = x[:1000], y[:1000]
    val = (x[1000:1100], y[1000:1100])
    test = (x[1100:1300], y[1100:1300])
    planted_rows = list(range(0, 1000, 20))  # 50 works
    noise = 0.05 * torch.randn(len(planted_rows), 64, generator=torch.Generator().manual_seed(7))
    planted = ((train_x[planted_rows] + noise).clamp(0, 1), train_y[planted_rows])

    def train(rows: list[int], seed: int = 0, snapshots: tuple[int, ...] = ()) -> Any:
        torch.manual_seed(seed)
        model = DigitsMLP()
        kept = []
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
        xs, ys = train_x[rows], train_y[rows]
        generator = torch.Generator().manual_seed(seed)
        for epoch in range(1, 31):  # epochs of minibatch Adam
            perm = torch.randperm(len(rows), generator=generator)
            for i in range(0, len(rows), 50):
                idx = perm[i:i + 50]
                optimizer.zero_grad()
                F.cross_entropy(model(xs[idx]), ys[idx]).backward()
                optimizer.step()
            if epoch in snapshots:
                kept.append(copy.deepcopy(model).eval())
        return [*kept, model.eval()] if snapshots else model.eval()

    return Task("digits", train_x, train_y, val, test, planted, planted_rows, DigitsMLP, digits_loss, train, 100,
                (10, 20), digits_fisher_loss)


# ---------------------------------------------------------------------------------------------- text
CONTEXT = 48
PROMPT = 12


def _corpus() -> str:
    """Docstrings of the standard library, in a fixed order: text that ships with Python itself."""
    import argparse
    import collections
    import fractions
    import functools
    import itertools
    import json
    import logging
    import pathlib
    import shutil
    import statistics
    import string
    import textwrap

    parts = []
    for module in (textwrap, string, json, collections, itertools, functools, shutil, statistics, fractions,
                   pathlib, argparse, logging):
        for name in sorted(dir(module)):
            doc = inspect.getdoc(getattr(module, name))
            if doc and not name.startswith("_"):
                parts.append(re.sub(r"\s+", " ", doc.split("\n\n")[0]).strip())
    return " ".join(dict.fromkeys(parts))


class CharGPT(nn.Module):
    """A two-layer GPT (nanoGPT layout, with nn.Linear) over characters."""

    def __init__(self, vocab: int, d: int = 64, layers: int = 2, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(CONTEXT, d)
        self.blocks = nn.ModuleList()
        for _ in range(layers):
            self.blocks.append(nn.ModuleDict({
                "ln1": nn.LayerNorm(d), "qkv": nn.Linear(d, 3 * d), "proj": nn.Linear(d, d),
                "ln2": nn.LayerNorm(d), "fc": nn.Linear(d, 4 * d), "out": nn.Linear(4 * d, d)}))
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:  # (B, T) -> (B, T, V)
        b, t = ids.shape
        h = self.wte(ids) + self.wpe(torch.arange(t).unsqueeze(0))  # (B, T, d)
        for blk in self.blocks:
            q, k, v = blk["qkv"](blk["ln1"](h)).split(h.shape[-1], dim=2)
            q, k, v = (z.view(b, t, self.heads, -1).transpose(1, 2) for z in (q, k, v))  # (B, H, T, d/H)
            att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            h = h + blk["proj"](att.transpose(1, 2).reshape(b, t, -1))
            h = h + blk["out"](F.gelu(blk["fc"](blk["ln2"](h))))
        return self.head(self.ln_f(h))


def text_loss(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """NLL of each sequence's continuation; column 0 holds the prompt length (not a character)."""
    prompt, ids = batch[:, 0], batch[:, 1:]  # (B,), (B, T+1)
    logits = model(ids[:, :-1])  # (B, T, V)
    nll = F.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")  # (B, T)
    return _continuation_sum(nll, prompt)


def text_fisher_loss(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """``text_loss`` with every continuation character drawn from the model's prediction at that position."""
    prompt, ids = batch[:, 0], batch[:, 1:]
    return _continuation_sum(sampled_nll(model(ids[:, :-1])), prompt)


def _continuation_sum(nll: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
    """Each sequence's NLL (B, T) summed over the positions after its prompt, (B,)."""
    positions = torch.arange(nll.shape[1]).unsqueeze(0)
    return (nll * (positions >= (prompt.unsqueeze(1) - 1))).sum(1)


def text_task(works: int = 256, val_queries: int = 100, test_queries: int = 200) -> Task:
    corpus = _corpus()
    chars = sorted(set(corpus))
    stoi = {c: i for i, c in enumerate(chars)}
    encoded = torch.tensor([stoi[c] for c in corpus], dtype=torch.int64)
    step = (len(encoded) - CONTEXT - 1) // works
    assert step >= CONTEXT + 1, "works must not overlap"
    windows = torch.stack([encoded[i * step:i * step + CONTEXT + 1] for i in range(works)])
    # every training work is scored as a whole (prompt length 1: every next character counts)
    train_x = torch.cat([torch.ones(works, 1, dtype=torch.int64), windows], dim=1)
    vocab = len(chars)

    def model_fn() -> nn.Module:
        return CharGPT(vocab)

    def train(rows: list[int], seed: int = 0, snapshots: tuple[int, ...] = ()) -> Any:
        torch.manual_seed(seed)
        model = CharGPT(vocab)
        kept = []
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
        data = train_x[rows]
        generator = torch.Generator().manual_seed(seed)
        for epoch in range(1, 41):
            perm = torch.randperm(len(rows), generator=generator)
            for i in range(0, len(rows), 32):
                optimizer.zero_grad()
                text_loss(model, data[perm[i:i + 32]]).mean().backward()
                optimizer.step()
            if epoch in snapshots:
                kept.append(copy.deepcopy(model).eval())
        return [*kept, model.eval()] if snapshots else model.eval()

    full = train(list(range(works)))
    generator = torch.Generator().manual_seed(11)

    def generate(count: int) -> torch.Tensor:
        rows = torch.randint(0, works, (count,), generator=generator)
        seqs = windows[rows, :PROMPT].clone()
        with torch.no_grad():
            while seqs.shape[1] < CONTEXT + 1:
                logits = full(seqs[:, -CONTEXT:])[:, -1]
                nxt = torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator)
                seqs = torch.cat([seqs, nxt], dim=1)
        return torch.cat([torch.full((count, 1), PROMPT, dtype=torch.int64), seqs], dim=1)

    val, test = generate(val_queries), generate(test_queries)
    planted_rows = list(range(0, works, 8))  # 32 works
    planted = train_x[planted_rows].clone()
    edit = torch.Generator().manual_seed(5)
    for row in planted:  # two characters changed: a near-verbatim copy
        for pos in torch.randint(2, CONTEXT + 2, (2,), generator=edit):
            row[pos] = int(torch.randint(0, vocab, (1,), generator=edit))
    task = Task("text", train_x, None, val, test, planted, planted_rows, model_fn, text_loss, train, 32, (13, 26),
                text_fisher_loss, {"all": ("*",), "linear": ("blocks.*.qkv.*", "blocks.*.proj.*", "blocks.*.fc.*",
                                                             "blocks.*.out.*", "head.*")})
    task.full_model = full  # type: ignore[attr-defined]
    return task


def spearman_lds(scores: np.ndarray, masks: np.ndarray, outputs: np.ndarray) -> float:
    """Linear datamodeling score: mean over queries of Spearman(Σ_{i∈S} τ(q, i), f_q(θ_S)) over subsets S.

    scores (Q, N); masks (M, N) 0/1; outputs (M, Q) = the measured output (minus the query loss).
    """
    return float(np.mean(lds_per_query(scores, masks, outputs)))


def lds_per_query(scores: np.ndarray, masks: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """Each query's Spearman correlation (Q,), whose mean is the LDS (a constant prediction counts 0)."""
    from scipy.stats import spearmanr

    predicted = masks @ scores.T  # (M, Q)
    values = []
    for q in range(scores.shape[0]):
        rho = spearmanr(predicted[:, q], outputs[:, q]).statistic
        values.append(0.0 if math.isnan(rho) else rho)
    return np.array(values)
