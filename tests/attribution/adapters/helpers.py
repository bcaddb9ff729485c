"""A tiny model for the generic ``torch.nn.Module`` adapter tests, referenced by dotted path."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from attribution.adapters.base import GenerationInput, WorkInput

FEATURES = 8


def featurise(text: str) -> list[float]:
    """A fixed bag-of-characters vector of a text (stands in for any real feature extractor)."""
    vec = [0.0] * FEATURES
    for ch in text:
        vec[ord(ch) % FEATURES] += 1.0
    total = sum(vec) or 1.0
    return [v / total for v in vec]


class TinyRegressor(nn.Module):
    """Predicts a text's length bucket from its character histogram; loss = squared error per example."""

    def __init__(self, hidden: int = 4) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(FEATURES, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def per_example_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return (self.net(batch["x"]).squeeze(1) - batch["y"]).pow(2)  # (B,)


def collate_works(works: Sequence[WorkInput]) -> dict[str, torch.Tensor]:
    x = torch.tensor([featurise(w.text_content()) for w in works])
    y = torch.tensor([len(w.text_content()) / 100.0 for w in works])
    return {"x": x, "y": y}


def collate_generations(generations: Sequence[GenerationInput]) -> dict[str, torch.Tensor]:
    x = torch.tensor([featurise(g.output_text) for g in generations])
    y = torch.tensor([len(g.output_text) / 100.0 for g in generations])
    return {"x": x, "y": y}


def absolute_loss(model: TinyRegressor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return (model.net(batch["x"]).squeeze(1) - batch["y"]).abs()


NOT_A_MODULE = 42
