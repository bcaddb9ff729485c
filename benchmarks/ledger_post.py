"""Aggregate and post one night of 1,000,000 attribution rows: the issue's budget is 60 s.

What is timed, on a fresh database migrated for the run (PostgreSQL with DATABASE_URL, else SQLite):

- ``aggregate``: ``royalty_compute`` (royalties/ledger/policy.py) on 1,000,000 synthetic attribution rows
  (100,000 generations x top-10 works, 10,000 works, 5,000 contributors, co-owned works): the day's pool,
  per-version baseline, top-k, minimum share, exact largest-remainder splits per generation and per owner.
- ``post``: ``accrual_post``: one balanced journal entry (one credit per contributor) plus the accrual detail
  rows, idempotency key, audit event, all in one transaction.
- ``replay``: the same ``accrual_post`` again (the night run twice): must write nothing.
- ``check_ledger``: every invariant re-verified from the rows afterwards (not part of the budget).

Baselines, in the same run: the same policy as plain Python loops over the exact allocator
(``royalty_compute_reference``, the readable specification) on a 100,000-row sample, extrapolated; and
posting the detail the naive ORM way (``Model.objects.create`` per row) on a 10,000-row sample, extrapolated
and rolled back. The sample's vectorised result is checked equal to the reference, row for row.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ledger .venv/bin/python benchmarks/ledger_post.py
    .venv/bin/python benchmarks/ledger_post.py --rows 200000      # quicker, SQLite

Prints one JSON line per stage.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "royalties.settings_test")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from attribution.models import AIModel  # noqa: E402
from contributors.models import Contributor, Work  # noqa: E402
from royalties.ledger.checks import ledger_check  # noqa: E402
from royalties.ledger.models import Accrual, JournalEntry, Period, Posting  # noqa: E402
from royalties.ledger.policy import PolicyTerms, royalty_compute  # noqa: E402
from royalties.ledger.policy_reference import royalty_compute_reference  # noqa: E402
from royalties.ledger.selectors import program_terms_for  # noqa: E402
from royalties.ledger.services import accrual_post, royalty_program_create  # noqa: E402

DAY = dt.date(2024, 6, 1)
LIMIT_SECONDS = 60.0


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


def seed_catalog(n_contributors: int, n_works: int) -> tuple[np.ndarray, np.ndarray]:
    """Contributors (each with a user) and works, inserted in bulk; returns their ids."""
    user_model = get_user_model()
    users = user_model.objects.bulk_create(
        [user_model(username=f"bench{i}", email=f"bench{i}@example.org") for i in range(n_contributors)],
        batch_size=2_000,
    )
    contributors = Contributor.objects.bulk_create(
        [Contributor(user=u, display_name=f"Contributor {i}") for i, u in enumerate(users)], batch_size=2_000
    )
    works = Work.objects.bulk_create(
        [Work(kind="text", title=f"Work {i}", size_bytes=10, mime_type="text/plain", sha256=f"{i:064x}")
         for i in range(n_works)],
        batch_size=2_000,
    )
    return np.array([c.pk for c in contributors], dtype=np.int64), np.array([w.pk for w in works], dtype=np.int64)


def synthetic_ownership(rng: np.random.Generator, work_ids: np.ndarray, contributor_ids: np.ndarray):
    """Manifests of the two versions, and co-ownership: 70% one owner, 25% two (60/40), 5% three."""
    n_works = len(work_ids)
    manifest = pd.concat([
        pd.DataFrame({"model_version_id": 1, "work_id": work_ids[: int(n_works * 0.8)]}),
        pd.DataFrame({"model_version_id": 2, "work_id": work_ids}),
    ])
    owners = []
    kinds = rng.random(n_works)
    first = rng.integers(0, len(contributor_ids), n_works)
    for split, mask in (((10_000,), kinds < 0.70), ((6_000, 4_000), (kinds >= 0.70) & (kinds < 0.95)),
                        ((5_000, 3_000, 2_000), kinds >= 0.95)):
        for j, bps in enumerate(split):
            owners.append(pd.DataFrame({
                "work_id": work_ids[mask],
                "contributor_id": contributor_ids[(first[mask] + j * 977) % len(contributor_ids)],
                "bps": bps,
            }))
    return manifest, pd.concat(owners, ignore_index=True)


def synthetic_night(rng: np.random.Generator, rows: int, work_ids: np.ndarray):
    """Generations of two versions with their revenue, and top-10 attribution rows (skewed popularity)."""
    k = 10
    n_gen = rows // k
    n_works = len(work_ids)
    gen_ids = np.arange(1, n_gen + 1, dtype=np.int64)
    generations = pd.DataFrame({
        "generation_id": gen_ids,
        "model_version_id": rng.integers(1, 3, n_gen),
        "revenue_micros": rng.integers(1_000, 50_000, n_gen),  # 0.001 .. 0.05 per generation
    })
    # k distinct works per generation: start + j * step (mod N) with step < N / k never repeats.
    start = (rng.zipf(1.3, n_gen) * 7919) % n_works  # popular works recur
    step = rng.integers(1, n_works // k, n_gen)
    idx = (start[:, None] + np.arange(k)[None, :] * step[:, None]) % n_works
    attributions = pd.DataFrame({
        "generation_id": np.repeat(gen_ids, k),
        "work_id": work_ids[idx.ravel()],
        "score": rng.exponential(1.0, n_gen * k) * (rng.random(n_gen * k) > 0.02),  # a few zero scores
    })
    return generations, attributions


def nights_entry(day: dt.date) -> int:
    return JournalEntry.objects.get(kind="accrual", period__day=day).pk


def naive_orm_post(program, accruals: pd.DataFrame, sample: int) -> float:
    """Per-row ORM writes of a sample of the detail, rolled back: seconds for the sample."""
    rows = accruals.head(sample)
    period = Period.objects.get(day=DAY)
    start = time.perf_counter()
    with transaction.atomic():
        entry = JournalEntry.objects.create(kind="accrual", period=period, idempotency_key="naive", content_hash="")
        for r in rows.itertuples(index=False):
            Accrual.objects.create(
                journal_entry=entry, period=period, program=program, contributor_id=r.contributor_id,
                work_id=r.work_id, amount_micros=r.amount_micros, baseline_micros=r.baseline_micros,
                attributed_micros=r.attributed_micros, generation_count=r.generation_count,
            )
        transaction.set_rollback(True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--works", type=int, default=10_000)
    parser.add_argument("--contributors", type=int, default=5_000)
    parser.add_argument("--reference-sample", type=int, default=0, help="rows for the loop baseline (0: all)")
    parser.add_argument("--orm-sample", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    connection.settings_dict.setdefault("TEST", {})
    if connection.vendor == "postgresql":
        connection.settings_dict["TEST"]["NAME"] = "ledger_benchmark"
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        run(args)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def run(args) -> None:
    rng = np.random.default_rng(args.seed)
    emit(event="setup", database=connection.vendor, rows=args.rows, works=args.works,
         contributors=args.contributors)
    contributor_ids, work_ids = seed_catalog(args.contributors, args.works)
    program = royalty_program_create(
        ai_model=AIModel.objects.create(name="bench-model", modality="text"), name="Benchmark program",
        effective_from=dt.date(2024, 1, 1), currency="USD", pool_bps=2_000, baseline_bps=1_000, top_k=8,
        min_share=Decimal("0.02"), created_by_label="benchmark",
    )
    terms = PolicyTerms.from_terms(program_terms_for(program=program, day=DAY))
    manifest, ownership = synthetic_ownership(rng, work_ids, contributor_ids)
    nights = []
    for night in (1, 2):
        # Night 1 also creates the payable accounts of every contributor; night 2 is the steady state.
        day = DAY + dt.timedelta(days=night - 1)
        t0 = time.perf_counter()
        generations, attributions = synthetic_night(rng, args.rows, work_ids)
        emit(stage="generate", night=night, seconds=round(time.perf_counter() - t0, 3),
             attribution_rows=len(attributions), generations=len(generations), ownership_rows=len(ownership))

        t0 = time.perf_counter()
        result = royalty_compute(terms=terms, generations=generations, attributions=attributions,
                                 manifest=manifest, ownership=ownership)
        aggregate_s = time.perf_counter() - t0
        emit(stage="aggregate", night=night, seconds=round(aggregate_s, 3), attribution_rows=len(attributions),
             kept_rows=len(result.attributions), accrual_rows=len(result.accruals), pool_micros=result.pool_micros,
             expense_micros=result.expense_micros, unallocated_micros=result.unallocated_micros)

        t0 = time.perf_counter()
        entry = accrual_post(program=program, period=day, allocations=result.accruals,
                             expense_total_micros=result.expense_micros, created_by_label="benchmark")
        post_s = time.perf_counter() - t0
        emit(stage="post", night=night, seconds=round(post_s, 3), postings=entry.postings.count(),
             accrual_rows=entry.accruals.count())
        emit(stage="total", night=night, seconds=round(aggregate_s + post_s, 3), limit_seconds=LIMIT_SECONDS,
             within_limit=aggregate_s + post_s < LIMIT_SECONDS)
        nights.append((generations, attributions, manifest, ownership, result, aggregate_s, post_s))
    generations, attributions, manifest, ownership, result, aggregate_s, post_s = nights[0]

    t0 = time.perf_counter()
    again = accrual_post(program=program, period=DAY, allocations=result.accruals,
                         expense_total_micros=result.expense_micros, created_by_label="benchmark")
    emit(stage="replay", seconds=round(time.perf_counter() - t0, 3), same_entry=again.pk == nights_entry(DAY),
         entries=JournalEntry.objects.count(), postings=Posting.objects.count())

    t0 = time.perf_counter()
    check = ledger_check()
    emit(stage="check_ledger", seconds=round(time.perf_counter() - t0, 3), breaches=len(check.breaches))

    # Baseline 1: the same policy as Python loops (the reference), on night 1 (or a sample of it).
    sample_gens = generations.head(args.reference_sample // 10) if args.reference_sample else generations
    sample_attrs = attributions[attributions["generation_id"].isin(sample_gens["generation_id"])]
    t0 = time.perf_counter()
    vector = royalty_compute(terms=terms, generations=sample_gens, attributions=sample_attrs, manifest=manifest,
                             ownership=ownership)
    vector_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    reference = royalty_compute_reference(
        terms=terms, generations=list(sample_gens.itertuples(index=False, name=None)),
        attributions=list(sample_attrs.itertuples(index=False, name=None)),
        manifest=list(manifest.itertuples(index=False, name=None)),
        ownership=list(ownership.itertuples(index=False, name=None)),
    )
    reference_s = time.perf_counter() - t0
    same = {(r.contributor_id, r.work_id): (r.amount_micros, r.attributed_micros, r.baseline_micros,
                                             r.generation_count) for r in vector.accruals.itertuples()} == (
        reference["accruals"])
    scale = len(attributions) / max(1, len(sample_attrs))
    emit(baseline="python_loop_policy", sample_rows=len(sample_attrs), seconds=round(reference_s, 3),
         extrapolated_seconds=round(reference_s * scale, 1), vectorised_sample_seconds=round(vector_s, 3),
         speedup_vs_vectorised_full=round(reference_s * scale / aggregate_s, 1), identical_money=same)

    # Baseline 2: per-row ORM creates of the accrual detail.
    orm_s = naive_orm_post(program, result.accruals, args.orm_sample)
    sample = min(args.orm_sample, len(result.accruals))
    emit(baseline="orm_create_per_row", sample_rows=sample, seconds=round(orm_s, 3),
         extrapolated_seconds=round(orm_s * len(result.accruals) / sample, 2),
         service_post_seconds=round(post_s, 3))


if __name__ == "__main__":
    main()
