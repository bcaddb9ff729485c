"""The attribution engine: plain PyTorch/NumPy, no Django, usable and testable as a library.

    from attribution.engine import GradientIndex
    index = GradientIndex.build(model, loss_fn, train_batches, projection_dim=2048, seed=0)
    index.save(path); index = GradientIndex.load(path)
    scores = index.score(model, loss_fn, query_batches)      # torch.Tensor [Q, N]
    values, rows = index.top_k(model, loss_fn, query_batches, k=10)

``loss_fn(model, batch) -> per-example losses [B]`` is the only thing a model must provide. An optional
``fisher_loss_fn`` (the same losses with targets drawn from the model, see ``sampled_nll``) gives the build
the true Fisher's curvature instead of the empirical one.
"""

from __future__ import annotations

from attribution.engine.config import (
    AttributionIndexError,
    IndexConfig,
    IndexIntegrityError,
    IndexMismatchError,
)
from attribution.engine.fingerprint import model_fingerprint
from attribution.engine.fisher import sampled_nll
from attribution.engine.index import GradientIndex

__all__ = [
    "AttributionIndexError",
    "GradientIndex",
    "IndexConfig",
    "IndexIntegrityError",
    "IndexMismatchError",
    "model_fingerprint",
    "sampled_nll",
]
