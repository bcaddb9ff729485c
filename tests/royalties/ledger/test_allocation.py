"""Exact allocation: properties that must hold for every input, and the vectorised path agreeing with it."""

from __future__ import annotations

import math
import random
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from royalties.ledger.allocation import (
    QUANTIZE_BITS,
    AllocationError,
    allocate_grouped,
    allocate_largest_remainder,
    quantize_weights,
)

totals = st.integers(min_value=0, max_value=10**15)
int_weights = st.lists(st.integers(min_value=-5, max_value=10**9), min_size=1, max_size=40)
any_weight = st.one_of(
    st.integers(min_value=-10, max_value=10**12),
    st.floats(min_value=-1.0, max_value=1e9, allow_nan=False, allow_infinity=False),
    st.fractions(min_value=-1, max_value=10**6, max_denominator=10**6),
    st.decimals(min_value=-1, max_value=10**6, places=6, allow_nan=False, allow_infinity=False),
)
mixed_weights = st.lists(any_weight, min_size=1, max_size=30)


def _has_positive(weights) -> bool:
    return any(Fraction(w) > 0 for w in weights)


@given(total=totals, weights=mixed_weights)
def test_parts_sum_to_the_total_none_negative_and_each_within_one_unit_of_its_exact_quota(total, weights):
    if not _has_positive(weights):
        return
    parts = allocate_largest_remainder(total, weights)

    assert sum(parts) == total
    assert all(p >= 0 for p in parts)
    positive = [max(Fraction(w), Fraction(0)) for w in weights]
    weight_sum = sum(positive)
    for part, w in zip(parts, positive, strict=True):
        quota = total * w / weight_sum
        # Hamilton's method: floor(quota) or floor(quota) + 1, never further from the exact share.
        assert math.floor(quota) <= part <= math.floor(quota) + 1
        if w == 0:
            assert part == 0


@given(total=totals, weights=mixed_weights)
def test_same_input_same_output_and_input_order_does_not_matter_with_keys(total, weights):
    if not _has_positive(weights):
        return
    keys = list(range(len(weights)))
    first = allocate_largest_remainder(total, weights, keys=keys)
    assert allocate_largest_remainder(total, list(weights), keys=list(keys)) == first

    pairs = list(zip(keys, weights, strict=True))
    random.Random(total).shuffle(pairs)
    shuffled = allocate_largest_remainder(total, [w for _, w in pairs], keys=[k for k, _ in pairs])
    assert dict(zip([k for k, _ in pairs], shuffled, strict=True)) == dict(zip(keys, first, strict=True))


@given(total=totals, weights=int_weights)
def test_a_larger_weight_never_gets_less_and_equal_weights_differ_by_at_most_one(total, weights):
    if not _has_positive(weights):
        return
    parts = allocate_largest_remainder(total, weights)
    for i, wi in enumerate(weights):
        for j, wj in enumerate(weights):
            if max(wi, 0) > max(wj, 0):
                assert parts[i] >= parts[j]
            if max(wi, 0) == max(wj, 0):
                assert abs(parts[i] - parts[j]) <= 1


def test_ties_go_to_the_smallest_key_then_to_the_earliest_position():
    assert allocate_largest_remainder(10, [1, 1, 1]) == [4, 3, 3]
    assert allocate_largest_remainder(10, [1, 1, 1], keys=[30, 20, 10]) == [3, 3, 4]
    assert allocate_largest_remainder(2, [1, 1, 1], keys=["b", "c", "a"]) == [1, 0, 1]


def test_floats_are_taken_exactly_as_stored():
    # 0.1 + 0.2 != 0.3 in binary; exact conversion still sums to the total.
    assert allocate_largest_remainder(1_000_001, [0.1, 0.2, 0.7]) == [100_000, 200_000, 700_001]
    assert sum(allocate_largest_remainder(7, [1 / 3, 1 / 3, 1 / 3])) == 7
    # quotas 1.5, 0.75, 0.75: the two leftover units go to the two largest remainders (0.75 each)
    assert allocate_largest_remainder(3, [Decimal("0.5"), Fraction(1, 4), 0.25]) == [1, 1, 1]


def test_zero_and_negative_weights_get_nothing_and_nobody_to_pay_is_an_error():
    assert allocate_largest_remainder(5, [0, -3, 2]) == [0, 0, 5]
    assert allocate_largest_remainder(0, [0, 0]) == [0, 0]
    assert allocate_largest_remainder(0, []) == []
    with pytest.raises(AllocationError, match="no positive weight"):
        allocate_largest_remainder(5, [0, -1])


