"""Re-running, crashing and resuming, late generations, corrections, and what a night leaves alone."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db.models import Sum

from attribution.models import (
    AttributedGeneration,
    Attribution,
    AttributionAmount,
    AttributionChunk,
    AttributionRun,
    AttributionSettlement,
    Generation,
)
from attribution.nightly.selectors import attribution_totals_by_work, late_generation_list
from royalties.ledger.models import Accrual, JournalEntry, Period
from royalties.ledger.selectors import accrual_attributed_by_work, accrual_entry_current
from tests.attribution.nightly.conftest import DAY, accrual_entries, at, owed

NEXT = DAY + dt.timedelta(days=1)


@pytest.fixture
def scene(world):
    """Two owners, three works in one version's manifest, seven generations on DAY."""
    alice, bob = world.contributor("Alice"), world.contributor("Bob")
    works = [world.work("a river runs through the forest", alice),
             world.work("the ocean storm hit the harbor", {alice: 5_000, bob: 5_000}),
             world.work("a dragon in the castle garden", bob)]
    ai_model, program = world.program(pool_bps=2_000, baseline_bps=1_000)
    version = world.version(ai_model, works)
    texts = ["river", "ocean storm", "dragon castle", "river ocean", "garden", "forest harbor", "castle"]
    gens = [world.generation(version, t, revenue_micros=10_000 + i * 1_111) for i, t in enumerate(texts)]
    return {"alice": alice, "bob": bob, "works": works, "program": program, "version": version, "gens": gens,
            "ai_model": ai_model}


def _day_is_consistent(program, day):
    """Ledger and attribution rows agree: entry in effect == detail == amounts written, per work too."""
    current = accrual_entry_current(program=program, day=day)
    settlement = AttributionSettlement.objects.get(program=program, day=day)
    net = Accrual.objects.filter(program=program, period__day=day).aggregate(s=Sum("amount_micros"))["s"] or 0
    assert net == settlement.expense_micros == current.postings.filter(amount_micros__gt=0).get().amount_micros
    assert attribution_totals_by_work(program=program, day=day) == accrual_attributed_by_work(program=program, day=day)
    assert settlement.journal_entry_id == current.pk


def test_running_a_finished_night_again_posts_nothing(world, scene):
    first = world.night()
    rows, entries, balance = Attribution.objects.count(), JournalEntry.objects.count(), owed(scene["alice"])

    again = world.night()

    assert again.status == AttributionRun.Status.COMPLETED
    assert (again.generation_count, again.chunks_scored, again.chunks_skipped) == (0, 0, first.chunks_scored)
    assert [p["outcome"] for p in again.programs] == ["unchanged"]
    assert Attribution.objects.count() == rows
    assert JournalEntry.objects.count() == entries  # nothing posted, no reversal either
    assert owed(scene["alice"]) == balance
    assert len(accrual_entries(scene["program"])) == 1


