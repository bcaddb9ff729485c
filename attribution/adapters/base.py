"""The adapter contract: what connects one model version's checkpoint to the attribution engine.

Plain Python + torch, no Django: the index services turn ORM rows into the frozen inputs below, and an
adapter turns those into model batches. Two kinds of adapters share one base class:

- ``method = "gradient"``: white-box models. ``load_model()`` gives the ``nn.Module`` and ``loss_fn(model,
  batch)`` its per-example loss (a tensor ``[B]``), which the gradient index differentiates.
- ``method = "retrieval"``: black-box models. ``load_model()`` gives an *encoder*: a callable mapping one batch
  to L2-normalised embeddings ``[B, D]``; ``loss_fn`` is ``None``.

Either way, ``work_batches`` and ``generation_batches`` yield batches in input order, one row per input, so row
``i`` of an index is ``works[i]`` and query row ``j`` is ``generations[j]``.
"""

from __future__ import annotations

import abc
import hashlib
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

METHOD_GRADIENT = "gradient"
METHOD_RETRIEVAL = "retrieval"


class AdapterError(Exception):
    """A model version's adapter or checkpoint cannot be loaded or used; the message names the version."""

    def __init__(self, message: str, *, model_version_label: str = "") -> None:
        self.model_version_label = model_version_label
        prefix = f"model version {model_version_label!r}: " if model_version_label else ""
        super().__init__(prefix + message)


@dataclass(frozen=True)
class WorkInput:
    """One training work as the engine sees it: content only, no ORM object.

    ``text`` is the work's text body; binary content (an image) is in ``data`` or at ``path``. ``title`` carries
    the work's title and description, which conditional models read as a caption (e.g. the digit's label).
    """

    id: int
    kind: str
    text: str = ""
    data: bytes | None = None
    path: str | None = None
    mime_type: str = ""
    sha256: str = ""
    title: str = ""

    def read_bytes(self) -> bytes:
        """The work's binary content (``data``, else the file at ``path``, else the UTF-8 text)."""
        if self.data is not None:
            return self.data
        if self.path:
            return Path(self.path).read_bytes()
        return self.text.encode("utf-8")

    def text_content(self) -> str:
        """The work's text: the text body, else a text file's content decoded as UTF-8."""
        if self.text:
            return self.text
        if self.data is not None or self.path:
            return self.read_bytes().decode("utf-8", errors="replace")
        return ""


@dataclass(frozen=True)
class GenerationInput:
    """One logged generation: the prompt, and the output as text or as bytes/path (e.g. an image)."""

    id: int
    prompt: str = ""
    output_text: str = ""
    output_data: bytes | None = None
    output_path: str | None = None
    output_mime_type: str = ""

    def read_output_bytes(self) -> bytes:
        if self.output_data is not None:
            return self.output_data
        if self.output_path:
            return Path(self.output_path).read_bytes()
        return self.output_text.encode("utf-8")

    def has_binary_output(self) -> bool:
        return self.output_data is not None or bool(self.output_path)


