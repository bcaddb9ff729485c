"""The royalty policy written as plain loops over the exact allocator: the readable specification.

``royalty_compute`` (policy.py) must give exactly the same money as this, row for row; the property tests
compare the two on random days, and the benchmark uses this as the naive baseline. Same rules, same order,
same tie-breaks, same quantisation (math.ldexp/math.floor round exactly as NumPy's do).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from fractions import Fraction

from royalties.ledger.allocation import QUANTIZE_BITS, allocate_largest_remainder
from royalties.ledger.policy import BPS_TOTAL, POOL_REVENUE_SHARE, PolicyTerms


def royalty_compute_reference(
    *,
    terms: PolicyTerms,
    generations: Iterable[tuple[int, int, int]],
    attributions: Iterable[tuple[int, int, float]],
    manifest: Iterable[tuple[int, int]],
    ownership: Iterable[tuple[int, int, int]],
) -> dict:
    """Returns ``pool``, ``expense``, ``unallocated``, ``attributions`` {(gen, work): micros} and
    ``accruals`` {(contributor, work): (amount, attributed, baseline, generation_count)}."""
    gens = sorted(generations)
    owners: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for work, contributor, bps in ownership:
        owners[work].append((contributor, bps))
    if terms.pool_kind == POOL_REVENUE_SHARE:
        pool = sum(r for _, _, r in gens) * (terms.pool_bps or 0) // BPS_TOTAL
        weights = [r for _, _, r in gens]
    else:
        pool = terms.pool_fixed_micros or 0
        weights = [1] * len(gens)
    if not gens:
        return {"pool": pool, "expense": 0, "unallocated": pool, "attributions": {}, "accruals": {}}
    gen_ids = [g for g, _, _ in gens]
    gen_pool = dict(zip(gen_ids, allocate_largest_remainder(pool, weights, keys=gen_ids), strict=True))
    version_of = {g: v for g, v, _ in gens}

    by_version: dict[int, list[int]] = defaultdict(list)
    for g, v, _ in gens:
        by_version[v].append(g)
    baseline_v: dict[int, int] = {}
    attr_pool: dict[int, int] = {}
    for v, members in by_version.items():
        pool_v = sum(gen_pool[g] for g in members)
        baseline_v[v] = pool_v * terms.baseline_bps // BPS_TOTAL
        parts = allocate_largest_remainder(pool_v - baseline_v[v], [gen_pool[g] for g in members], keys=members)
        attr_pool.update(zip(members, parts, strict=True))

    candidates: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for g, w, score in attributions:
        if score > 0 and w in owners:
            candidates[g].append((score, w))
    attributed_amounts: dict[tuple[int, int], int] = {}
    for g, _, _ in gens:
        kept = sorted(candidates.get(g, []), key=lambda sw: (-sw[0], sw[1]))[: terms.top_k]
        if kept:
            top = max(s for s, _ in kept)
            kept_w = [(math.floor(math.ldexp(s / top, QUANTIZE_BITS)), w) for s, w in kept]
            total = sum(q for q, _ in kept_w)
            min_share = Fraction(terms.min_share)
            kept_w = [(q, w) for q, w in kept_w if Fraction(q, total) >= min_share]
        else:
            kept_w = []
        if not kept_w:
            baseline_v[version_of[g]] += attr_pool[g]
            continue
        parts = allocate_largest_remainder(attr_pool[g], [q for q, _ in kept_w], keys=[w for _, w in kept_w])
        for (_, w), amount in zip(kept_w, parts, strict=True):
            attributed_amounts[(g, w)] = amount

    manifest_works: dict[int, set[int]] = defaultdict(set)
    for v, w in manifest:
        if v in by_version and w in owners:
            manifest_works[v].add(w)
    baseline_w: dict[int, int] = defaultdict(int)
    unallocated = 0
    for v in by_version:
        works = sorted(manifest_works[v])
        if not works:
            unallocated += baseline_v[v]
            continue
        for w, amount in zip(works, allocate_largest_remainder(baseline_v[v], [1] * len(works), keys=works),
                             strict=True):
            baseline_w[w] += amount

    attributed_w: dict[int, int] = defaultdict(int)
    generations_w: dict[int, int] = defaultdict(int)
    for (_, w), amount in attributed_amounts.items():
        attributed_w[w] += amount
        generations_w[w] += 1
    accruals = {}
    for w in sorted(set(attributed_w) | set(baseline_w)):
        holders = sorted(owners[w])
        keys = [c for c, _ in holders]
        shares = [b for _, b in holders]
        a_parts = allocate_largest_remainder(attributed_w[w], shares, keys=keys)
        b_parts = allocate_largest_remainder(baseline_w[w], shares, keys=keys)
        for c, a, b in zip(keys, a_parts, b_parts, strict=True):
            if a + b or generations_w[w]:
                accruals[(c, w)] = (a + b, a, b, generations_w[w])
    expense = sum(v[0] for v in accruals.values())
    return {"pool": pool, "expense": expense, "unallocated": unallocated, "attributions": attributed_amounts,
            "accruals": accruals}