def test_a_chunk_that_dies_mid_write_leaves_nothing_and_the_rerun_counts_it_once(world, scene, monkeypatch):
    import attribution.nightly.scoring as scoring

    real_insert = scoring.bulk_insert
    third = {}

    def dies_half_way(model, fields, rows):
        # The third chunk writes half its rows, then the worker "dies" before the commit.
        chunk = AttributionChunk.objects.get(pk=rows[0][0])
        if chunk.seq == 3:
            third["id"] = chunk.pk
            real_insert(model, fields, rows[: len(rows) // 2])
            raise RuntimeError("worker lost")
        return real_insert(model, fields, rows)

    monkeypatch.setattr(scoring, "bulk_insert", dies_half_way)
    with pytest.raises(RuntimeError, match="worker lost"):
        world.night(chunk_size=2)

    crashed = AttributionRun.objects.get()
    assert crashed.status == AttributionRun.Status.FAILED
    assert "worker lost" in crashed.errors[0]["message"]
    chunks = {c.seq: c for c in AttributionChunk.objects.all()}
    assert [chunks[s].status for s in (1, 2, 3, 4)] == ["scored", "scored", "planned", "planned"]
    assert not Attribution.objects.filter(chunk_id=third["id"]).exists()  # the half-written rows are gone
    assert not JournalEntry.objects.exists()
    # attributed_at (the retention clock) came with each scored chunk's rows, and went with the dead one's
    scored_generations = set(AttributedGeneration.objects.filter(chunk__status="scored")
                             .values_list("generation_id", flat=True))
    assert set(Generation.objects.filter(attributed_at__isnull=False).values_list("pk", flat=True)) == \
        scored_generations
    assert not Generation.objects.filter(nightly__chunk_id=third["id"], attributed_at__isnull=False).exists()

    # a later night says what the dead one left behind (and does not take it: those chunks are that day's)
    other = world.night(NEXT)
    assert any(f"run_nightly --date {DAY}" in w and "unscored" in w for w in other.warnings)
    assert other.generation_count == 0
    assert not Period.objects.filter(day=NEXT, status=Period.Status.CLOSED).exists()  # days close in order

    monkeypatch.undo()
    resumed = world.night(chunk_size=2)

    assert resumed.status == AttributionRun.Status.COMPLETED
    assert (resumed.generation_count, resumed.chunks_scored, resumed.chunks_skipped) == (0, 2, 2)
    assert AttributionChunk.objects.get(seq=1).scored_by_run == crashed  # not scored twice
    # every generation scored exactly once: 3 works in the index, so 3 rows each
    assert Attribution.objects.count() == 7 * 3
    assert set(Attribution.objects.values_list("generation_id", flat=True)) == {g.pk for g in scene["gens"]}
    assert len(accrual_entries(scene["program"])) == 1
    _day_is_consistent(scene["program"], DAY)
    assert Period.objects.get(day=DAY).is_closed
    pool = sum(g.revenue_micros for g in scene["gens"]) * 2_000 // 10_000
    assert owed(scene["alice"]) + owed(scene["bob"]) == pool


def test_a_crash_after_posting_rolls_the_whole_settlement_back(world, scene, monkeypatch):
    import attribution.nightly.settlement as settlement

    real_post = settlement.accrual_post

    def posts_then_dies(**kwargs):
        real_post(**kwargs)
        raise RuntimeError("connection lost before commit")

    monkeypatch.setattr(settlement, "accrual_post", posts_then_dies)
    failed = world.night()

    assert failed.status == AttributionRun.Status.FAILED
    assert "connection lost" in failed.errors[0]["message"]
    assert not JournalEntry.objects.exists()  # the entry went with the rest of the transaction
    assert not AttributionAmount.objects.exists()
    assert not AttributedGeneration.objects.filter(pool_micros__isnull=False).exists()
    assert not Period.objects.filter(day=DAY, status=Period.Status.CLOSED).exists()  # a failed day stays open

    monkeypatch.undo()
    resumed = world.night()

    assert resumed.status == AttributionRun.Status.COMPLETED
    assert resumed.chunks_scored == 0  # the scores were kept; only the settlement was redone
    assert len(accrual_entries(scene["program"])) == 1
    _day_is_consistent(scene["program"], DAY)
    assert Period.objects.get(day=DAY).is_closed


def test_a_late_generation_is_attributed_into_the_next_open_day_visibly(world, scene):
    world.night()
    day_entry = accrual_entries(scene["program"])[0]
    day_detail = list(Accrual.objects.filter(journal_entry=day_entry).values_list("contributor_id", "work_id",
                                                                                  "amount_micros"))
    late = world.generation(scene["version"], "river river", revenue_micros=50_000, when=at(DAY, 23, 59))
    on_time = world.generation(scene["version"], "dragon", revenue_micros=20_000, day=NEXT)

    run = world.night(NEXT)

    assert (run.late_generation_count, run.generation_count) == (1, 2)
    slot = AttributedGeneration.objects.get(generation=late)
    assert (slot.day, slot.late) == (NEXT, True)
    assert AttributedGeneration.objects.get(generation=on_time).late is False
    assert set(Attribution.objects.filter(generation=late).values_list("day", flat=True)) == {NEXT}
    # the closed day's entry is untouched; the late revenue is in the next day's pool
    assert accrual_entries(scene["program"]) == [day_entry]
    assert list(Accrual.objects.filter(journal_entry=day_entry).values_list(
        "contributor_id", "work_id", "amount_micros")) == day_detail
    assert len(accrual_entries(scene["program"], NEXT)) == 1
    assert AttributionSettlement.objects.get(day=NEXT).pool_micros == (50_000 + 20_000) * 2_000 // 10_000
    assert AttributionSettlement.objects.get(day=NEXT).late_generation_count == 1
    listed = list(late_generation_list(day=NEXT))
    assert [(g.pk, g.accrual_day) for g in listed] == [(late.pk, NEXT)]
    assert listed[0].generated_at.date() == DAY
    _day_is_consistent(scene["program"], NEXT)


def test_generations_added_to_a_posted_open_day_are_corrected_by_a_reversal_and_a_new_entry(world, scene):
    world.night(close_period=False)
    [original] = accrual_entries(scene["program"])
    added = world.generation(scene["version"], "ocean", revenue_micros=99_999)

    run = world.night(close_period=False)

    assert [p["outcome"] for p in run.programs] == ["corrected"]
    entries = accrual_entries(scene["program"])
    assert len(entries) == 2
    assert entries[1].idempotency_key.endswith(":v2")
    reversal = JournalEntry.objects.get(reverses=original)
    assert reversal.kind == JournalEntry.Kind.REVERSAL
    assert sorted(reversal.postings.values_list("amount_micros", flat=True)) == sorted(
        -m for m in original.postings.values_list("amount_micros", flat=True))
    settlement = AttributionSettlement.objects.get(program=scene["program"], day=DAY)
    assert (settlement.corrections, settlement.generation_count) == (1, 8)
    assert settlement.pool_micros == (sum(g.revenue_micros for g in scene["gens"]) + 99_999) * 2_000 // 10_000
    assert Attribution.objects.filter(generation=added, settled__amount_micros__gt=0).exists()
    _day_is_consistent(scene["program"], DAY)
    assert owed(scene["alice"]) + owed(scene["bob"]) == settlement.expense_micros


def test_versions_without_a_program_or_an_index_are_skipped_and_their_generations_wait(world, scene):
    from attribution.index_services import attribution_index_build
    from tests.royalties.ledger.factories import make_ai_model

    unindexed = world.version(scene["ai_model"], scene["works"], label="v2", build=False)
    no_program = world.version(make_ai_model("orphan"), scene["works"], label="v1")
    waiting = world.generation(unindexed, "river", revenue_micros=30_000)
    orphan = world.generation(no_program, "river", revenue_micros=30_000)

    run = world.night()

    assert run.status == AttributionRun.Status.COMPLETED  # the rest of the day went through
    reasons = {s["model_version_id"]: s for s in run.skipped}
    assert "no attribution index" in reasons[unindexed.pk]["reason"]
    assert "has no royalty program" in reasons[no_program.pk]["reason"]
    assert reasons[unindexed.pk]["generations"] == reasons[no_program.pk]["generations"] == 1
    for gen in (waiting, orphan):
        gen.refresh_from_db()
        assert gen.attributed_at is None
        assert not AttributedGeneration.objects.filter(generation=gen).exists()

    attribution_index_build(model_version=unindexed, actor_label="test")
    later = world.night(NEXT)

    # the generation that waited for its index is attributed, late, into the next open day
    assert AttributedGeneration.objects.get(generation=waiting).day == NEXT
    assert later.late_generation_count == 1
    assert AttributionSettlement.objects.get(day=NEXT).pool_micros == 30_000 * 2_000 // 10_000
    assert [s["model_version_id"] for s in later.skipped] == [no_program.pk]
    assert later.skipped[0]["late"] == 1


def test_a_revenue_share_leaves_generations_in_another_currency_unattributed(world, scene):
    euro = world.generation(scene["version"], "river", revenue_micros=1_000_000, currency="EUR")

    run = world.night()

    [skip] = run.skipped
    assert skip["generations"] == 1
    assert "EUR" in skip["reason"]
    assert "USD" in skip["reason"]
    assert not AttributedGeneration.objects.filter(generation=euro).exists()
    assert AttributionSettlement.objects.get().pool_micros == sum(
        g.revenue_micros for g in scene["gens"]) * 2_000 // 10_000
