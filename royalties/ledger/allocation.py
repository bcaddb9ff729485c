"""Exact allocation of integer amounts by shares: the one place where scores and shares become money.

Largest-remainder (Hamilton) method: every part first gets the floor of its exact quota ``total * w / W``;
the units left over (fewer than the number of parts) go one each to the parts with the largest remainders.
So the parts always sum to the total, none is negative, and no part is more than one unit away from its
exact quota.

Tie-breaking is deterministic: among equal remainders the unit goes to the part with the smallest key
(``keys`` when given, else the position in the input). With unique keys the result, read as a mapping
key -> amount, does not depend on the order of the input.

Two paths with one definition:

- ``allocate_largest_remainder`` is exact for any weights: ints, ``Fraction``, ``Decimal`` and floats (a
  float is converted to the exact binary fraction it stores, so 0.1 means 3602879701896397/2**55).
- ``allocate_grouped`` is the vectorised path for millions of rows split inside many groups at once (a
  generation's pool over its works, a work's earnings over its owners). It takes integer weights and gives
  exactly the same parts as the exact path, group by group. Float scores go through ``quantize_weights``
  first, which maps each group's weights to integers of at most ``QUANTIZE_BITS`` bits relative to the
  group's largest weight: a relative resolution of 1e-9, far below the noise of any attribution score, and
  the money stays exact because only the weights are quantised, never the amounts.

Pure Python and NumPy: no Django, so the attribution engine and benchmarks can use it as a library.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np

# Float weights are quantised to integers below 2**QUANTIZE_BITS per group (see quantize_weights).
QUANTIZE_BITS = 30
# Products below this bound fit in int64 with room to spare; above it the vectorised path switches to
# Python integers (object arrays), which are exact at any size but slower.
_INT64_SAFE = 2**62


class AllocationError(ValueError):
    """The amount cannot be allocated as asked (negative total, no positive weight, malformed input)."""


Weight = int | float | Decimal | Fraction


def _as_fraction(weight: Any, index: int) -> Fraction:
    if isinstance(weight, bool):
        raise AllocationError(f"weights[{index}] is a bool; give a number")
    if isinstance(weight, float):
        if not math.isfinite(weight):
            raise AllocationError(f"weights[{index}] is {weight!r}; weights must be finite")
        return Fraction(weight)  # exact: the binary fraction the float stores
    if isinstance(weight, Decimal):
        if not weight.is_finite():
            raise AllocationError(f"weights[{index}] is {weight!r}; weights must be finite")
        return Fraction(weight)
    if isinstance(weight, int | Fraction):
        return Fraction(weight)
    if isinstance(weight, np.integer):
        return Fraction(int(weight))
    if isinstance(weight, np.floating):
        return _as_fraction(float(weight), index)
    raise AllocationError(f"weights[{index}] has type {type(weight).__name__}; give int, float, Decimal or Fraction")


def _as_total(total: Any) -> int:
    if isinstance(total, bool) or not isinstance(total, int | np.integer):
        raise AllocationError(f"total must be an integer number of units, got {total!r}")
    total = int(total)
    if total < 0:
        raise AllocationError(f"total must be >= 0, got {total}")
    return total


def allocate_largest_remainder(
    total: int, weights: Sequence[Weight], *, keys: Sequence[Any] | None = None
) -> list[int]:
    """Split ``total`` units over ``weights`` exactly; returns one integer part per weight.

    Zero and negative weights get 0. If no weight is positive, a total of 0 gives all zeros and any other
    total raises ``AllocationError`` (there is nobody to give it to, and dropping it would lose money).
    Ties between equal remainders go to the smallest key (``keys``, which must be unique and mutually
    comparable), or to the earliest position when no keys are given.
    """
    total = _as_total(total)
    n = len(weights)
    if keys is not None:
        if len(keys) != n:
            raise AllocationError(f"keys has {len(keys)} items but weights has {n}")
        if len(set(keys)) != n:
            raise AllocationError("keys must be unique, or ties could not be broken deterministically")
    fractions = [_as_fraction(w, i) for i, w in enumerate(weights)]
    positive = [f if f > 0 else Fraction(0) for f in fractions]
    # One common denominator turns the quotas into integer arithmetic: floor and remainder are exact.
    denominator = math.lcm(*(f.denominator for f in positive)) if positive else 1
    ints = [f.numerator * (denominator // f.denominator) for f in positive]
    weight_sum = sum(ints)
    if weight_sum == 0:
        if total == 0:
            return [0] * n
        raise AllocationError(f"no positive weight to allocate {total} units to")
    parts = []
    remainders = []
    for w in ints:
        quota, remainder = divmod(total * w, weight_sum)
        parts.append(quota)
        remainders.append(remainder)
    leftover = total - sum(parts)
    order_key = list(keys) if keys is not None else list(range(n))
    # Largest remainder first; among equals, the smallest key. Zero-weight parts have remainder 0 and,
    # since leftover < number of positive weights, never receive a unit.
    ranked = sorted(range(n), key=lambda i: (-remainders[i], order_key[i]))
    for i in ranked[:leftover]:
        parts[i] += 1
    return parts


# --- vectorised path ----------------------------------------------------------------------------------


def _check_1d_int(name: str, arr: Any) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim != 1:
        raise AllocationError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise AllocationError(f"{name} must hold integers, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def allocate_grouped(
    totals: Any, groups: Any, weights: Any, *, keys: Any | None = None
) -> np.ndarray:
    """Split ``totals[g]`` over the rows of each group ``g`` by integer ``weights``; vectorised, exact.

    Args:
        totals: int64 [G], the units to split in each group (>= 0).
        groups: int [N], each row's group index in ``0..G-1``.
        weights: int [N], each row's weight (<= 0 gets nothing).
        keys: int [N] or None, the tie-break key of each row (unique within a group); None = row position.

    Returns:
        int64 [N], each row's part; per group the parts sum to ``totals[g]``. Identical to calling
        ``allocate_largest_remainder(totals[g], weights_of_g, keys=keys_of_g)`` group by group.

    Raises:
        AllocationError: a group with a positive total has no positive weight, or the input is malformed.
    """
    totals = _check_1d_int("totals", totals)
    groups = _check_1d_int("groups", groups)
    weights = _check_1d_int("weights", weights)
    n = groups.size
    if weights.size != n:
        raise AllocationError(f"weights has {weights.size} rows but groups has {n}")
    if keys is None:
        keys = np.arange(n, dtype=np.int64)
    else:
        keys = _check_1d_int("keys", keys)
        if keys.size != n:
            raise AllocationError(f"keys has {keys.size} rows but groups has {n}")
    if (totals < 0).any():
        bad = int(np.flatnonzero(totals < 0)[0])
        raise AllocationError(f"totals[{bad}] is {int(totals[bad])}; totals must be >= 0")
    g_count = totals.size
    if n and (groups.min() < 0 or groups.max() >= g_count):
        raise AllocationError(f"groups must index totals (0..{g_count - 1})")
    w = np.where(weights > 0, weights, 0)

    # Per-group weight sums, exact: sum in int64 when it cannot overflow, else in Python integers.
    if n and int(w.max()) * n >= _INT64_SAFE:
        w_obj = w.astype(object)
        weight_sum = np.zeros(g_count, dtype=object)
        np.add.at(weight_sum, groups, w_obj)
    else:
        weight_sum = np.zeros(g_count, dtype=np.int64)
        np.add.at(weight_sum, groups, w)
    empty = (weight_sum == 0) & (totals > 0)
    if empty.any():
        bad = int(np.flatnonzero(empty)[0])
        raise AllocationError(f"group {bad} has no positive weight to allocate {int(totals[bad])} units to")

    safe_sum = np.where(weight_sum == 0, 1, weight_sum)
    quota_per_group = totals // safe_sum
    rem_per_group = totals % safe_sum
    g_quota = quota_per_group[groups]
    g_rem = rem_per_group[groups]
    g_sum = safe_sum[groups]
    # floor(T*w/W) = (T//W)*w + floor((T%W)*w/W): the first term is <= T, so only (T%W)*w can overflow.
    big = n and float(np.max(g_rem.astype(np.float64) * w.astype(np.float64))) >= _INT64_SAFE
    if big or g_sum.dtype == object:
        prod = g_rem.astype(object) * w.astype(object)
        parts = (g_quota.astype(object) * w.astype(object) + prod // g_sum.astype(object)).astype(np.int64)
        remainders = prod % g_sum.astype(object)
        # Remainders are compared only within a group (same denominator); rank them by value.
        remainders = np.unique(remainders.astype(object), return_inverse=True)[1].astype(np.int64)
    else:
        prod = g_rem * w
        parts = g_quota * w + prod // g_sum
        remainders = prod % g_sum

    allocated = np.zeros(g_count, dtype=np.int64)
    np.add.at(allocated, groups, parts)
    leftover = totals - allocated  # per group, fewer than its number of positive weights

    # Rank rows within each group: largest remainder first, then smallest key.
    order = np.lexsort((keys, -remainders, groups))
    sorted_groups = groups[order]
    first_of_group = np.searchsorted(sorted_groups, np.arange(g_count), side="left")
    rank = np.arange(n, dtype=np.int64) - first_of_group[sorted_groups]
    bonus = (rank < leftover[sorted_groups]).astype(np.int64)
    parts[order] += bonus
    return parts


def quantize_weights(weights: Any, groups: Any, *, bits: int = QUANTIZE_BITS) -> np.ndarray:
    """Map float weights to integers per group: ``floor(w / max_w_of_group * 2**bits)``; weights <= 0 -> 0.

    Deterministic (IEEE arithmetic), order-free within a group, and keeps the largest weight of each group
    at exactly ``2**bits``, so even the smallest kept share keeps about ``bits`` bits of precision relative
    to the top one.
    """
    weights = np.asarray(weights, dtype=np.float64)
    groups = _check_1d_int("groups", groups)
    if weights.shape != groups.shape:
        raise AllocationError(f"weights has shape {weights.shape} but groups has {groups.shape}")
    if not np.isfinite(weights).all():
        raise AllocationError("weights must be finite (no NaN or infinity)")
    positive = np.where(weights > 0, weights, 0.0)
    if not positive.size:
        return np.zeros(0, dtype=np.int64)
    g_count = int(groups.max()) + 1
    group_max = np.zeros(g_count, dtype=np.float64)
    np.maximum.at(group_max, groups, positive)
    scale = np.where(group_max > 0, group_max, 1.0)[groups]
    # ldexp is exact (a power-of-two scaling), so only the division rounds, once, the same way every time.
    return np.floor(np.ldexp(positive / scale, bits)).astype(np.int64)
