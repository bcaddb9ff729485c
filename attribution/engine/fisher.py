"""Losses of targets drawn from the model itself, for the true Fisher curvature of a build.

The Fisher information is an expectation over the model's own predictive distribution, not over the
observed targets. Curvature fitted from the stored (observed-target) gradients is the empirical Fisher; on a
well-fitted model those gradients are small and skewed towards the examples it still gets wrong, so the
curvature misses the directions the model is confident in. A ``fisher_loss_fn`` passed to
``GradientIndex.build`` gives the true Fisher instead: it draws each target from the prediction, as
Kronfluence does when it fits its factors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sampled_nll(logits: torch.Tensor) -> torch.Tensor:
    """NLL of one target drawn from ``softmax(logits)`` at every position: logits (..., V) -> (...).

    The draw uses torch's global random state, which ``GradientIndex.build`` seeds per checkpoint and
    batch; the draw itself carries no gradient, the NLL does.
    """
    flat = logits.reshape(-1, logits.shape[-1])
    with torch.no_grad():
        drawn = torch.multinomial(F.softmax(flat.float(), dim=-1), 1).flatten()
    return F.cross_entropy(flat, drawn, reduction="none").reshape(logits.shape[:-1])
