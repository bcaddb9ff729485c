"""Program policy: pool, baseline, top-k, minimum share, co-ownership, and nothing ever lost."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from royalties.ledger.policy import PolicyInputError, PolicyTerms, royalty_compute
from royalties.ledger.policy_reference import royalty_compute_reference

A, B, C, D = 101, 102, 103, 104  # works
X, Y = 7, 8  # contributors
V1, V2 = 1, 2  # model versions


def terms(**kw) -> PolicyTerms:
    values = {"pool_kind": "revenue_share", "pool_bps": 2000, "baseline_bps": 1000, "top_k": 10,
              "min_share": Decimal(0)}
    values.update(kw)
    if "pool_fixed_micros" in kw:
        values.update(pool_kind="fixed", pool_bps=None)
    return PolicyTerms(**values)


def frames(gens, attrs, manifest, owners):
    return {
        "generations": pd.DataFrame(gens, columns=["generation_id", "model_version_id", "revenue_micros"]),
        "attributions": pd.DataFrame(attrs, columns=["generation_id", "work_id", "score"]).astype({"score": float}),
        "manifest": pd.DataFrame(manifest, columns=["model_version_id", "work_id"]),
        "ownership": pd.DataFrame(owners, columns=["work_id", "contributor_id", "bps"]),
    }


OWNERS = [(A, X, 10_000), (B, X, 5_000), (B, Y, 5_000), (C, Y, 10_000)]


def accruals_of(result) -> dict:
    return {
        (r.contributor_id, r.work_id): (r.amount_micros, r.attributed_micros, r.baseline_micros, r.generation_count)
        for r in result.accruals.itertuples()
    }


def test_a_worked_example_pool_baseline_attribution_and_co_ownership():
    # Revenue 1.00 and 3.00 (in micros); 20% pool = 800,000; 10% of it baseline over the manifest A, B, C.
    data = frames(
        gens=[(1, V1, 1_000_000), (2, V1, 3_000_000)],
        attrs=[(1, A, 3.0), (1, B, 1.0), (2, A, 1.0)],
        manifest=[(V1, A), (V1, B), (V1, C)],
        owners=OWNERS,
    )

    result = royalty_compute(terms=terms(), **data)

    assert (result.pool_micros, result.expense_micros, result.unallocated_micros) == (800_000, 800_000, 0)
    assert result.generation_pools["pool_micros"].tolist() == [200_000, 600_000]
    assert result.generation_pools["attributed_pool_micros"].tolist() == [180_000, 540_000]
    # Generation 1's 180,000 split 3:1; generation 2's 540,000 all to A.
    assert result.attributions[["generation_id", "work_id", "amount_micros"]].values.tolist() == [
        [1, A, 135_000], [1, B, 45_000], [2, A, 540_000]]
    # Baseline 80,000 / 3 works: 26,667 + 26,667 + 26,666 (the extra unit to the lower work ids).
    assert result.baseline["amount_micros"].tolist() == [26_667, 26_667, 26_666]
    assert accruals_of(result) == {
        (X, A): (135_000 + 540_000 + 26_667, 675_000, 26_667, 2),
        (X, B): (22_500 + 13_334, 22_500, 13_334, 1),  # B's baseline 26,667 halves to 13,334 / 13,333
        (Y, B): (22_500 + 13_333, 22_500, 13_333, 1),
        (Y, C): (26_666, 0, 26_666, 0),
    }
    # Each row keeps the owner's share it was split by, for statements.
    assert dict(zip(zip(result.accruals["contributor_id"], result.accruals["work_id"], strict=True),
                    result.accruals["ownership_bps"], strict=True)) == {
        (X, A): 10_000, (X, B): 5_000, (Y, B): 5_000, (Y, C): 10_000}


def test_top_k_keeps_the_highest_scores_and_ties_go_to_the_lower_work_id():
    data = frames(gens=[(1, V1, 10_000_000)], attrs=[(1, A, 0.5), (1, B, 0.9), (1, C, 0.5)],
                  manifest=[], owners=OWNERS)

    result = royalty_compute(terms=terms(top_k=2, baseline_bps=0), **data)

    # B (0.9) and A (0.5, tied with C but lower id); the pool of 2,000,000 split 0.9 : 0.5.
    assert result.attributions[["work_id", "amount_micros"]].values.tolist() == [[B, 1_285_714], [A, 714_286]]
    assert result.expense_micros == 2_000_000


def test_min_share_drops_small_works_and_renormalises_the_rest():
    data = frames(gens=[(1, V1, 10_000_000)], attrs=[(1, A, 0.6), (1, B, 0.3), (1, C, 0.1)],
                  manifest=[], owners=OWNERS)

    result = royalty_compute(terms=terms(baseline_bps=0, min_share=Decimal("0.15")), **data)

    # C had 10% < 15%: dropped; A and B share the whole 2,000,000 as 2:1.
    assert result.attributions[["work_id", "amount_micros"]].values.tolist() == [[A, 1_333_333], [B, 666_667]]
    assert result.expense_micros == 2_000_000


def test_a_generation_with_no_kept_work_pays_its_pool_to_the_baseline():
    data = frames(
        gens=[(1, V1, 5_000_000), (2, V1, 5_000_000)],
        attrs=[(1, A, 1.0), (2, B, 0.2), (2, C, 0.2)],  # generation 2: two works of 50% each
        manifest=[(V1, C), (V1, D)],  # D has no owner: not paid
        owners=OWNERS,
    )

    result = royalty_compute(terms=terms(baseline_bps=0, min_share=Decimal("0.6")), **data)

    assert result.generation_pools["to_baseline"].tolist() == [False, True]
    assert result.attributions["work_id"].tolist() == [A]
    # Generation 2's 1,000,000 goes to the manifest's only owned work, C.
    assert result.baseline[["work_id", "amount_micros"]].values.tolist() == [[C, 1_000_000]]
    assert result.expense_micros == 2_000_000


def test_a_version_without_an_owned_manifest_leaves_its_baseline_unallocated():
    data = frames(gens=[(1, V1, 1_000_000), (2, V2, 1_000_000)], attrs=[(1, A, 1.0), (2, A, 1.0)],
                  manifest=[(V1, A)], owners=OWNERS)

    result = royalty_compute(terms=terms(baseline_bps=5000), **data)

    # Each generation has a pool of 200,000; half is baseline. V2's 100,000 baseline has nowhere to go.
    assert result.unallocated_micros == 100_000
    assert result.expense_micros == 300_000
    assert result.expense_micros + result.unallocated_micros == result.pool_micros


def test_works_without_owners_and_non_positive_scores_are_not_candidates():
    data = frames(gens=[(1, V1, 1_000_000)], attrs=[(1, D, 9.0), (1, A, -1.0), (1, B, 0.0), (1, C, 1.0)],
                  manifest=[], owners=OWNERS)

    result = royalty_compute(terms=terms(top_k=1, baseline_bps=0), **data)

    assert result.attributions[["work_id", "amount_micros"]].values.tolist() == [[C, 200_000]]


def test_a_fixed_pool_is_split_equally_per_generation_and_needs_use():
    data = frames(gens=[(1, V1, 0), (2, V1, 999), (3, V1, 5)], attrs=[(1, A, 1.0), (2, B, 1.0), (3, C, 1.0)],
                  manifest=[], owners=OWNERS)

    result = royalty_compute(terms=terms(pool_fixed_micros=10, baseline_bps=0), **data)
    assert result.generation_pools["pool_micros"].tolist() == [4, 3, 3]
    assert result.expense_micros == 10

    idle = royalty_compute(terms=terms(pool_fixed_micros=10), **frames([], [], [], OWNERS))
    assert (idle.pool_micros, idle.expense_micros, idle.unallocated_micros) == (10, 0, 10)


def test_no_revenue_means_no_pool_and_sub_micro_pools_floor_to_zero():
    data = frames(gens=[(1, V1, 0), (2, V1, 4)], attrs=[(1, A, 1.0)], manifest=[(V1, A)], owners=OWNERS)

    result = royalty_compute(terms=terms(), **data)  # 20% of 4 micros = 0.8: the pool is 0

    assert (result.pool_micros, result.expense_micros) == (0, 0)
    assert result.accruals["amount_micros"].sum() == 0
    # Generation 1 still drew on A: the detail keeps the count, with no money.
    assert accruals_of(result) == {(X, A): (0, 0, 0, 1)}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["ownership"].__setitem__("bps", [10_000, 5_000, 4_000, 10_000]), "sums to 9000 bps"),
        (lambda d: d["attributions"].__setitem__("score", [np.nan, 1.0]), "must be finite"),
        (lambda d: d["attributions"].__setitem__("work_id", [A, A]), "one row per"),
        (lambda d: d["attributions"].__setitem__("generation_id", [1, 99]), "generation 99"),
        (lambda d: d["generations"].__setitem__("revenue_micros", [1.5]), "must hold integers"),
        (lambda d: d["generations"].__setitem__("revenue_micros", [-1]), ">= 0"),
        (lambda d: d.__setitem__("manifest", pd.DataFrame({"work_id": [A]})), "lacks column"),
    ],
)
def test_malformed_inputs_are_refused_with_the_frame_and_column(mutate, message):
    data = frames(gens=[(1, V1, 1_000)], attrs=[(1, A, 1.0), (1, B, 0.5)], manifest=[(V1, A)], owners=OWNERS)
    mutate(data)
    with pytest.raises(PolicyInputError, match=message):
        royalty_compute(terms=terms(), **data)


def test_terms_are_checked():
    with pytest.raises(PolicyInputError, match="6 decimal places"):
        terms(min_share=Decimal("0.0000001"))
    with pytest.raises(PolicyInputError, match="top_k"):
        terms(top_k=0)


# --- property: the vectorised policy is the reference specification, row for row -----------------------


@st.composite
def days(draw):
    n_works = draw(st.integers(1, 8))
    works = list(range(1, n_works + 1))
    owners = []
    for w in works:
        if draw(st.booleans()) or w == 1:
            holders = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3, unique=True))
            cuts = sorted(draw(st.lists(st.integers(1, 9_999), min_size=len(holders) - 1,
                                        max_size=len(holders) - 1, unique=True)))
            bps = [b - a for a, b in zip([0, *cuts], [*cuts, 10_000], strict=True)]
            owners += [(w, c, b) for c, b in zip(holders, bps, strict=True)]
    gens = [(g, draw(st.integers(1, 2)), draw(st.integers(0, 10**9))) for g in range(1, draw(st.integers(0, 6)) + 1)]
    attrs = []
    for g, _, _ in gens:
        for w in draw(st.lists(st.sampled_from(works), max_size=5, unique=True)):
            attrs.append((g, w, draw(st.one_of(st.just(0.25), st.floats(-1, 100, allow_nan=False)))))
    manifest = [(v, w) for v in (1, 2) for w in draw(st.lists(st.sampled_from(works), max_size=4, unique=True))]
    policy = PolicyTerms(
        pool_kind="revenue_share", pool_bps=draw(st.integers(0, 10_000)), baseline_bps=draw(st.integers(0, 10_000)),
        top_k=draw(st.integers(1, 4)), min_share=Decimal(draw(st.integers(0, 600_000))) / 1_000_000,
    )
    if draw(st.booleans()):
        policy = PolicyTerms(pool_kind="fixed", pool_fixed_micros=draw(st.integers(0, 10**7)),
                             baseline_bps=policy.baseline_bps, top_k=policy.top_k, min_share=policy.min_share)
    return policy, gens, attrs, manifest, owners


@settings(max_examples=80, deadline=None)
@given(day=days())
def test_vectorised_policy_equals_the_reference_and_loses_nothing(day):
    policy, gens, attrs, manifest, owners = day

    result = royalty_compute(terms=policy, **frames(gens, attrs, manifest, owners))
    reference = royalty_compute_reference(terms=policy, generations=gens, attributions=attrs, manifest=manifest,
                                          ownership=owners)

    assert (result.pool_micros, result.expense_micros, result.unallocated_micros) == (
        reference["pool"], reference["expense"], reference["unallocated"])
    assert accruals_of(result) == reference["accruals"]
    assert {(r.generation_id, r.work_id): r.amount_micros for r in result.attributions.itertuples()} == (
        reference["attributions"])
    assert result.expense_micros + result.unallocated_micros == result.pool_micros
    assert (result.accruals["amount_micros"] >= 0).all()
    assert (result.accruals["amount_micros"] == result.accruals["attributed_micros"]
            + result.accruals["baseline_micros"]).all()
    kept = result.generation_pools[~result.generation_pools["to_baseline"]]
    per_gen = result.attributions.groupby("generation_id")["amount_micros"].sum()
    for row in kept.itertuples():
        assert per_gen.get(row.generation_id, 0) == row.attributed_pool_micros


def test_amounts_beyond_float_precision_stay_exact():
    # 2**60 micros of revenue: far past 2**53, where a float would round. Every micro must survive.
    revenue = 2**60 + 7
    data = frames(gens=[(1, V1, revenue)], attrs=[(1, A, 1.0), (1, B, 1.0)], manifest=[(V1, C)], owners=OWNERS)

    result = royalty_compute(terms=terms(pool_bps=10_000, baseline_bps=3_333), **data)

    assert result.pool_micros == revenue
    assert result.expense_micros == revenue
    assert int(result.accruals["amount_micros"].sum()) == revenue
    assert result.baseline["amount_micros"].tolist() == [revenue * 3_333 // 10_000]
