"""Per-example losses shared by the text adapters (plain torch)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from attribution.engine.fisher import sampled_nll

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
    return _reduce(token_nll, mask, reduction)


def sampled_causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
    """``causal_lm_loss`` over the same positions, each target token drawn from the model's own prediction.

    The ``fisher_loss_fn`` of the text adapters: an index built with it fits its curvature to the true Fisher
    (``IndexConfig.fisher = "sampled"``). The draws use torch's global random state, which the build seeds.
    """
    shift_logits = logits[:, :-1, :].float()  # (B, T-1, V)
    mask = labels[:, 1:] != IGNORE_INDEX  # (B, T-1)
    return _reduce(sampled_nll(shift_logits), mask, reduction)


def _reduce(token_nll: torch.Tensor, mask: torch.Tensor, reduction: str) -> torch.Tensor:
    """The masked positions' NLL per example, ``[B]``: summed, or averaged over the example's positions."""
    total = (token_nll * mask).sum(dim=1)  # (B,)
    if reduction == "sum":
        return total
    return total / mask.sum(dim=1).clamp(min=1)
