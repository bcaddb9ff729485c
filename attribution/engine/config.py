"""Options of a gradient index and the errors the engine raises.

Plain Python: no torch, so the options can be read and validated anywhere.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

CURVATURES = ("ekfac", "kfac", "trak", "none")
SCORE_NORMS = ("none", "sqrt", "relative")
# each work's score is divided by its self-influence norm √(φᵀC⁻¹φ) raised to this power
SCORE_NORM_POWER = {"none": 0.0, "sqrt": 0.5, "relative": 1.0}
DTYPES = ("float16", "float32")
FISHERS = ("empirical", "sampled")


class AttributionIndexError(Exception):
    """Base class of every error the attribution engine raises about an index."""


class IndexMismatchError(AttributionIndexError):
    """The index was built for another model, other works or other options than the ones given."""


class IndexIntegrityError(AttributionIndexError):
    """The files of a saved index are missing, truncated or altered (checksum mismatch)."""


@dataclass(frozen=True)
class IndexConfig:
    """Everything that decides the features and scores of a :class:`GradientIndex`.

    Attributes:
        projection_dim: target total feature dimension k over all tracked layers. Each layer gets a share
            proportional to the square root of its parameter count (never more than its own size; a layer
            smaller than its share is kept exactly, without projection).
        seed: seed of every random projection matrix. Same model, data and seed give the same scores.
        include: fnmatch patterns over parameter names (``"transformer.h.*.mlp.*"``); a parameter takes part
            when it is trainable, matches one ``include`` pattern and no ``exclude`` pattern.
        exclude: patterns of parameters to leave out (reported in ``index.coverage`` and warned about).
        curvature: ``"ekfac"`` (eigenvalue-corrected K-FAC per layer, in the projected space), ``"kfac"``
            (K-FAC per layer, trace-matched), ``"trak"`` (TRAK's (ΦᵀΦ/N + λI)⁻¹ over all k dimensions) or
            ``"none"`` (plain projected gradient dot product).
        damping_ratio: the damping rule. λ = damping_ratio x (mean eigenvalue of the curvature being
            inverted), per layer block for kfac/ekfac and over the whole space for trak. Relative damping
            keeps λ away from zero (TRAK's default 0 makes the kernel singular once k ≥ N) and makes it
            independent of the loss scale. 0.1 is the value chosen on the benchmarks' validation splits
            (docs/benchmarks.md, "Attribution engine").
        damping: an absolute λ that overrides ``damping_ratio`` when set.
        fisher: which Fisher the curvature estimates. ``"empirical"``: the gradients of the observed targets
            (the stored features themselves; needs nothing but ``loss_fn``). ``"sampled"``: the true Fisher,
            from targets drawn from the model by a ``fisher_loss_fn`` given to ``GradientIndex.build``
            (two extra passes per batch at build time; scoring costs the same). Passing ``fisher_loss_fn``
            sets it to ``"sampled"``. docs/benchmarks.md measures the difference.
        fisher_samples: with ``fisher="sampled"``, the draws per example for the curvature sums and, as many
            again, for EK-FAC's eigenvalues (each draw is one more forward and backward pass at build time).
        score_norm: how each work's score is normalised by its self-influence norm ‖φ‖_C = √(φᵀC⁻¹φ):
            ``"none"`` keeps the raw influence; ``"relative"`` divides by ‖φ‖_C (relative influence, RelatIF),
            so the score is a cosine in the curvature's metric and a near-verbatim copy ranks its original first
            (a well-fitted work has a tiny gradient and would otherwise lose to high-loss works); ``"sqrt"``
            divides by √‖φ‖_C, between the two. The benchmarks (docs/benchmarks.md) show the trade: "sqrt"
            gives the best LDS, "relative" the best recall of copies.
        dtype: storage type of the features: ``"float16"`` (with one float32 scale per row, so large or tiny
            gradients neither overflow nor flush to zero) or ``"float32"``.
        shard_size: rows per feature shard file.
        batch_rows: rows read from the shards at a time when scoring (bounds memory with ``top_k``).
        query_block: queries featurised and scored together.
        keep_gram: also accumulate the k x k Gram matrix ΦᵀΦ (needed for ``curvature="trak"``; kept anyway
            when that is the curvature). It costs k² float64 values of memory during the build.
        device: where featurisation runs (``"cpu"`` by default; ``"cuda"`` when the caller has one).
    """

    projection_dim: int = 2048
    seed: int = 0
    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()
    curvature: str = "ekfac"
    damping_ratio: float = 0.1
    damping: float | None = None
    fisher: str = "empirical"
    fisher_samples: int = 1
    score_norm: str = "sqrt"
    dtype: str = "float16"
    shard_size: int = 4096
    batch_rows: int = 8192
    query_block: int = 256
    keep_gram: bool = False
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not isinstance(self.projection_dim, int) or self.projection_dim < 1:
            raise ValueError(f"projection_dim must be a positive integer, got {self.projection_dim!r}")
        if not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        if self.curvature not in CURVATURES:
            raise ValueError(f"curvature must be one of {CURVATURES}, got {self.curvature!r}")
        if not (self.damping_ratio > 0):
            raise ValueError(f"damping_ratio must be > 0 (a zero damping makes the curvature singular), got "
                             f"{self.damping_ratio!r}")
        if self.damping is not None and not (self.damping > 0):
            raise ValueError(f"damping must be > 0 when set, got {self.damping!r}")
        if self.fisher not in FISHERS:
            raise ValueError(f"fisher must be one of {FISHERS}, got {self.fisher!r}")
        if self.score_norm not in SCORE_NORMS:
            raise ValueError(f"score_norm must be one of {SCORE_NORMS}, got {self.score_norm!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        for name in ("shard_size", "batch_rows", "query_block", "fisher_samples"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.include, str) or isinstance(self.exclude, str):
            raise ValueError("include and exclude must be tuples of patterns, not a single string")
        object.__setattr__(self, "include", tuple(self.include))
        object.__setattr__(self, "exclude", tuple(self.exclude))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["include"] = list(self.include)
        data["exclude"] = list(self.exclude)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexConfig:
        data = dict(data)
        data["include"] = tuple(data.get("include", ("*",)))
        data["exclude"] = tuple(data.get("exclude", ()))
        return cls(**data)

    def feature_defining(self) -> dict[str, Any]:
        """The options that change the stored features (a mismatch here means a foreign index)."""
        return {"projection_dim": self.projection_dim, "seed": self.seed, "include": list(self.include),
                "exclude": list(self.exclude)}
