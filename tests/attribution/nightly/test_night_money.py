"""The night's money: one balanced entry per (program, day), amounts that add up exactly at every level,
and the policy's edge cases through the whole job (hand-computed figures)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.models import Sum

from attribution.models import AttributedGeneration, Attribution, AttributionRun, AttributionSettlement, Generation
from attribution.nightly.selectors import attribution_totals_by_work
from royalties.ledger.models import Accrual, Period, Posting
from royalties.ledger.selectors import accrual_attributed_by_work
from tests.attribution.nightly.conftest import DAY, accrual_entries, owed

TEXTS = {
    "river": "a quiet river runs through the old forest below the mountain",
    "ocean": "the ocean storm broke over the harbor and the city beyond",
    "dragon": "a dragon sleeps in the castle garden through the winter",
    "desert": "wind crosses the empty desert under a pale sky",
}


def test_a_night_posts_one_balanced_entry_whose_amounts_add_up_at_every_level(world):
    # given: three owners (one work co-owned 60/40), four works, eleven generations of assorted revenue
    alice, bob, carol = world.contributor("Alice"), world.contributor("Bob"), world.contributor("Carol")
    river = world.work(TEXTS["river"], alice)
    ocean = world.work(TEXTS["ocean"], {alice: 6_000, bob: 4_000})
    dragon = world.work(TEXTS["dragon"], bob)
    desert = world.work(TEXTS["desert"], carol)
    ai_model, program = world.program(pool_bps=2_000, baseline_bps=1_000, top_k=3, min_share=Decimal("0.1"))
    version = world.version(ai_model, [river, ocean, dragon, desert])
    outputs = ["river forest", "ocean storm city", "dragon castle winter", "river ocean dragon", "mountain river",
               "harbor storm", "garden dragon ocean", "nothing at all", "desert wind river", "city city city",
               "forest ocean garden desert"]
    revenues = [12_345, 7_777, 100_001, 3, 55_555, 9_999, 31_337, 42_000, 1_000_003, 77, 8_888]
    gens = [world.generation(version, text, revenue_micros=r) for text, r in zip(outputs, revenues, strict=True)]

    # when
    run = world.night()

    # then: the run finished, scored every chunk, and closed the day
    assert run.status == AttributionRun.Status.COMPLETED, run.errors
    assert (run.generation_count, run.chunks_scored, run.chunks_skipped) == (len(gens), 4, 0)
    assert Period.objects.get(day=DAY).is_closed
    [entry] = accrual_entries(program)
    pool = sum(revenues) * 2_000 // 10_000
    postings = list(Posting.objects.filter(entry=entry).values_list("amount_micros", flat=True))
    assert sum(postings) == 0  # balanced
    expense = max(postings)  # the one debit: the program's royalty expense
    accruals = Accrual.objects.filter(journal_entry=entry)
    assert expense == accruals.aggregate(s=Sum("amount_micros"))["s"] == pool  # every work is owned: all of it
    # the attribution rows carry exactly the attributed part, work by work, as the ledger says
    attributed = Attribution.objects.filter(day=DAY).aggregate(s=Sum("settled__amount_micros"))["s"]
    assert attributed == accruals.aggregate(s=Sum("attributed_micros"))["s"]
    assert attribution_totals_by_work(program=program, day=DAY) == accrual_attributed_by_work(program=program, day=DAY)
    # each generation's pool adds up to the day's pool, and what it paid to works to its attributed pool
    slots = AttributedGeneration.objects.filter(day=DAY)
    assert slots.aggregate(s=Sum("pool_micros"))["s"] == pool
    for slot in slots:
        paid = Attribution.objects.filter(generation_id=slot.generation_id).aggregate(
            s=Sum("settled__amount_micros"))["s"]
        assert paid == (None if slot.to_baseline else slot.attributed_pool_micros)
    assert slots.get(generation=gens[7]).to_baseline  # "nothing at all": no positive score
    # the co-owned work's money is split 60/40 between its owners, to the micro-unit
    ocean_rows = dict(accruals.filter(work=ocean).values_list("contributor_id", "amount_micros"))
    ocean_total = sum(ocean_rows.values())
    assert abs(ocean_rows[alice.pk] - ocean_total * 6_000 / 10_000) < 1
    assert ocean_rows[alice.pk] + ocean_rows[bob.pk] == ocean_total
    # balances are what the detail says; nothing was lost between the pool and the payables
    assert owed(alice) + owed(bob) + owed(carol) == pool
    for person in (alice, bob, carol):
        assert owed(person) == accruals.filter(contributor=person).aggregate(s=Sum("amount_micros"))["s"]
    assert not Generation.objects.filter(attributed_at__isnull=True).exists()
    settlement = AttributionSettlement.objects.get(program=program, day=DAY)
    assert (settlement.journal_entry_id, settlement.pool_micros, settlement.expense_micros) == (entry.pk, pool, pool)


def test_the_same_money_as_the_policy_specification(world):
    """The night's amounts equal the ledger's plain-loop reference policy fed from the same rows (read by the
    ORM here, not by the job's SQL), row for row: the job loses, duplicates or misroutes nothing."""
    from attribution.models import ManifestEntry
    from contributors.models import Ownership
    from royalties.ledger.policy import PolicyTerms
    from royalties.ledger.policy_reference import royalty_compute_reference
    from royalties.ledger.selectors import program_terms_for

    people = [world.contributor() for _ in range(3)]
    texts = [*TEXTS.values(), "storm over the winter harbor", "a city garden by the river"]
    works = [world.work(t, {people[i % 3]: 7_000, people[(i + 1) % 3]: 3_000} if i % 2 else people[i % 3])
             for i, t in enumerate(texts)]
    ai_model, program = world.program(pool_bps=3_333, baseline_bps=1_500, top_k=2)
    v1 = world.version(ai_model, works[:4], label="v1")
    v2 = world.version(ai_model, works, label="v2")
    words = ["river", "ocean", "dragon", "storm", "city", "garden", "winter", "harbor", "forest", "zzz"]
    for i in range(23):
        text = " ".join(words[(i * j) % len(words)] for j in range(1, 1 + i % 4))
        world.generation(v1 if i % 3 else v2, text, revenue_micros=1_000 + 7_919 * i)

    run = world.night(chunk_size=5)

    assert run.status == AttributionRun.Status.COMPLETED, run.errors
    slots = AttributedGeneration.objects.filter(day=DAY).select_related("generation")
    reference = royalty_compute_reference(
        terms=PolicyTerms.from_terms(program_terms_for(program=program, day=DAY)),
        generations=[(s.generation_id, s.generation.model_version_id, s.generation.revenue_micros) for s in slots],
        attributions=list(Attribution.objects.values_list("generation_id", "work_id", "score")),
        manifest=list(ManifestEntry.objects.values_list("model_version_id", "work_id")),
        ownership=list(Ownership.objects.values_list("work_id", "contributor_id", "bps")),
    )
    [entry] = accrual_entries(program)
    booked = {(a.contributor_id, a.work_id): (a.amount_micros, a.attributed_micros, a.baseline_micros,
                                              a.generation_count)
              for a in Accrual.objects.filter(journal_entry=entry)}
    assert booked == {k: v for k, v in reference["accruals"].items() if v[0] or v[3]}
    paid = {(a.generation_id, a.work_id): a.settled.amount_micros
            for a in Attribution.objects.filter(settled__isnull=False).select_related("settled")}
    assert paid == reference["attributions"]
    assert AttributionSettlement.objects.get(program=program).expense_micros == reference["expense"]


def test_a_single_work_takes_the_whole_pool(world):
    alice = world.contributor()
    river = world.work(TEXTS["river"], alice)
    ai_model, _ = world.program(pool_bps=2_000, baseline_bps=1_000)
    version = world.version(ai_model, [river])
    for revenue in (10_000, 20_000, 30_001):
        world.generation(version, "river", revenue_micros=revenue)

    world.night()

    # 60,001 micro-units of revenue: a 20% pool floors to 12,000, all of it the one work's owner's
    assert owed(alice) == 12_000
    assert Accrual.objects.get().baseline_micros == 1_200


def test_co_owners_split_by_basis_points_with_largest_remainder(world):
    alice, bob = world.contributor(), world.contributor()
    ocean = world.work(TEXTS["ocean"], {alice: 6_000, bob: 4_000})
    ai_model, _ = world.program(pool_bps=2_000, baseline_bps=1_000)
    version = world.version(ai_model, [ocean])
    world.generation(version, "ocean storm", revenue_micros=50_005)

    world.night()

    # pool 10,001 = baseline 1,000 + attributed 9,001; 9,001 x 60% = 5,400.6 -> 5,401 (largest remainder)
    assert (owed(alice), owed(bob)) == (6_001, 4_000)
    rows = {a.contributor_id: a for a in Accrual.objects.all()}
    assert (rows[alice.pk].attributed_micros, rows[bob.pk].attributed_micros) == (5_401, 3_600)
    assert (rows[alice.pk].ownership_bps, rows[bob.pk].ownership_bps) == (6_000, 4_000)


def test_a_generation_with_no_positive_score_pays_the_baseline(world):
    alice, bob = world.contributor(), world.contributor()
    river, dragon = world.work(TEXTS["river"], alice), world.work(TEXTS["dragon"], bob)
    ai_model, _ = world.program(pool_bps=2_000, baseline_bps=1_000)
    version = world.version(ai_model, [river, dragon])
    world.generation(version, "river", revenue_micros=10_000)
    lost = world.generation(version, "words the model's vocabulary never saw", revenue_micros=10_000)

    world.night()

    # pool 4,000: baseline 400, each generation's attributed pool 1,800; the second's goes to the baseline,
    # which (2,200) is split over the manifest's two works
    assert (owed(alice), owed(bob)) == (1_800 + 1_100, 1_100)
    assert Attribution.objects.filter(generation=lost).count() == 2  # both works scored 0...
    assert not Attribution.objects.filter(generation=lost, settled__isnull=False).exists()  # ...and none was kept
    assert AttributedGeneration.objects.get(generation=lost).to_baseline is True


def test_an_opted_out_work_earns_from_versions_trained_before_the_opt_out_only(world):
    from contributors.services import work_opt_out

    alice, bob = world.contributor(), world.contributor()
    river, dragon = world.work(TEXTS["river"], alice), world.work(TEXTS["dragon"], bob)
    ai_model, _ = world.program(pool_bps=2_000, baseline_bps=1_000)
    before = world.version(ai_model, [river, dragon], label="before")
    work_opt_out(work=river, actor=None, requested_by=alice, reason="no more training")
    after = world.version(ai_model, [dragon], label="after")  # later manifests leave it out
    world.generation(before, "river", revenue_micros=10_000)
    world.generation(after, "river", revenue_micros=10_000)

    world.night()

    # "before": baseline 200 over both works, 1,800 attributed to the river; "after": the river is not in its
    # index, so its generation finds nothing and its whole 2,000 goes to its only work
    assert owed(alice) == 100 + 1_800
    assert owed(bob) == 100 + 2_000
    assert not Attribution.objects.filter(generation__model_version=after, work=river).exists()


def test_a_contributor_without_a_payout_account_still_accrues(world):
    from contributors.models import Contributor
    from payouts.models import ConnectedAccount

    alice = world.contributor()
    assert alice.payout_status == Contributor.PayoutStatus.NONE
    assert not ConnectedAccount.objects.filter(contributor=alice).exists()
    river = world.work(TEXTS["river"], alice)
    ai_model, _ = world.program(pool_bps=1_000, baseline_bps=0)
    world.generation(world.version(ai_model, [river]), "river", revenue_micros=1_000_000)

    world.night()

    assert owed(alice) == 100_000  # kept on the payable account until they onboard: nothing is lost


def test_a_verbatim_copy_is_credited_and_flagged_even_with_no_score(world):
    alice, bob = world.contributor(), world.contributor()
    prose = ("all happy families are alike but every unhappy family is unhappy in its own way said the old "
             "novelist to the young clerk who wrote it down")
    copied = world.work(prose, alice)  # none of the keyword model's vocabulary: it never scores
    river = world.work(TEXTS["river"], bob)
    ai_model, _ = world.program(pool_bps=2_000, baseline_bps=0)
    version = world.version(ai_model, [copied, river])
    passage = "every unhappy family is unhappy in its own way said the old novelist to the young clerk"
    output = f"by the river she wrote: {passage}."
    gen = world.generation(version, output, revenue_micros=10_000)

    world.night()

    row = Attribution.objects.get(generation=gen, work=copied)
    assert row.copied
    assert row.settled.amount_micros > 0
    [span] = row.copy_spans
    start, end = span["generation_span"]
    assert output[start:end] == passage
    # the copy is scored as high as the best work, so the two split the generation's 2,000 evenly
    assert owed(alice) == owed(bob) == 1_000
    assert not Attribution.objects.get(generation=gen, work=river).copied


def test_the_database_refuses_to_rewrite_what_the_night_posted(world):
    alice = world.contributor()
    river = world.work(TEXTS["river"], alice)
    ai_model, program = world.program()
    world.generation(world.version(ai_model, [river]), "river", revenue_micros=10_000)
    world.night()
    [entry] = accrual_entries(program)

    for sql in ("UPDATE ledger_accrual SET amount_micros = amount_micros + 1, "
                "attributed_micros = attributed_micros + 1",
                "UPDATE ledger_posting SET amount_micros = amount_micros * 2"):
        # A savepoint per statement: PostgreSQL aborts the enclosing transaction on the refusal.
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    assert owed(alice) == 2_000
    assert Accrual.objects.get(journal_entry=entry).amount_micros == 2_000
