"""The night on real Celery workers: a worker SIGKILLed in the middle of the chunks, a new worker, a re-run;
the day ends with one entry and every generation counted once."""

from __future__ import annotations

import time

import pytest
from django.db import connection
from django.db.models import Sum

from attribution.models import Attribution, AttributionChunk, AttributionRun, AttributionSettlement
from royalties.ledger.models import Accrual, Period
from tests.attribution.nightly.conftest import DAY, World, accrual_entries, owed

pytestmark = pytest.mark.celery_worker


def wait_for(check, timeout: float, what: str, worker=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}" + (f"\nworker log:\n{worker.log()[-4000:]}" if worker else ""))


class WriteLock:
    """Another database session holding the write lock the chunk writes need, from outside the worker."""

    def __enter__(self):
        settings = connection.settings_dict
        if connection.vendor == "postgresql":
            import psycopg

            self.conn = psycopg.connect(
                dbname=settings["NAME"], user=settings["USER"], password=settings["PASSWORD"] or None,
                host=settings["HOST"] or None, port=settings["PORT"] or None,
            )
            # Conflicts with the row locks (SELECT ... FOR UPDATE, UPDATE) every chunk write starts with.
            self.conn.execute("LOCK TABLE attribution_attributionchunk IN EXCLUSIVE MODE")
        else:
            import sqlite3

            self.conn = sqlite3.connect(settings["NAME"], isolation_level=None, timeout=30)
            self.conn.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, *exc):
        self.conn.rollback()
        self.conn.close()


@pytest.fixture
def live_world(transactional_db):
    return World()


@pytest.fixture
def forget_dead_messages(celery_app_live):
    """The killed worker's unacknowledged message would come back an hour later: drop it with the test."""
    yield
    with celery_app_live.connection_for_write() as conn:
        conn.default_channel.client.delete("unacked", "unacked_index")


def test_a_worker_killed_mid_night_is_resumed_by_a_rerun_without_double_counting(
        live_world, celery_worker_factory, forget_dead_messages):
    from attribution.nightly.services import night_start

    # given: 12 generations in 6 chunks of 2, and a worker
    world = live_world
    alice, bob = world.contributor("Alice"), world.contributor("Bob")
    works = [world.work("a river runs through the forest", alice),
             world.work("the ocean storm hit the harbor", {alice: 3_000, bob: 7_000}),
             world.work("a dragon in the castle garden", bob)]
    ai_model, program = world.program(pool_bps=2_000, baseline_bps=1_000)
    version = world.version(ai_model, works)
    texts = ["river", "ocean storm", "dragon", "river ocean", "garden", "forest harbor", "castle", "storm",
             "river dragon", "city", "harbor", "winter garden"]
    gens = [world.generation(version, t, revenue_micros=5_000 + 977 * i) for i, t in enumerate(texts)]
    doomed = celery_worker_factory()

    # when: the night starts on the worker; once a chunk is committed, the chunk writes are held up and the
    # worker is killed (SIGKILL to its whole process group) in the middle of the night
    first = night_start(day=DAY, chunk_size=2)
    scored = AttributionChunk.objects.filter(status=AttributionChunk.Status.SCORED)
    wait_for(lambda: scored.exists(), 120, "the first chunk to commit", doomed)
    with WriteLock():
        done_before = scored.count()
        time.sleep(1.5)  # the worker is now waiting for the lock in its next chunk
        assert scored.count() == done_before
        doomed.kill()
    assert 1 <= done_before < 6
    assert not Period.objects.filter(day=DAY).exists()
    assert not accrual_entries(program)

    # then: a new worker and a re-run finish the night: one entry, every generation once, exact sums
    survivor = celery_worker_factory()
    second = night_start(day=DAY, chunk_size=2)
    wait_for(lambda: AttributionRun.objects.get(pk=second.pk).is_finished, 180, "the re-run to finish", survivor)
    second.refresh_from_db()
    first.refresh_from_db()
    assert second.status == AttributionRun.Status.COMPLETED, (second.errors, survivor.log()[-3000:])
    assert second.generation_count == 0  # the re-run took no generation twice
    assert first.status == AttributionRun.Status.SUPERSEDED
    assert AttributionChunk.objects.filter(status=AttributionChunk.Status.SCORED).count() == 6
    assert Attribution.objects.count() == len(gens) * len(works)
    assert set(Attribution.objects.values_list("generation_id", flat=True)) == {g.pk for g in gens}
    [entry] = accrual_entries(program)
    pool = sum(g.revenue_micros for g in gens) * 2_000 // 10_000
    assert Accrual.objects.filter(journal_entry=entry).aggregate(s=Sum("amount_micros"))["s"] == pool
    assert owed(alice) + owed(bob) == pool
    attributed = Accrual.objects.filter(journal_entry=entry).aggregate(s=Sum("attributed_micros"))["s"]
    assert Attribution.objects.aggregate(s=Sum("settled__amount_micros"))["s"] == attributed
    assert AttributionSettlement.objects.get(program=program, day=DAY).journal_entry_id == entry.pk
    assert Period.objects.get(day=DAY).is_closed
    # the settlement ran in the survivor, as the chord's callback
    assert "attribution.nightly_finalize" in survivor.log()
