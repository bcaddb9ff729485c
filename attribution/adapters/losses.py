"""Per-example losses shared by the text adapters (plain torch)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100  # the label value transformers' causal-LM loss skips


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
    """Per-example next-token NLL over positions whose label is not -100, ``[B]``.

    Position ``t`` predicts label ``t + 1``, as in transformers' ``ForCausalLMLoss``. An example with no
    output token has loss 0 (and so zero gradient), rather than NaN.
    """
    shift_logits = logits[:, :-1, :].float()  # (B, T-1, V)
    shift_labels = labels[:, 1:]  # (B, T-1)
    mask = shift_labels != IGNORE_INDEX  # (B, T-1)
    token_nll = F.cross_entropy(
        shift_logits.reshape(-1, shift_logits.size(-1)),
        shift_labels.clamp(min=0).reshape(-1),
        reduction="none",
    ).view(shift_labels.shape)  # (B, T-1)
    token_nll = token_nll * mask
    total = token_nll.sum(dim=1)  # (B,)
    if reduction == "sum":
        return total
    return total / mask.sum(dim=1).clamp(min=1)
