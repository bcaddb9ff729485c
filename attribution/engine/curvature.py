"""Preconditioners in the projected space: TRAK's kernel inverse, K-FAC and eigenvalue-corrected K-FAC.

All of them are symmetric, so the index stores raw projected gradients φ_i and the score of a query q is
⟨C⁻¹ φ_q, φ_i⟩: the curvature is applied to the (few) queries, never to the stored works.

Damping rule (the one knob that decides most of the quality): λ = damping_ratio x mean eigenvalue of the
curvature being inverted, per block for K-FAC/EK-FAC and globally for TRAK, unless an absolute damping is
given. A relative λ never collapses to zero (TRAK's default 0 is singular once k ≥ N) and does not depend on
the scale of the loss.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from attribution.engine.featurize import CurvatureStats
from attribution.engine.layers import Plan


def _sym_eigh(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    values, vectors = torch.linalg.eigh(0.5 * (matrix + matrix.T))
    return values.clamp_min(0.0), vectors


def _factor(stats_part: dict[str, torch.Tensor], name: str, k: int) -> torch.Tensor:
    return stats_part.get(name, torch.zeros(k, k, dtype=torch.float64))


def _cached_eigh(stats: CurvatureStats, key: str, matrix: Callable[[], torch.Tensor]) -> tuple[torch.Tensor,
                                                                                                torch.Tensor]:
    if key not in stats.cache:
        stats.cache[key] = _sym_eigh(matrix())
    return stats.cache[key]


def ekfac_bases(plan: Plan, stats: CurvatureStats) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                                      torch.Tensor]]:
    """Per low-rank block: eigenvalues and eigenvectors of the projected rows and cols factors."""
    bases = {}
    for block in plan.blocks:
        if block.kind == "lowrank":
            e_r, q_r = _cached_eigh(stats, f"rows::{block.name}",
                                    lambda b=block: _factor(stats.rows, b.name, b.k_rows))
            e_c, q_c = _cached_eigh(stats, f"cols::{block.name}",
                                    lambda b=block: _factor(stats.cols, b.name, b.k_cols))
            bases[block.name] = (e_r, q_r, e_c, q_c)
    return bases


def fit_ekfac_eigenvalues(plan: Plan, stats: CurvatureStats, chunks: Iterable[torch.Tensor]) -> None:
    """EK-FAC's corrected eigenvalues Λ = Σ_i (Q_rᵀ G_i Q_c)², from the stored features (no model pass)."""
    bases = ekfac_bases(plan, stats)
    lam = {name: torch.zeros(len(b[0]), len(b[2]), dtype=torch.float64) for name, b in bases.items()}
    for chunk in chunks:  # (n, K) float32
        for block in plan.blocks:
            if block.kind != "lowrank":
                continue
            _, q_r, _, q_c = bases[block.name]
            g = chunk[:, block.offset:block.offset + block.dim].double().reshape(-1, block.k_rows, block.k_cols)
            rotated = q_r.T @ g @ q_c  # (n, k_rows, k_cols)
            lam[block.name] += (rotated * rotated).sum(0)
    stats.lam = lam


class Preconditioner:
    """Maps query features (Q, K) to C⁻¹ φ_q under one curvature and damping."""

    def __init__(self, plan: Plan, stats: CurvatureStats, curvature: str, damping_ratio: float,
                 damping: float | None = None) -> None:
        self.plan = plan
        self.curvature = curvature
        self.dampings: dict[str, float] = {}
        self._blocks: dict[str, Any] = {}
        self._global: tuple[torch.Tensor, torch.Tensor] | None = None
        n = max(stats.n, 1)
        if curvature == "none":
            return
        if curvature == "trak":
            if stats.gram is None:
                raise ValueError("curvature 'trak' needs the Gram matrix: build with curvature='trak' or "
                                 "keep_gram=True")
            values, vectors = _cached_eigh(stats, "gram", lambda: stats.gram / n)
            lam = damping if damping is not None else damping_ratio * float(values.mean())
            self.dampings["*"] = lam
            # kept factored, V diag(1/(e+λ)) Vᵀ applied as two (Q, K) x (K, K) products: forming the
            # K x K inverse costs K³ per damping value, which dominates a damping sweep at large K
            self._global = (vectors.float(), (1.0 / (values + lam)).float())
            return
        bases = ekfac_bases(plan, stats) if curvature in ("kfac", "ekfac") else {}
        for block in plan.blocks:
            if block.kind == "lowrank":
                e_r, q_r, e_c, q_c = bases[block.name]
                if curvature == "ekfac":
                    if block.name not in stats.lam:
                        raise ValueError("curvature 'ekfac' needs the corrected eigenvalues of the build")
                    eig = stats.lam[block.name] / n
                else:
                    eig = torch.outer(e_r, e_c)
                    # Trace-matched K-FAC: scale the Kronecker eigenvalues so their mean is the true mean
                    # per-example squared gradient, which the factors alone get wrong by the token count.
                    target = stats.sqnorm.get(block.name, 0.0) / n / block.dim
                    mean = float(eig.mean())
                    eig = eig * (target / mean) if mean > 0 else eig
                lam = damping if damping is not None else damping_ratio * float(eig.mean())
                lam = lam if lam > 0 else 1e-12
                self.dampings[block.name] = lam
                self._blocks[block.name] = (q_r.float(), q_c.float(), (1.0 / (eig + lam)).float())
            else:
                values, vectors = _cached_eigh(stats, f"vgram::{block.name}",
                                               lambda b=block: _factor(stats.vgram, b.name, b.dim) / n)
                lam = damping if damping is not None else damping_ratio * float(values.mean())
                lam = lam if lam > 0 else 1e-12
                self.dampings[block.name] = lam
                self._blocks[block.name] = (vectors.float(), (1.0 / (values + lam)).float())

    def __call__(self, feats: torch.Tensor) -> torch.Tensor:
        if self.curvature == "none":
            return feats
        if self._global is not None:
            vectors, inverse = (t.to(feats.device) for t in self._global)
            return ((feats @ vectors) * inverse) @ vectors.T
        out = torch.empty_like(feats)
        for block in self.plan.blocks:
            part = feats[:, block.offset:block.offset + block.dim]
            if block.kind == "lowrank":
                q_r, q_c, inv = (t.to(feats.device) for t in self._blocks[block.name])
                g = part.reshape(-1, block.k_rows, block.k_cols)
                rotated = q_r.T @ g @ q_c * inv
                out[:, block.offset:block.offset + block.dim] = (q_r @ rotated @ q_c.T).reshape(part.shape)
            else:
                vectors, inverse = (t.to(feats.device) for t in self._blocks[block.name])
                out[:, block.offset:block.offset + block.dim] = ((part @ vectors) * inverse) @ vectors.T
        return out
