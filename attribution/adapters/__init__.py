"""Model adapters: connect a model version's checkpoint to the attribution engine (plain torch, no Django).

    from attribution.adapters import adapter_load
    adapter = adapter_load(version.adapter, version.checkpoint_uri, version.config, str(version))

Built-in adapters (short names in ``registry.BUILTIN_ADAPTERS``):
- ``hf_causal_lm.HFCausalLMAdapter``: Hugging Face causal LMs (gradient).
- ``torch_module.TorchModuleAdapter``: any ``nn.Module`` with a per-example loss (gradient).
- ``reference_text.ReferenceTextAdapter`` / ``reference_image.ReferenceImageAdapter``: the models the platform
  trains locally on catalog works (gradient).
- ``retrieval.TextRetrievalAdapter`` / ``retrieval.ImageRetrievalAdapter``: black-box models (retrieval).
"""

from __future__ import annotations

from attribution.adapters.base import (
    METHOD_GRADIENT,
    METHOD_RETRIEVAL,
    AdapterError,
    GenerationInput,
    ModelAdapter,
    WorkInput,
)
from attribution.adapters.registry import BUILTIN_ADAPTERS, adapter_class, adapter_load

__all__ = [
    "BUILTIN_ADAPTERS",
    "METHOD_GRADIENT",
    "METHOD_RETRIEVAL",
    "AdapterError",
    "GenerationInput",
    "ModelAdapter",
    "WorkInput",
    "adapter_class",
    "adapter_load",
]