def batched(items: Sequence[Any], batch_size: int) -> Iterator[Sequence[Any]]:
    """Consecutive slices of ``items`` of at most ``batch_size``, in order."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for start in range(0, len(items), batch_size):
        yield items[start : start + batch_size]


def checkpoint_path(checkpoint_uri: str) -> Path:
    """A local path from a checkpoint URI (a plain path or ``file://``); other schemes are not supported."""
    uri = checkpoint_uri.strip()
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    elif "://" in uri:
        raise ValueError(f"unsupported checkpoint URI scheme in {checkpoint_uri!r} (use a local path or file://)")
    return Path(uri).expanduser()


def path_fingerprint(path: Path) -> str:
    """SHA-256 over a file, or over every file of a directory (relative name + content), in name order.

    Any change to the weights, the tokenizer or the config changes the fingerprint, so an index built from an
    older checkpoint is refused.
    """
    digest = hashlib.sha256()
    if path.is_file():
        files = [(path.name, path)]
    else:
        files = sorted(
            (p.relative_to(path).as_posix(), p) for p in path.rglob("*") if p.is_file() and not _hidden(p, path)
        )
    for name, file in files:
        digest.update(name.encode("utf-8") + b"\0")
        with open(file, "rb") as fh:
            for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def _hidden(file: Path, root: Path) -> bool:
    # Caches (.cache/, __pycache__) change without the weights changing; they must not make an index stale.
    return any(part.startswith(".") or part == "__pycache__" for part in file.relative_to(root).parts)


class ModelAdapter(abc.ABC):
    """Loads one model version and turns works and generations into its batches.

    Args:
        checkpoint_uri: where the checkpoint is (a local path or ``file://`` URI).
        config: the model version's ``config`` JSON (adapter options).
        model_version_label: how errors name the version, e.g. ``"storyteller@v1"``.
    """

    method: ClassVar[str] = METHOD_GRADIENT
    modality: ClassVar[str] = "text"
    # The work kinds this adapter reads (None: any); others are refused with a clear error.
    work_kinds: ClassVar[tuple[str, ...] | None] = None
    default_batch_size: ClassVar[int] = 16

    def __init__(self, checkpoint_uri: str, config: dict[str, Any] | None, *, model_version_label: str) -> None:
        self.checkpoint_uri = checkpoint_uri or ""
        self.config = dict(config or {})
        self.model_version_label = model_version_label

    # --- errors -------------------------------------------------------------------------------------------

    def error(self, message: str) -> AdapterError:
        return AdapterError(message, model_version_label=self.model_version_label)

    # --- checkpoint ---------------------------------------------------------------------------------------

    def checkpoint_dir(self) -> Path:
        """The checkpoint's local path; raises ``AdapterError`` naming the version if it is missing."""
        if not self.checkpoint_uri:
            raise self.error(f"{type(self).__name__} needs a checkpoint_uri, and none is set")
        try:
            path = checkpoint_path(self.checkpoint_uri)
        except ValueError as exc:
            raise self.error(str(exc)) from exc
        if not path.exists():
            raise self.error(f"checkpoint {self.checkpoint_uri!r} does not exist")
        return path

    def validate(self) -> None:
        """Cheap checks before any heavy loading (checkpoint present, options sane); raises ``AdapterError``."""
        self.checkpoint_dir()

    def checkpoint_fingerprint(self) -> str:
        """A hash of everything the model is loaded from; an index records it and refuses a changed one."""
        return path_fingerprint(self.checkpoint_dir())

    def describe(self) -> dict[str, Any]:
        """What an index records about the adapter besides the fingerprint (JSON-ready)."""
        return {"adapter": f"{type(self).__module__}.{type(self).__qualname__}", "method": self.method}

    # --- model --------------------------------------------------------------------------------------------

    @abc.abstractmethod
    def load_model(self) -> nn.Module:
        """The model (gradient) or the encoder (retrieval), on the CPU, in eval mode."""

    def loss_fn(self, model: nn.Module, batch: Any) -> torch.Tensor:
        """Per-example loss ``[B]`` (gradient adapters only)."""
        raise self.error(f"{type(self).__name__} is a {self.method} adapter and has no per-example loss")

    @property
    def supports_sampled_fisher(self) -> bool:
        """Whether ``fisher_loss_fn`` exists: the loss is an NLL whose targets can be drawn from the model."""
        return False

    def fisher_loss_fn(self, model: nn.Module, batch: Any) -> torch.Tensor:
        """``loss_fn`` with its targets drawn from the model's own prediction, ``[B]``.

        Gradient indexes built with it (``config.index.fisher = "sampled"``) fit their curvature to the true
        Fisher instead of the empirical one; the stored features are still those of ``loss_fn``.
        """
        raise self.error(f"{type(self).__name__} has no sampled-target loss: set config.index.fisher to "
                         f"'empirical' for this model version")

    @property
    def loss_fn_or_none(self):
        """``loss_fn`` for gradient adapters, ``None`` for retrieval ones: the second argument of ``top_k``."""
        return self.loss_fn if self.method == METHOD_GRADIENT else None

    # --- batches ------------------------------------------------------------------------------------------

    @abc.abstractmethod
    def work_batches(self, works: Sequence[WorkInput], batch_size: int) -> Iterable[Any]:
        """Batches over ``works`` in order, one row per work."""

    @abc.abstractmethod
    def generation_batches(self, generations: Sequence[GenerationInput], batch_size: int) -> Iterable[Any]:
        """Batches over ``generations`` in order, one row per generation."""

    def check_works(self, works: Sequence[WorkInput]) -> None:
        """Refuse works of a kind this adapter cannot read (before any model is loaded)."""
        if self.work_kinds is None:
            return
        allowed = set(self.work_kinds)
        bad = [w for w in works if w.kind not in allowed]
        if bad:
            sample = ", ".join(f"{w.id} ({w.kind})" for w in bad[:5])
            raise self.error(
                f"{type(self).__name__} reads {'/'.join(sorted(allowed))} works; {len(bad)} manifest work(s) "
                f"are of another kind: {sample}"
            )


def torch_load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from ``.safetensors`` or a torch file, tensors only (``weights_only``: no pickled code)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise TypeError(f"{path} holds a {type(state).__name__}, not a state dict")
    return state


def set_offline_hub() -> None:
    """Forbid Hugging Face Hub downloads before transformers/sentence-transformers are imported."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
