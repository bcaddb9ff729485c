"""Royalty program policy: turn a day's generations and attribution scores into exact micro-unit accruals.

Pure pandas/NumPy (no Django), vectorised for millions of attribution rows. The rules, in order:

1. **Pool.** Revenue share: ``floor(sum of the day's revenue * pool_bps / 10,000)``. Fixed: ``pool_fixed_micros``
   per day, but only on a day with generations (a fixed pool pays for use; a day without use accrues nothing).
   The pool is split over the day's generations by largest remainder, by revenue (revenue share) or equally
   (fixed), so each generation has an integer pool and they add up to the day's pool.
2. **Baseline.** For each model version, ``floor(its generations' pool * baseline_bps / 10,000)`` is the
   version's baseline; the rest is split back over its generations (largest remainder, by pool) as their
   attributed pool. Taking the floor per version rather than per generation keeps tiny pools from losing
   their baseline to rounding.
3. **Attribution.** Per generation, candidate works are those with a positive, finite score and at least one
   owner. Keep the ``top_k`` highest scores (ties: lower work id first), quantise the scores to integer weights
   (see ``allocation.quantize_weights``), drop works whose share of the kept weight is below ``min_share``
   (exact rational comparison), and split the generation's attributed pool over the rest by largest remainder.
4. **Nothing is dropped.** A generation left with no work gives its attributed pool to its version's baseline.
   The baseline of a version is split equally over the owned works of its training manifest; a version with
   no owned manifest work leaves its baseline unallocated (not accrued, reported as ``unallocated_micros``).
5. **Owners.** A work's attributed and baseline amounts are each split over its owners by ownership basis
   points (largest remainder, ties to the lower contributor id).

Invariant (checked before returning): ``expense_micros + unallocated_micros == pool_micros``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd

from royalties.ledger.allocation import AllocationError, allocate_grouped, quantize_weights

BPS_TOTAL = 10_000
POOL_REVENUE_SHARE = "revenue_share"
POOL_FIXED = "fixed"
MIN_SHARE_DENOMINATOR = 10**6


class PolicyInputError(ValueError):
    """The policy inputs are malformed; the message names the frame and column at fault."""


@dataclass(frozen=True)
class PolicyTerms:
    """The terms the policy needs (a plain copy of ``RoyaltyProgramTerms``, so this module needs no Django)."""

    pool_kind: str
    baseline_bps: int
    top_k: int
    min_share: Decimal = Decimal(0)
    pool_bps: int | None = None
    pool_fixed_micros: int | None = None

    @classmethod
    def from_terms(cls, terms: Any) -> PolicyTerms:
        return cls(
            pool_kind=terms.pool_kind, baseline_bps=terms.baseline_bps, top_k=terms.top_k,
            min_share=Decimal(terms.min_share), pool_bps=terms.pool_bps, pool_fixed_micros=terms.pool_fixed_micros,
        )

    def __post_init__(self) -> None:
        if self.pool_kind == POOL_REVENUE_SHARE:
            if self.pool_bps is None or not 0 <= self.pool_bps <= BPS_TOTAL:
                raise PolicyInputError("pool_bps must be 0..10000 for a revenue-share pool")
        elif self.pool_kind == POOL_FIXED:
            if self.pool_fixed_micros is None or self.pool_fixed_micros < 0:
                raise PolicyInputError("pool_fixed_micros must be >= 0 for a fixed pool")
        else:
            raise PolicyInputError(f"pool_kind must be {POOL_REVENUE_SHARE!r} or {POOL_FIXED!r}")
        if not 0 <= self.baseline_bps <= BPS_TOTAL:
            raise PolicyInputError("baseline_bps must be 0..10000")
        if self.top_k < 1:
            raise PolicyInputError("top_k must be >= 1")
        if not Decimal(0) <= self.min_share <= Decimal(1):
            raise PolicyInputError("min_share must be between 0 and 1")
        if Fraction(self.min_share).denominator > MIN_SHARE_DENOMINATOR:
            # Bounds the exact integer comparison in rule 3 to int64.
            raise PolicyInputError("min_share may have at most 6 decimal places")


@dataclass(frozen=True)
class RoyaltyComputation:
    """The day's result. Money columns are int64 micro-units."""

    pool_micros: int
    expense_micros: int
    unallocated_micros: int
    # generation_id, model_version_id, pool_micros, attributed_pool_micros, to_baseline (no work kept)
    generation_pools: pd.DataFrame
    # generation_id, work_id, score, share (float, of the kept weight), amount_micros: one row per kept work
    attributions: pd.DataFrame
    # model_version_id, work_id, amount_micros: the baseline paid to each owned manifest work
    baseline: pd.DataFrame
    # contributor_id, work_id, amount_micros, attributed_micros, baseline_micros, generation_count, ownership_bps
    accruals: pd.DataFrame


