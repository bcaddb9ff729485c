"""Find and construct a model version's adapter from the dotted path stored on the version."""

from __future__ import annotations

import importlib
from typing import Any

from attribution.adapters.base import AdapterError, ModelAdapter

# Short names an operator may type instead of the dotted path (the dotted path always works).
BUILTIN_ADAPTERS: dict[str, str] = {
    "hf-causal-lm": "attribution.adapters.hf_causal_lm.HFCausalLMAdapter",
    "torch-module": "attribution.adapters.torch_module.TorchModuleAdapter",
    "reference-text": "attribution.adapters.reference_text.ReferenceTextAdapter",
    "reference-image": "attribution.adapters.reference_image.ReferenceImageAdapter",
    "retrieval-text": "attribution.adapters.retrieval.TextRetrievalAdapter",
    "retrieval-image": "attribution.adapters.retrieval.ImageRetrievalAdapter",
}


def adapter_class(dotted_path: str, *, model_version_label: str) -> type[ModelAdapter]:
    """The adapter class named by ``dotted_path`` (``package.module.Class`` or a built-in short name)."""
    path = (dotted_path or "").strip()
    if not path:
        raise AdapterError("no adapter is set (ModelVersion.adapter is empty)", model_version_label=model_version_label)
    path = BUILTIN_ADAPTERS.get(path, path)
    module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise AdapterError(
            f"adapter {dotted_path!r} is not a dotted path of the form package.module.Class",
            model_version_label=model_version_label,
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise AdapterError(
            f"adapter {dotted_path!r}: module {module_name!r} not found ({exc})",
            model_version_label=model_version_label,
        ) from exc
    except Exception as exc:
        # A module that fails while importing is a broken adapter, not a crash of the caller.
        raise AdapterError(
            f"adapter {dotted_path!r}: importing {module_name!r} failed: {type(exc).__name__}: {exc}",
            model_version_label=model_version_label,
        ) from exc
    cls = getattr(module, attr, None)
    if cls is None:
        raise AdapterError(
            f"adapter {dotted_path!r}: {module_name!r} has no attribute {attr!r}",
            model_version_label=model_version_label,
        )
    if not (isinstance(cls, type) and issubclass(cls, ModelAdapter)):
        raise AdapterError(
            f"adapter {dotted_path!r} is not a ModelAdapter subclass (got {cls!r})",
            model_version_label=model_version_label,
        )
    return cls


def adapter_load(
    dotted_path: str, checkpoint_uri: str, config: dict[str, Any] | None, model_version_label: str
) -> ModelAdapter:
    """Construct and validate the adapter of one model version.

    Args:
        dotted_path: the version's ``adapter`` field, e.g. ``attribution.adapters.hf_causal_lm.HFCausalLMAdapter``.
        checkpoint_uri: the version's checkpoint (local path or ``file://``).
        config: the version's ``config`` JSON.
        model_version_label: ``"model@version"``, named in every error.

    Returns:
        The adapter, its checkpoint checked to exist (the model itself is loaded by ``load_model()``).

    Raises:
        AdapterError: the adapter cannot be found or imported, or its checkpoint/config is missing or broken.
    """
    cls = adapter_class(dotted_path, model_version_label=model_version_label)
    try:
        adapter = cls(checkpoint_uri, config or {}, model_version_label=model_version_label)
        adapter.validate()
    except AdapterError:
        raise
    except Exception as exc:
        raise AdapterError(
            f"adapter {dotted_path!r} could not be set up: {type(exc).__name__}: {exc}",
            model_version_label=model_version_label,
        ) from exc
    return adapter
