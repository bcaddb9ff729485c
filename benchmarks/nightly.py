"""The nightly job end to end on PostgreSQL: 100,000 generations against an index of 10,000 works, in-process
and then on 2 Celery workers (Redis), seconds per stage.

What runs, on a fresh PostgreSQL database (``royalties_bench_nightly``) migrated for the run:

- a catalog of 10,000 text works (60 words each from a 20,000-word vocabulary) owned by 5,000 contributors
  (70% one owner, 25% two at 60/40, 5% three at 50/30/20), one AI model with a royalty program (20% revenue
  share, 10% baseline, top-10), one model version whose training manifest is all 10,000 works;
- its attribution index, built by ``attribution_index_build``: a **retrieval** ``EmbeddingIndex`` (the
  ``HashedWordsAdapter`` below: each text is its word counts hashed into 256 dimensions, cosine similarity;
  deterministic, no model weights) plus the copy-detection index over the 10,000 texts;
- 100,000 generations per day (30 words drawn mostly from one work, popular works recurring; 1% carry a
  verbatim 14-word passage of a work), i.e. 1,000,000 top-10 attribution rows per night.

Night 1 runs in this process (``night_run``, what ``manage.py run_nightly`` does); night 2 (another 100,000
generations, the next day) is fanned out as a Celery chord to 2 worker processes (``celery worker
--concurrency=1`` each) on Redis. Stages, from the run's record (``AttributionRun.timings``):

- ``scoring``: loading generations, the engine's top-k and copy detection, summed over chunks;
- ``writing``: inserting the attribution rows (COPY) and setting the generations' ``attributed_at``, with the
  commit, summed over chunks;
- ``fanout``: wall clock of the whole chunk stage (scoring + writing, on however many processes);
- ``aggregation``: reading the day's rows back and applying the policy (``royalty_compute``);
- ``amounts``: writing each kept row's share and amount (COPY into ``AttributionAmount``) and each
  generation's pool;
- ``posting``: ``accrual_post``, one balanced entry and its detail.

The issue's budget applies to aggregation + amounts + posting of the night's 1,000,000 rows (< 60 s). Each
night is checked afterwards: every generation attributed once, the entry equals the pool to the micro-unit.

    .venv/bin/python benchmarks/nightly.py                      # defaults below; ~10 minutes on 2 cores
    .venv/bin/python benchmarks/nightly.py --generations 20000  # quicker

Prints one JSON line per stage and mode, then totals and checks.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from attribution.adapters.base import METHOD_RETRIEVAL, GenerationInput, ModelAdapter, WorkInput, batched  # noqa: E402

DIM = 256
DAY = dt.date(2024, 6, 3)
LIMIT_SECONDS = 60.0
REDIS_DB_DEFAULT = "redis://127.0.0.1:6379/10"


class HashedWordsEncoder(nn.Module):
    """Texts -> ``[B, 256]`` word counts, each word hashed (CRC-32) to a dimension; the index normalises."""

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        rows: list[int] = []
        cols: list[int] = []
        for row, text in enumerate(texts):
            for word in text.split():
                rows.append(row)
                cols.append(zlib.crc32(word.encode()) % DIM)
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        np.add.at(out, (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)), 1.0)
        return torch.from_numpy(out)


class HashedWordsAdapter(ModelAdapter):
    """A black-box text model's stand-in whose embedding costs microseconds: the index, not an encoder, is
    what this benchmark measures."""

    method = METHOD_RETRIEVAL
    modality = "text"
    work_kinds = ("text",)
    default_batch_size = 500

    def validate(self) -> None:
        return None

    def checkpoint_fingerprint(self) -> str:
        return hashlib.sha256(f"hashed-words-crc32-{DIM}".encode()).hexdigest()

    def load_model(self) -> nn.Module:
        return HashedWordsEncoder()

    def work_batches(self, works: Sequence[WorkInput], batch_size: int) -> Iterator[list[str]]:
        for chunk in batched(works, batch_size):
            yield [w.text_content() for w in chunk]

    def generation_batches(self, generations: Sequence[GenerationInput], batch_size: int) -> Iterator[list[str]]:
        for chunk in batched(generations, batch_size):
            yield [g.output_text for g in chunk]


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def database_url(admin_url: str, name: str) -> str:
    parts = urllib.parse.urlsplit(admin_url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


def recreate_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def configure(args) -> dict[str, str]:
    """Environment of this process and of the workers: the benchmark database, Redis, production settings."""
    env = {
        "DJANGO_SETTINGS_MODULE": "royalties.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "benchmark-only-" + uuid.uuid4().hex,
        "DATABASE_URL": database_url(args.admin_url, args.database),
        "ROYALTIES_DATA_DIR": args.data_dir,
        "ROYALTIES_LOG_LEVEL": "WARNING",
        "CELERY_BROKER_URL": args.broker,
        "ROYALTIES_NIGHTLY_CHUNK_SIZE": str(args.chunk_size),
        "PYTHONPATH": str(ROOT),
    }
    os.environ.update(env)
    return env


# --- seeding ------------------------------------------------------------------------------------------------


def seed_catalog(rng: np.random.Generator, vocabulary: np.ndarray, n_works: int, n_contributors: int):
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from contributors.models import Contributor, Ownership, Work

    user_model = get_user_model()
    with transaction.atomic():
        users = user_model.objects.bulk_create(
            [user_model(username=f"bench{i}", email=f"bench{i}@example.org") for i in range(n_contributors)],
            batch_size=5_000)
        contributors = Contributor.objects.bulk_create(
            [Contributor(user=u, display_name=f"Contributor {i}") for i, u in enumerate(users)], batch_size=5_000)
        texts = [" ".join(vocabulary[rng.integers(0, len(vocabulary), 60)]) for _ in range(n_works)]
        works = Work.objects.bulk_create(
            [Work(kind="text", title=f"Work {i}", text_body=t, size_bytes=len(t), mime_type="text/plain",
                  sha256=hashlib.sha256(t.encode()).hexdigest()) for i, t in enumerate(texts)],
            batch_size=5_000)
        contributor_ids = [c.pk for c in contributors]
        kinds = rng.random(n_works)
        first = rng.integers(0, n_contributors, n_works)
        owners = []
        for i, work in enumerate(works):
            split = (10_000,) if kinds[i] < 0.70 else (6_000, 4_000) if kinds[i] < 0.95 else (5_000, 3_000, 2_000)
            for j, bps in enumerate(split):
                owners.append(Ownership(work=work, contributor_id=contributor_ids[(first[i] + j * 977) % n_contributors],
                                        bps=bps))
        Ownership.objects.bulk_create(owners, batch_size=5_000)
    return works, texts


def seed_model(works) -> Any:
    from attribution.index_services import attribution_index_build
    from attribution.models import AIModel
    from attribution.services.registry import model_version_register
    from royalties.ledger.services import royalty_program_create

    ai_model = AIModel.objects.create(name="bench-writer", modality="text")
    royalty_program_create(ai_model=ai_model, name="Bench writer", effective_from=dt.date(2020, 1, 1),
                           currency="USD", pool_bps=2_000, baseline_bps=1_000, top_k=10,
                           created_by_label="benchmark")
    manifest = ("work_id\n" + "".join(f"{w.pk}\n" for w in works)).encode()
    version, _ = model_version_register(ai_model=ai_model, label="v1", adapter="benchmarks.nightly.HashedWordsAdapter",
                                        manifest=manifest, manifest_filename="manifest.csv",
                                        actor_label="benchmark")
    started = time.perf_counter()
    attribution_index_build(model_version=version, actor_label="benchmark")
    version.refresh_from_db()
    emit(stage="index_build", seconds=round(time.perf_counter() - started, 3), works=len(works),
         method=version.index_meta["method"], dim=version.index_meta.get("embedding_dim"))
    return version


def seed_generations(rng: np.random.Generator, version, texts: list[str], day: dt.date, n: int, tag: str) -> None:
    from django.db import transaction
    from django.utils import timezone

    from attribution.models import Generation
    from attribution.nightly.sql import bulk_insert

    started = time.perf_counter()
    words = [t.split() for t in texts]
    popular = (rng.zipf(1.4, n) * 7_919) % len(texts)
    copies = rng.random(n) < 0.01
    base = dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)
    now = timezone.now()

    def rows():
        for i in range(n):
            source = words[popular[i]]
            picked = [source[j] for j in rng.integers(0, len(source), 20)]
            other = words[rng.integers(0, len(words))]
            picked += [other[j] for j in rng.integers(0, len(other), 10)]
            if copies[i]:
                victim = words[rng.integers(0, len(words))]
                start = int(rng.integers(0, len(victim) - 14))
                picked += victim[start: start + 14]
            text = " ".join(picked)
            yield (version.pk, f"{tag}-{i}", "prompt", text, "", "", "0" * 64,
                   hashlib.sha256(text.encode()).hexdigest(), int(rng.integers(1_000, 50_000)), "USD",
                   base + dt.timedelta(microseconds=int(i * 86_400_000_000 // n)), now, "{}", "")

    with transaction.atomic():
        bulk_insert(Generation, ["model_version", "external_id", "prompt", "output_text", "output_media",
                                 "output_mime_type", "prompt_sha256", "output_sha256", "revenue_micros", "currency",
                                 "generated_at", "received_at", "metadata", "content_sha256"], rows())
    emit(stage="seed_generations", day=day.isoformat(), generations=n,
         seconds=round(time.perf_counter() - started, 3))


# --- runs ---------------------------------------------------------------------------------------------------


def start_workers(env: dict[str, str], count: int, log_dir: str) -> list[subprocess.Popen]:
    procs = []
    for i in range(count):
        log = open(Path(log_dir) / f"worker-{i}.log", "wb")  # noqa: SIM115 - lives as long as the worker
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "royalties", "worker", "--loglevel=WARNING", "--concurrency=1",
             "--pool=prefork", "--without-gossip", "--without-mingle", "--without-heartbeat",
             f"--hostname=bench-nightly-{i}-{uuid.uuid4().hex[:6]}@%h"],
            cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        ))
    from royalties.celery import app

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=1.0)
        if len(replies) >= count:
            return procs
        if any(p.poll() is not None for p in procs):
            break
        time.sleep(0.5)
    stop_workers(procs)
    raise RuntimeError(f"the {count} workers did not start; see {log_dir}")


def stop_workers(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def report(mode: str, run, wall: float, processes: int) -> None:
    t = run.timings
    budget = t.get("aggregation", 0) + t.get("amounts", 0) + t.get("posting", 0)
    emit(mode=mode, stage="scoring", seconds=t["scoring"], note="engine top-k + copy detection, summed over chunks",
         processes=processes)
    emit(mode=mode, stage="writing", seconds=t["writing"], note="attribution rows (COPY) + attributed_at + commit, summed over chunks",
         rows=run.attribution_count)
    emit(mode=mode, stage="fanout", seconds=t.get("fanout"), note="wall clock of scoring + writing",
         chunks=run.chunks_scored, processes=processes)
    emit(mode=mode, stage="aggregation", seconds=t["aggregation"], note="read the day's rows + royalty_compute")
    emit(mode=mode, stage="amounts", seconds=t["amounts"], note="shares/amounts (COPY) and generation pools",
         amount_rows=t.get("amount_rows"), generation_pools=t.get("generation_pools"))
    emit(mode=mode, stage="posting", seconds=t["posting"], note="accrual_post: one entry + detail")
    emit(mode=mode, stage="total", wall_seconds=round(wall, 3), plan_seconds=t["plan"], load_seconds=t["load"],
         close_seconds=t["close"], generations=run.generation_count, attribution_rows=run.attribution_count,
         generations_per_s=round(run.generation_count / wall, 1), status=run.status)
    emit(check="aggregate_and_post", mode=mode, rows=run.attribution_count, seconds=round(budget, 3),
         limit_seconds=LIMIT_SECONDS, within_limit=budget < LIMIT_SECONDS)


def verify(day: dt.date, expected_generations: int) -> None:
    """Every generation attributed once; the entry books the pool exactly; rows and ledger agree per work."""
    from django.db.models import Sum

    from attribution.models import AttributedGeneration, Attribution, AttributionSettlement, Generation
    from attribution.nightly.selectors import attribution_totals_by_work
    from royalties.ledger.models import Accrual
    from royalties.ledger.selectors import accrual_attributed_by_work

    settlement = AttributionSettlement.objects.get(day=day)
    revenue = Generation.objects.filter(nightly__day=day).aggregate(s=Sum("revenue_micros"))["s"]
    booked = Accrual.objects.filter(period__day=day).aggregate(s=Sum("amount_micros"))["s"]
    by_work_ok = attribution_totals_by_work(program=settlement.program, day=day) == accrual_attributed_by_work(
        program=settlement.program, day=day)
    emit(check="exact", day=day.isoformat(),
         generations_attributed=AttributedGeneration.objects.filter(day=day).count(),
         generations_expected=expected_generations,
         attribution_rows=Attribution.objects.filter(day=day).count(),
         copied_rows=Attribution.objects.filter(day=day, copied=True).count(),
         pool_micros=settlement.pool_micros, pool_from_revenue=revenue * 2_000 // 10_000, booked_micros=booked,
         per_work_equal=by_work_ok,
         ok=(settlement.pool_micros == revenue * 2_000 // 10_000 == booked + settlement.unallocated_micros
             and by_work_ok))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--admin-url", default=os.environ.get("BENCH_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--database", default="royalties_bench_nightly")
    parser.add_argument("--broker", default=os.environ.get("BENCH_BROKER_URL", REDIS_DB_DEFAULT))
    parser.add_argument("--works", type=int, default=10_000)
    parser.add_argument("--contributors", type=int, default=5_000)
    parser.add_argument("--generations", type=int, default=100_000)
    parser.add_argument("--chunk-size", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-celery", action="store_true")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    args.data_dir = args.data_dir or tempfile.mkdtemp(prefix="bench-nightly-")
    recreate_database(args.admin_url, args.database)
    env = configure(args)

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from attribution.nightly.services import night_run, night_start
    from royalties.celery import app

    emit(setup="database", database=args.database, broker=args.broker, chunk_size=args.chunk_size,
         cpus=os.cpu_count(), load_avg_1m=round(os.getloadavg()[0], 2))
    rng = np.random.default_rng(0)
    vocabulary = np.array([f"w{i}" for i in range(20_000)])
    started = time.perf_counter()
    works, texts = seed_catalog(rng, vocabulary, args.works, args.contributors)
    emit(stage="seed_catalog", works=args.works, contributors=args.contributors,
         seconds=round(time.perf_counter() - started, 3))
    version = seed_model(works)

    # Night 1: in this process.
    seed_generations(rng, version, texts, DAY, args.generations, "d1")
    started = time.perf_counter()
    run = night_run(day=DAY, chunk_size=args.chunk_size, actor_label="benchmark")
    report("in-process", run, time.perf_counter() - started, 1)
    verify(DAY, args.generations)

    if args.skip_celery:
        return
    # Night 2: the next day, a chord on N worker processes.
    day2 = DAY + dt.timedelta(days=1)
    seed_generations(rng, version, texts, day2, args.generations, "d2")
    app.control.purge()
    procs = start_workers(env, args.workers, args.data_dir)
    try:
        started = time.perf_counter()
        run = night_start(day=day2, chunk_size=args.chunk_size, actor_label="benchmark")
        while True:
            run.refresh_from_db()
            if run.is_finished:
                break
            time.sleep(0.5)
        wall = time.perf_counter() - started
    finally:
        stop_workers(procs)
    report(f"celery-{args.workers}-workers", run, wall, args.workers)
    verify(day2, args.generations)
    emit(load_avg_1m_after=round(os.getloadavg()[0], 2))


if __name__ == "__main__":
    main()
