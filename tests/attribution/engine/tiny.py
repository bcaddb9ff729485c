"""Tiny models, data and a brute-force reference for the engine tests."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers.pytorch_utils import Conv1D

from attribution.engine.layers import Plan, projection

VOCAB = 13
SEQ = 6


class TinyLM(nn.Module):
    """Every layer kind the engine knows: tied embedding/head, GPT-2 Conv1D, LayerNorm, and a bare Parameter."""

    def __init__(self) -> None:
        super().__init__()
        self.wte = nn.Embedding(VOCAB, 8)
        self.wpe = nn.Embedding(SEQ, 8)
        self.mix = Conv1D(16, 8)  # HF layout: weight [in=8, out=16]
        self.ln = nn.LayerNorm(16)
        self.proj = nn.Linear(16, 8)
        self.gain = nn.Parameter(torch.ones(8))  # no hook knows it: torch.func fallback
        self.head = nn.Linear(8, VOCAB, bias=False)
        self.head.weight = self.wte.weight  # tied, as in GPT-2

    def forward(self, ids: torch.Tensor) -> torch.Tensor:  # (B, T) -> (B, T, V)
        pos = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0)  # (1, T), broadcast as in GPT-2
        h = self.wte(ids) + self.wpe(pos)  # (B, T, 8)
        h = h + self.proj(torch.tanh(self.ln(self.mix(h)))) * self.gain
        return self.head(h)


def lm_loss(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """Per-sequence next-token NLL, (B,)."""
    logits = model(batch[:, :-1])
    return F.cross_entropy(logits.transpose(1, 2), batch[:, 1:], reduction="none").sum(1)


class TinyConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1, stride=2)
        self.fc = nn.Linear(3 * 4 * 4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, 8, 8) -> (B, 5)
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def xy_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    x, y = batch
    return F.cross_entropy(model(x), y, reduction="none")


def lm_data(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, VOCAB, (n, SEQ + 1), generator=torch.Generator().manual_seed(seed))


def image_data(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 8, 8, generator=generator), torch.randint(0, 5, (n,), generator=generator)


def brute_force_features(model: nn.Module, loss_fn, examples: list, plan: Plan, seed: int) -> torch.Tensor:
    """Full per-example gradients, one backward per example, projected with the same matrices: (N, K)."""
    params = dict(model.named_parameters(remove_duplicate=False))
    rows = []
    for example in examples:
        model.zero_grad()
        loss_fn(model, example)[0].backward()
        feats = []
        for block in plan.blocks:
            grads = [params[name].grad.detach().clone() for name in block.params]
            if block.kind == "lowrank":
                g = grads[0].reshape(block.rows, block.cols)
                if block.cols_aug:
                    g = torch.cat([g, grads[1].reshape(-1, 1)], dim=1)
                if block.rows_aug:
                    g = torch.cat([g, grads[1].reshape(1, -1)], dim=0)
                p_rows = projection(seed, block.name, "rows", block.k_rows, block.rows_full)
                p_cols = projection(seed, block.name, "cols", block.k_cols, block.cols_full)
                g = g if p_rows is None else p_rows.T @ g
                g = g if p_cols is None else g @ p_cols
                feats.append(g.reshape(-1))
            else:
                vec = torch.cat([g.reshape(-1) for g in grads])
                p = projection(seed, block.name, "vector", block.k_cols, block.numel)
                feats.append(vec if p is None else vec @ p)
        rows.append(torch.cat(feats))
    model.zero_grad()
    return torch.stack(rows)