@pytest.mark.parametrize(
    ("total", "weights", "keys", "message"),
    [
        (-1, [1], None, "total must be >= 0"),
        (1.5, [1], None, "total must be an integer"),
        (True, [1], None, "total must be an integer"),
        (1, [float("nan")], None, "finite"),
        (1, [float("inf")], None, "finite"),
        (1, ["1"], None, "has type str"),
        (1, [1, 2], [1], "keys has 1 items"),
        (1, [1, 2], [1, 1], "keys must be unique"),
    ],
)
def test_bad_input_is_refused_with_a_reason(total, weights, keys, message):
    with pytest.raises(AllocationError, match=message):
        allocate_largest_remainder(total, weights, keys=keys)


# --- the vectorised path ------------------------------------------------------------------------------


@st.composite
def grouped_inputs(draw, max_weight=10**9, max_total=10**15):
    n_groups = draw(st.integers(min_value=1, max_value=8))
    rows = draw(st.lists(
        st.tuples(st.integers(0, n_groups - 1), st.integers(-3, max_weight)), min_size=0, max_size=60
    ))
    groups = np.array([g for g, _ in rows], dtype=np.int64)
    weights = np.array([w for _, w in rows], dtype=np.int64)
    has_weight = np.zeros(n_groups, dtype=bool)
    has_weight[groups[weights > 0]] = True
    group_totals = np.array(
        [draw(st.integers(0, max_total)) if has_weight[g] else 0 for g in range(n_groups)], dtype=np.int64
    )
    keys = np.array(draw(st.permutations(list(range(len(rows))))), dtype=np.int64)
    return group_totals, groups, weights, keys


def _exact_by_group(group_totals, groups, weights, keys):
    out = np.zeros(len(groups), dtype=np.int64)
    for g, total in enumerate(group_totals):
        rows = np.flatnonzero(groups == g)
        parts = allocate_largest_remainder(int(total), [int(w) for w in weights[rows]],
                                           keys=[int(k) for k in keys[rows]])
        out[rows] = parts
    return out


@given(data=grouped_inputs())
def test_vectorised_path_equals_the_exact_path_group_by_group(data):
    group_totals, groups, weights, keys = data
    parts = allocate_grouped(group_totals, groups, weights, keys=keys)

    assert parts.dtype == np.int64
    assert (parts >= 0).all()
    assert [int(parts[groups == g].sum()) for g in range(len(group_totals))] == group_totals.tolist()
    assert np.array_equal(parts, _exact_by_group(group_totals, groups, weights, keys))


@settings(max_examples=40)
@given(data=grouped_inputs(max_weight=2**62, max_total=2**62))
def test_vectorised_path_stays_exact_where_int64_products_would_overflow(data):
    group_totals, groups, weights, keys = data
    parts = allocate_grouped(group_totals, groups, weights, keys=keys)

    assert np.array_equal(parts, _exact_by_group(group_totals, groups, weights, keys))


def test_vectorised_path_refuses_a_group_with_money_and_no_weight():
    with pytest.raises(AllocationError, match="group 1 has no positive weight"):
        allocate_grouped(np.array([5, 3]), np.array([0, 1]), np.array([1, 0]))
    with pytest.raises(AllocationError, match="must hold integers"):
        allocate_grouped(np.array([5]), np.array([0]), np.array([0.5]))


@given(
    scores=st.lists(st.floats(min_value=-1, max_value=1e6, allow_nan=False), min_size=1, max_size=30),
    total=st.integers(0, 10**12),
)
def test_quantised_float_weights_keep_the_top_weight_exact_and_allocate_like_the_exact_path(scores, total):
    groups = np.zeros(len(scores), dtype=np.int64)
    weights = quantize_weights(np.array(scores), groups)

    assert (weights >= 0).all()
    positive = [s for s in scores if s > 0]
    if not positive:
        assert (weights == 0).all()
        return
    assert weights.max() == 2**QUANTIZE_BITS
    assert all(w == 0 for s, w in zip(scores, weights, strict=True) if s <= 0)
    parts = allocate_grouped(np.array([total]), groups, weights)
    assert parts.sum() == total
    assert parts.tolist() == allocate_largest_remainder(total, weights.tolist())


def test_quantise_refuses_nan():
    with pytest.raises(AllocationError, match="finite"):
        quantize_weights(np.array([0.5, np.nan]), np.array([0, 0]))
