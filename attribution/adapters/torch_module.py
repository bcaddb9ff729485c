"""Any ``torch.nn.Module`` with a per-example loss, described by dotted paths in the version's config.

Config (the model version's ``config`` JSON; keys in the checkpoint's own ``config.json`` are defaults):
    module: dotted path of the ``nn.Module`` class, e.g. ``"mypkg.models.Net"``.
    module_kwargs: keyword arguments for its constructor.
    loss: dotted path of ``loss(model, batch) -> Tensor[B]``; without it the module's ``per_example_loss(batch)``.
    fisher_loss: dotted path of the same loss with targets drawn from the model (for ``index.fisher =
        "sampled"``); without it the module's ``per_example_fisher_loss(batch)`` if it has one.
    collate_works: dotted path of ``collate(works: Sequence[WorkInput]) -> batch``.
    collate_generations: dotted path of ``collate(generations: Sequence[GenerationInput]) -> batch``.
    weights: file name of the state dict inside the checkpoint directory (default: ``model.safetensors``, then
        ``model.pt``); or ``checkpoint_uri`` names the state-dict file itself.

State dicts load with ``weights_only=True`` (tensors, never pickled code); the class comes from the dotted path.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from attribution.adapters.base import (
    METHOD_GRADIENT,
    GenerationInput,
    ModelAdapter,
    WorkInput,
    batched,
    torch_load_state_dict,
)

WEIGHT_FILES = ("model.safetensors", "model.pt")
CHECKPOINT_CONFIG = "config.json"


def import_dotted(path: str) -> Any:
    """The object at ``package.module.attr``; raises ImportError/AttributeError with the path in the message."""
    module_name, _, attr = path.rpartition(".")
    if not module_name:
        raise ImportError(f"{path!r} is not a dotted path (package.module.name)")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError as exc:
        raise AttributeError(f"module {module_name!r} has no attribute {attr!r}") from exc


class TorchModuleAdapter(ModelAdapter):
    """A plain ``nn.Module`` checkpoint plus the functions that batch works and compute its loss."""

    method = METHOD_GRADIENT
    modality = "any"
    # Subclasses (the reference models) fix these instead of reading them from the config.
    module_path: ClassVar[str | None] = None

    def __init__(self, checkpoint_uri: str, config: dict[str, Any] | None, *, model_version_label: str) -> None:
        super().__init__(checkpoint_uri, config, model_version_label=model_version_label)
        self._options: dict[str, Any] | None = None

    # --- options ------------------------------------------------------------------------------------------

    def weights_file(self) -> Path:
        path = self.checkpoint_dir()
        if path.is_file():
            return path
        name = self.config.get("weights")
        candidates = [name] if name else list(WEIGHT_FILES)
        for candidate in candidates:
            if (path / candidate).is_file():
                return path / candidate
        raise self.error(f"checkpoint {self.checkpoint_uri!r} has no weights file (looked for {', '.join(candidates)})")

    @property
    def options(self) -> dict[str, Any]:
        """The checkpoint's ``config.json`` overlaid with the version's config."""
        if self._options is None:
            stored: dict[str, Any] = {}
            path = self.checkpoint_dir()
            config_file = path / CHECKPOINT_CONFIG if path.is_dir() else path.with_name(CHECKPOINT_CONFIG)
            if config_file.is_file():
                try:
                    stored = json.loads(config_file.read_text())
                except ValueError as exc:
                    raise self.error(f"{str(config_file)!r} is not valid JSON: {exc}") from exc
            self._options = {**stored, **self.config}
        return self._options

    def _resolve(self, key: str, *, required: bool) -> Any:
        dotted = self.options.get(key)
        if not dotted:
            if required:
                raise self.error(f"config.{key} (a dotted path) is required by {type(self).__name__}")
            return None
        try:
            return import_dotted(dotted)
        except Exception as exc:
            raise self.error(f"config.{key} = {dotted!r} cannot be imported: {type(exc).__name__}: {exc}") from exc

    def validate(self) -> None:
        self.weights_file()
        if self.module_path is None:
            self._resolve("module", required=True)
            self._resolve("collate_works", required=True)
            self._resolve("collate_generations", required=True)
            self._resolve("loss", required=False)
            self._resolve("fisher_loss", required=False)
        kwargs = self.options.get("module_kwargs", {})
        if not isinstance(kwargs, dict):
            raise self.error(f"config.module_kwargs must be an object, got {type(kwargs).__name__}")

    # --- model --------------------------------------------------------------------------------------------

    def module_class(self) -> type[nn.Module]:
        cls = import_dotted(self.module_path) if self.module_path else self._resolve("module", required=True)
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise self.error(f"config.module {cls!r} is not a torch.nn.Module subclass")
        return cls

    def load_model(self) -> nn.Module:
        cls = self.module_class()
        weights = self.weights_file()
        try:
            model = cls(**self.options.get("module_kwargs", {}))
            state = torch_load_state_dict(weights)
            model.load_state_dict(state)
        except Exception as exc:
            raise self.error(f"cannot load {cls.__name__} from {str(weights)!r}: {type(exc).__name__}: {exc}") from exc
        model.to("cpu").eval()
        return model

    def loss_fn(self, model: nn.Module, batch: Any) -> torch.Tensor:
        loss = self._loss_callable()
        return loss(model, batch) if loss is not None else model.per_example_loss(batch)

    def _loss_callable(self) -> Callable[[nn.Module, Any], torch.Tensor] | None:
        return self._resolve("loss", required=False)

    @property
    def supports_sampled_fisher(self) -> bool:
        return (self._resolve("fisher_loss", required=False) is not None
                or callable(getattr(self.module_class(), "per_example_fisher_loss", None)))

    def fisher_loss_fn(self, model: nn.Module, batch: Any) -> torch.Tensor:
        loss = self._resolve("fisher_loss", required=False)
        if loss is not None:
            return loss(model, batch)
        if callable(getattr(model, "per_example_fisher_loss", None)):
            return model.per_example_fisher_loss(batch)
        return super().fisher_loss_fn(model, batch)

    # --- batches ------------------------------------------------------------------------------------------

    def collate_works(self, works: Sequence[WorkInput]) -> Any:
        return self._resolve("collate_works", required=True)(works)

    def collate_generations(self, generations: Sequence[GenerationInput]) -> Any:
        return self._resolve("collate_generations", required=True)(generations)

    def work_batches(self, works: Sequence[WorkInput], batch_size: int) -> Iterator[Any]:
        self.check_works(works)
        for chunk in batched(works, batch_size):
            yield self.collate_works(chunk)

    def generation_batches(self, generations: Sequence[GenerationInput], batch_size: int) -> Iterator[Any]:
        for chunk in batched(generations, batch_size):
            yield self.collate_generations(chunk)
