"""A black-box (retrieval) adapter for the nightly tests: texts embedded as counts of a fixed vocabulary.

Its scores are exactly predictable (cosine of word counts), so a test can say which works a generation draws
on, build a generation that draws on none (every score 0), and still go through the real path: adapter
registry, index build and load, the engine's ``EmbeddingIndex`` top-k and copy detection.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

from attribution.adapters.base import METHOD_RETRIEVAL, GenerationInput, ModelAdapter, WorkInput, batched

WORD = re.compile(r"[a-z]+")


class KeywordEncoder(nn.Module):
    """Batch of texts -> ``[B, V]`` counts of each vocabulary word (the index normalises the rows)."""

    def __init__(self, vocabulary: Sequence[str]) -> None:
        super().__init__()
        self.position = {word: i for i, word in enumerate(vocabulary)}

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        out = torch.zeros((len(texts), len(self.position)), dtype=torch.float32)
        for row, text in enumerate(texts):
            for word in WORD.findall(text.lower()):
                col = self.position.get(word)
                if col is not None:
                    out[row, col] += 1.0
        return out


class KeywordAdapter(ModelAdapter):
    method = METHOD_RETRIEVAL
    modality = "text"
    work_kinds = ("text", "code")
    default_batch_size = 64

    @property
    def vocabulary(self) -> list[str]:
        return list(self.config.get("vocabulary", []))

    def validate(self) -> None:
        if not self.vocabulary or not all(isinstance(w, str) and w for w in self.vocabulary):
            raise self.error("config.vocabulary must be a non-empty list of words")

    def checkpoint_fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.vocabulary).encode()).hexdigest()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "vocabulary": len(self.vocabulary)}

    def load_model(self) -> nn.Module:
        return KeywordEncoder(self.vocabulary).eval()

    def work_batches(self, works: Sequence[WorkInput], batch_size: int) -> Iterator[list[str]]:
        self.check_works(works)
        for chunk in batched(works, batch_size):
            yield [w.text_content() for w in chunk]

    def generation_batches(self, generations: Sequence[GenerationInput], batch_size: int) -> Iterator[list[str]]:
        for chunk in batched(generations, batch_size):
            yield [g.output_text for g in chunk]
