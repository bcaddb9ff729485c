"""A content hash of a model's weights, so an index built on other weights is refused."""

from __future__ import annotations

import hashlib

import torch
from torch import nn


def model_fingerprint(model: nn.Module) -> str:
    """SHA-256 over the state dict: every parameter's and buffer's name, dtype, shape and values.

    Two models with equal fingerprints give the same gradients; any retraining, fine-tuning step or
    change of architecture changes it. Tied tensors appear under each of their names, as in the state dict.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict(keep_vars=False).items()):
        if not isinstance(tensor, torch.Tensor):
            continue
        data = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{data.dtype}|{tuple(data.shape)}|".encode())
        # Bytes of the raw storage (works for bfloat16, which numpy cannot represent).
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return digest.hexdigest()