def _frame(df: Any, name: str, columns: dict[str, str]) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise PolicyInputError(f"{name} must be a pandas DataFrame")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise PolicyInputError(f"{name} lacks column(s) {', '.join(missing)}")
    out = {}
    for col, kind in columns.items():
        values = df[col].to_numpy()
        if kind == "int":
            if len(values) and not np.issubdtype(values.dtype, np.integer):
                raise PolicyInputError(f"{name}.{col} must hold integers (got {values.dtype})")
            out[col] = values.astype(np.int64, copy=False)
        else:
            values = values.astype(np.float64, copy=False)
            if not np.isfinite(values).all():
                raise PolicyInputError(f"{name}.{col} must be finite (no NaN or infinity)")
            out[col] = values
    return pd.DataFrame(out)


def _exact_sum(values: np.ndarray) -> int:
    if not len(values):
        return 0
    if int(np.abs(values).max()) * len(values) < 2**62:
        return int(values.sum())
    return int(sum(int(v) for v in values))


def _group_sum(groups: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros(size, dtype=np.int64)
    np.add.at(out, groups, values)
    return out


def royalty_compute(
    *,
    terms: PolicyTerms,
    generations: pd.DataFrame,
    attributions: pd.DataFrame,
    manifest: pd.DataFrame,
    ownership: pd.DataFrame,
) -> RoyaltyComputation:
    """Apply the program policy to one day of one program.

    Args:
        terms: the terms in force that day.
        generations: ``generation_id, model_version_id, revenue_micros`` (the day's generations of the model).
        attributions: ``generation_id, work_id, score`` (any number of scored works per generation).
        manifest: ``model_version_id, work_id`` (the training manifests of those versions).
        ownership: ``work_id, contributor_id, bps`` (each work's owners; a work's bps sum to 10,000).

    Returns:
        A ``RoyaltyComputation`` whose accruals sum to ``expense_micros``.
    """
    gens = _frame(generations, "generations",
                  {"generation_id": "int", "model_version_id": "int", "revenue_micros": "int"})
    attrs = _frame(attributions, "attributions", {"generation_id": "int", "work_id": "int", "score": "float"})
    man = _frame(manifest, "manifest", {"model_version_id": "int", "work_id": "int"})
    own = _frame(ownership, "ownership", {"work_id": "int", "contributor_id": "int", "bps": "int"})

    if gens["generation_id"].duplicated().any():
        raise PolicyInputError("generations.generation_id must be unique")
    if (gens["revenue_micros"] < 0).any():
        raise PolicyInputError("generations.revenue_micros must be >= 0")
    if attrs.duplicated(["generation_id", "work_id"]).any():
        raise PolicyInputError("attributions must have one row per (generation_id, work_id)")
    if own.duplicated(["work_id", "contributor_id"]).any():
        raise PolicyInputError("ownership must have one row per (work_id, contributor_id)")
    if ((own["bps"] <= 0) | (own["bps"] > BPS_TOTAL)).any():
        raise PolicyInputError("ownership.bps must be between 1 and 10000")
    bps_sum = own.groupby("work_id")["bps"].sum()
    if (bps_sum != BPS_TOTAL).any():
        bad = int(bps_sum[bps_sum != BPS_TOTAL].index[0])
        raise PolicyInputError(f"ownership of work {bad} sums to {int(bps_sum[bad])} bps, not {BPS_TOTAL}")

    gens = gens.sort_values("generation_id", kind="stable").reset_index(drop=True)
    n_gen = len(gens)
    gen_ids = gens["generation_id"].to_numpy()
    unknown = ~np.isin(attrs["generation_id"].to_numpy(), gen_ids)
    if unknown.any():
        raise PolicyInputError(
            f"attributions name generation {int(attrs['generation_id'].to_numpy()[unknown][0])}, "
            "which is not in generations"
        )

    # 1. The pool, and each generation's integer part of it.
    if terms.pool_kind == POOL_REVENUE_SHARE:
        pool = _exact_sum(gens["revenue_micros"].to_numpy()) * int(terms.pool_bps or 0) // BPS_TOTAL
        gen_weights = gens["revenue_micros"].to_numpy()
    else:
        pool = int(terms.pool_fixed_micros or 0)
        gen_weights = np.ones(n_gen, dtype=np.int64)
    if n_gen == 0:
        return _empty(pool)
    gen_pool = allocate_grouped(np.array([pool]), np.zeros(n_gen, dtype=np.int64), gen_weights, keys=gen_ids)

    # 2. Baseline per version; the rest back to its generations by their pool.
    version_ids, gen_v = np.unique(gens["model_version_id"].to_numpy(), return_inverse=True)
    n_ver = len(version_ids)
    pool_v = [int(x) for x in _group_sum(gen_v, gen_pool, n_ver)]
    baseline_v = [p * terms.baseline_bps // BPS_TOTAL for p in pool_v]
    attributed_v = np.array([p - b for p, b in zip(pool_v, baseline_v, strict=True)], dtype=np.int64)
    # A version whose generations all earned nothing has no weight; its attributed pool is 0 then.
    gen_attr_pool = allocate_grouped(attributed_v, gen_v, gen_pool, keys=gen_ids)

    # 3. Attribution: owned works with positive scores, top-k, min share, largest remainder.
    owned_works = np.unique(own["work_id"].to_numpy())
    a_gen_idx = np.searchsorted(gen_ids, attrs["generation_id"].to_numpy())
    a_work = attrs["work_id"].to_numpy()
    a_score = attrs["score"].to_numpy()
    candidate = (a_score > 0) & np.isin(a_work, owned_works)
    a_gen_idx, a_work, a_score = a_gen_idx[candidate], a_work[candidate], a_score[candidate]
    order = np.lexsort((a_work, -a_score, a_gen_idx))
    a_gen_idx, a_work, a_score = a_gen_idx[order], a_work[order], a_score[order]
    first = np.searchsorted(a_gen_idx, np.arange(n_gen), side="left")
    rank = np.arange(len(a_gen_idx)) - first[a_gen_idx]
    keep = rank < terms.top_k
    a_gen_idx, a_work, a_score = a_gen_idx[keep], a_work[keep], a_score[keep]
    weight = quantize_weights(a_score, a_gen_idx) if len(a_score) else np.zeros(0, dtype=np.int64)
    if terms.min_share > 0 and len(weight):
        share = Fraction(terms.min_share)
        total_w = _group_sum(a_gen_idx, weight, n_gen)[a_gen_idx]
        # weight / total >= num / den, in integers: weight <= 2**30, den <= 10**6, total <= top_k * 2**30.
        keep = weight * share.denominator >= share.numerator * total_w
        a_gen_idx, a_work, a_score, weight = a_gen_idx[keep], a_work[keep], a_score[keep], weight[keep]
    has_work = np.bincount(a_gen_idx, minlength=n_gen) > 0
    # Generations with no kept work give their attributed pool to the baseline (rule 4).
    a_totals = np.where(has_work, gen_attr_pool, 0)
    try:
        a_amount = allocate_grouped(a_totals, a_gen_idx, weight, keys=a_work)
    except AllocationError as exc:  # pragma: no cover - every kept row has a positive weight
        raise RuntimeError(f"attribution split failed: {exc}") from exc
    kept_w = _group_sum(a_gen_idx, weight, n_gen)
    attributions_out = pd.DataFrame({
        "generation_id": gen_ids[a_gen_idx],
        "work_id": a_work,
        "score": a_score,
        "share": weight / np.where(kept_w == 0, 1, kept_w)[a_gen_idx],
        "amount_micros": a_amount,
    })

    # 4. Baseline over each version's owned manifest works, equally.
    to_baseline = _group_sum(gen_v, np.where(has_work, 0, gen_attr_pool), n_ver)
    baseline_total = np.array([b + int(x) for b, x in zip(baseline_v, to_baseline, strict=True)], dtype=np.int64)
    man = man[np.isin(man["model_version_id"].to_numpy(), version_ids) & np.isin(man["work_id"].to_numpy(),
                                                                                owned_works)]
    man = man.drop_duplicates().sort_values(["model_version_id", "work_id"], kind="stable")
    m_ver = np.searchsorted(version_ids, man["model_version_id"].to_numpy())
    m_work = man["work_id"].to_numpy()
    has_manifest = np.bincount(m_ver, minlength=n_ver) > 0
    unallocated = int(baseline_total[~has_manifest].sum())
    baseline_total = np.where(has_manifest, baseline_total, 0)
    m_amount = allocate_grouped(baseline_total, m_ver, np.ones(len(m_work), dtype=np.int64), keys=m_work)
    baseline_out = pd.DataFrame({"model_version_id": version_ids[m_ver], "work_id": m_work, "amount_micros": m_amount})

    # 5. Per work, then per owner.
    accruals = _owner_split(attributions_out, baseline_out, own)
    expense = _exact_sum(accruals["amount_micros"].to_numpy())
    if expense + unallocated != pool:
        raise RuntimeError(f"policy lost money: {expense} accrued + {unallocated} unallocated != pool {pool}")
    generation_pools = pd.DataFrame({
        "generation_id": gen_ids, "model_version_id": gens["model_version_id"].to_numpy(),
        "pool_micros": gen_pool, "attributed_pool_micros": gen_attr_pool, "to_baseline": ~has_work,
    })
    return RoyaltyComputation(
        pool_micros=pool, expense_micros=expense, unallocated_micros=unallocated,
        generation_pools=generation_pools, attributions=attributions_out, baseline=baseline_out, accruals=accruals,
    )


def _owner_split(attributions: pd.DataFrame, baseline: pd.DataFrame, own: pd.DataFrame) -> pd.DataFrame:
    per_work_attr = attributions.groupby("work_id", sort=True).agg(
        attributed=("amount_micros", "sum"), generation_count=("generation_id", "size")
    )
    per_work_base = baseline.groupby("work_id", sort=True)["amount_micros"].sum()
    works = np.union1d(per_work_attr.index.to_numpy(), per_work_base.index.to_numpy()).astype(np.int64)
    # reindex with an integer fill keeps int64 (an outer join would pass through float64 and NaN).
    per_work = pd.DataFrame({
        "attributed": per_work_attr["attributed"].reindex(works, fill_value=0).to_numpy(np.int64),
        "generation_count": per_work_attr["generation_count"].reindex(works, fill_value=0).to_numpy(np.int64),
        "baseline": per_work_base.reindex(works, fill_value=0).to_numpy(np.int64),
    }, index=works)
    own = own[np.isin(own["work_id"].to_numpy(), works)].sort_values(["work_id", "contributor_id"], kind="stable")
    o_work_idx = np.searchsorted(works, own["work_id"].to_numpy())
    o_contrib = own["contributor_id"].to_numpy()
    o_bps = own["bps"].to_numpy()
    attributed = allocate_grouped(per_work["attributed"].to_numpy(), o_work_idx, o_bps, keys=o_contrib)
    base = allocate_grouped(per_work["baseline"].to_numpy(), o_work_idx, o_bps, keys=o_contrib)
    out = pd.DataFrame({
        "contributor_id": o_contrib,
        "work_id": works[o_work_idx],
        "amount_micros": attributed + base,
        "attributed_micros": attributed,
        "baseline_micros": base,
        "generation_count": per_work["generation_count"].to_numpy()[o_work_idx],
        "ownership_bps": o_bps,
    })
    out = out[(out["amount_micros"] != 0) | (out["generation_count"] != 0)]
    return out.sort_values(["contributor_id", "work_id"], kind="stable").reset_index(drop=True)


def _empty(pool: int) -> RoyaltyComputation:
    i64 = np.zeros(0, dtype=np.int64)
    return RoyaltyComputation(
        pool_micros=pool, expense_micros=0, unallocated_micros=pool,
        generation_pools=pd.DataFrame({"generation_id": i64, "model_version_id": i64, "pool_micros": i64,
                                       "attributed_pool_micros": i64, "to_baseline": np.zeros(0, dtype=bool)}),
        attributions=pd.DataFrame({"generation_id": i64, "work_id": i64, "score": np.zeros(0),
                                   "share": np.zeros(0), "amount_micros": i64}),
        baseline=pd.DataFrame({"model_version_id": i64, "work_id": i64, "amount_micros": i64}),
        accruals=pd.DataFrame({"contributor_id": i64, "work_id": i64, "amount_micros": i64,
                               "attributed_micros": i64, "baseline_micros": i64, "generation_count": i64,
                               "ownership_bps": i64}),
    )
