"""accrual_post / accrual_correct: one balanced entry per (program, day), explained to the micro-unit."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from royalties.ledger.checks import ledger_check
from royalties.ledger.errors import IdempotencyConflictError, LedgerValidationError, TermsError
from royalties.ledger.models import Account, Accrual, JournalEntry, Posting
from royalties.ledger.policy import PolicyTerms, royalty_compute
from royalties.ledger.selectors import (
    account_balance,
    accrual_attributed_by_work,
    accrual_entry_current,
    accrual_list,
    accrual_source,
    accrual_totals_by_month,
    accrual_totals_by_period,
    accrual_totals_by_program_period,
    accrual_totals_by_work,
    contributor_payable_balance,
    contributor_payable_balances,
    program_terms_for,
)
from royalties.ledger.services import accrual_correct, accrual_post, journal_entry_reverse, period_close
from royalties.ledger.services.common import utc_today
from tests.royalties.ledger.factories import make_contributor, make_work

pytestmark = pytest.mark.django_db

DAY = dt.date(2024, 3, 1)


@pytest.fixture
def catalog(contributors):
    x, y, _ = contributors
    works = [make_work() for _ in range(3)]
    return x, y, works


def allocations(x, y, works, scale=1):
    a, b, c = works
    return pd.DataFrame(
        [
            (x.pk, a.pk, 701_667 * scale, 2, 26_667 * scale),
            (x.pk, b.pk, 35_834 * scale, 1, 13_334 * scale),
            (y.pk, b.pk, 35_833 * scale, 1, 13_333 * scale),
            (y.pk, c.pk, 26_666 * scale, 0, 26_666 * scale),
        ],
        columns=["contributor_id", "work_id", "amount_micros", "generation_count", "baseline_micros"],
    )


def test_one_balanced_entry_one_credit_per_contributor_and_detail_per_work(program, catalog):
    x, y, works = catalog

    entry = accrual_post(program=program, period=DAY, allocations=allocations(x, y, works),
                         expense_total_micros=800_000, created_by_label="celery:nightly")

    assert entry.kind == JournalEntry.Kind.ACCRUAL
    assert entry.idempotency_key == f"accrual:{program.pk}:2024-03-01"
    assert entry.created_by_label == "celery:nightly"
    postings = {(p.account.kind, p.account.contributor_id): p.amount_micros
                for p in entry.postings.select_related("account")}
    assert postings == {
        ("royalty_expense", None): 800_000,
        ("contributor_payable", x.pk): -(701_667 + 35_834),  # aggregated: one posting per contributor
        ("contributor_payable", y.pk): -(35_833 + 26_666),
    }
    assert entry.accruals.count() == 4
    row = entry.accruals.get(contributor=x, work=works[0])
    assert (row.amount_micros, row.baseline_micros, row.attributed_micros, row.generation_count) == (
        701_667, 26_667, 675_000, 2)
    assert entry.metadata["terms_version"] == 1
    assert contributor_payable_balances(currency="USD") == {x.pk: 737_501, y.pk: 62_499}


def test_running_the_night_twice_posts_nothing_new(program, catalog):
    x, y, works = catalog
    first = accrual_post(program=program, period=DAY, allocations=allocations(x, y, works),
                         expense_total_micros=800_000)
    counts = (JournalEntry.objects.count(), Posting.objects.count(), Accrual.objects.count())

    # Same rows in another order, as tuples: the same content.
    rows = list(allocations(x, y, works).itertuples(index=False, name=None))[::-1]
    again = accrual_post(program=program, period=DAY, allocations=rows, expense_total_micros=800_000)

    assert again.pk == first.pk
    assert (JournalEntry.objects.count(), Posting.objects.count(), Accrual.objects.count()) == counts


def test_different_numbers_for_a_posted_day_are_a_conflict_not_a_second_entry(program, catalog):
    x, y, works = catalog
    accrual_post(program=program, period=DAY, allocations=allocations(x, y, works), expense_total_micros=800_000)

    with pytest.raises(IdempotencyConflictError, match="different content"):
        accrual_post(program=program, period=DAY, allocations=allocations(x, y, works, scale=2),
                     expense_total_micros=1_600_000)
    with pytest.raises(IdempotencyConflictError, match="use accrual_correct"):
        accrual_post(program=program, period=DAY, allocations=[], expense_total_micros=0)
    assert JournalEntry.objects.count() == 1


def test_a_day_that_accrues_nothing_posts_nothing(program):
    assert accrual_post(program=program, period=DAY, allocations=[], expense_total_micros=0) is None
    assert JournalEntry.objects.count() == 0


@pytest.mark.parametrize(
    ("mutate", "field", "message"),
    [
        (lambda df: df.assign(amount_micros=df["amount_micros"] * 1.0), "allocations.amount_micros",
         "must hold integers"),
        (lambda df: df.assign(baseline_micros=df["amount_micros"] + 1), "allocations.baseline_micros",
         "between 0 and amount_micros"),
        (lambda df: df.assign(generation_count=-1), "allocations.generation_count", ">= 0"),
        (lambda df: pd.concat([df, df.head(1)]), "allocations", "one row per"),
        (lambda df: df.drop(columns=["baseline_micros"]), "allocations", "lacks column"),
        (lambda df: df.assign(work_id=df["work_id"] + 999_999), "allocations.work_id", "do not exist"),
        (lambda df: df.assign(ownership_bps=10_001), "allocations.ownership_bps", "between 1 and 10000"),
        (lambda df: df.assign(contributor_id=df["contributor_id"] + 999_999), "contributor_id", "do not exist"),
    ],
)
def test_bad_allocations_name_the_column_and_write_nothing(program, catalog, mutate, field, message):
    x, y, works = catalog
    frame = mutate(allocations(x, y, works))
    with pytest.raises(LedgerValidationError, match=message) as exc:
        accrual_post(program=program, period=DAY, allocations=frame,
                     expense_total_micros=int(frame["amount_micros"].sum()))
    assert exc.value.field == field
    assert JournalEntry.objects.count() == 0
    assert Account.objects.count() == 0


def test_the_expense_total_is_a_control_total(program, catalog):
    x, y, works = catalog
    with pytest.raises(LedgerValidationError, match="sum to 800000 micros but expense_total_micros is 800001"):
        accrual_post(program=program, period=DAY, allocations=allocations(x, y, works),
                     expense_total_micros=800_001)


def test_a_day_before_the_program_has_terms_is_refused(program, catalog):
    x, y, works = catalog
    with pytest.raises(TermsError, match="no terms in force on 2019-12-31"):
        accrual_post(program=program, period=dt.date(2019, 12, 31), allocations=allocations(x, y, works),
                     expense_total_micros=800_000)


def test_correcting_an_open_day_reverses_and_reposts_in_that_day(program, catalog):
    x, y, works = catalog
    original = accrual_post(program=program, period=DAY, allocations=allocations(x, y, works),
                            expense_total_micros=800_000)

    corrected = accrual_correct(program=program, day=DAY, allocations=allocations(x, y, works, scale=2),
                                expense_total_micros=1_600_000, reason="late generations")

    assert corrected.idempotency_key == f"accrual:{program.pk}:2024-03-01:v2"
    assert original.reversed_by.period.day == DAY
    assert accrual_entry_current(program=program, day=DAY).pk == corrected.pk
    assert contributor_payable_balance(contributor=x, currency="USD") == 2 * 737_501
    # The detail nets out: the original rows, their negation, the new rows.
    totals = accrual_totals_by_work(contributor=x, period_from=DAY, period_to=DAY)
    assert totals == [
        {"work_id": works[0].pk, "amount_micros": 1_403_334, "baseline_micros": 53_334,
         "attributed_micros": 1_350_000, "generation_count": 2},
        {"work_id": works[1].pk, "amount_micros": 71_668, "baseline_micros": 26_668,
         "attributed_micros": 45_000, "generation_count": 1},
    ]
    # The same correction again changes nothing.
    again = accrual_correct(program=program, day=DAY, allocations=allocations(x, y, works, scale=2),
                            expense_total_micros=1_600_000, reason="late generations")
    assert again.pk == corrected.pk
    assert JournalEntry.objects.count() == 3


def test_correcting_a_closed_day_books_in_todays_period_and_keeps_the_day_in_the_detail(program, catalog):
    x, y, works = catalog
    accrual_post(program=program, period=DAY, allocations=allocations(x, y, works), expense_total_micros=800_000)
    period_close(day=DAY)
    expense = Account.objects.get(kind="royalty_expense")

    corrected = accrual_correct(program=program, day=DAY, allocations=allocations(x, y, works, scale=3),
                                expense_total_micros=2_400_000, reason="attribution index rebuilt")

    assert corrected.period.day == utc_today()
    assert account_balance(account=expense, as_of=DAY) == 800_000  # the closed day reads as it was closed
    assert account_balance(account=expense) == 2_400_000
    assert {row.period.day for row in accrual_list(contributor=x, period_from=DAY, period_to=DAY)} == {DAY}
    assert accrual_totals_by_period(contributor=x, period_from=DAY, period_to=DAY)[0]["amount_micros"] == 3 * 737_501


def test_correcting_to_nothing_only_reverses(program, catalog):
    x, y, works = catalog
    accrual_post(program=program, period=DAY, allocations=allocations(x, y, works), expense_total_micros=800_000)

    assert accrual_correct(program=program, day=DAY, allocations=[], expense_total_micros=0,
                           reason="generations were test traffic") is None
    assert accrual_entry_current(program=program, day=DAY) is None
    assert contributor_payable_balances(currency="USD") == {}


def test_statement_selectors_aggregate_days_into_months_and_only_show_ones_own_rows(program, catalog):
    x, y, works = catalog
    for day in (dt.date(2024, 3, 30), dt.date(2024, 3, 31), dt.date(2024, 4, 1)):
        accrual_post(program=program, period=day, allocations=allocations(x, y, works), expense_total_micros=800_000)

    months = accrual_totals_by_month(contributor=x, period_from=dt.date(2024, 3, 1), period_to=dt.date(2024, 4, 30))

    assert [(m["month"], m["work_id"], m["amount_micros"]) for m in months] == [
        (dt.date(2024, 3, 1), works[0].pk, 2 * 701_667), (dt.date(2024, 3, 1), works[1].pk, 2 * 35_834),
        (dt.date(2024, 4, 1), works[0].pk, 701_667), (dt.date(2024, 4, 1), works[1].pk, 35_834),
    ]
    assert all(row.contributor_id == x.pk for row in accrual_list(
        contributor=x, period_from=dt.date(2024, 3, 1), period_to=dt.date(2024, 4, 30)))
    assert accrual_list(contributor=make_contributor(), period_from=DAY, period_to=dt.date(2024, 4, 30)).count() == 0
    day_totals = accrual_totals_by_program_period(program=program, day=dt.date(2024, 4, 1))
    assert (day_totals["amount_micros"], day_totals["contributors"], day_totals["works"]) == (800_000, 2, 3)


def test_the_policy_output_posts_as_is_and_every_micro_unit_is_explained(program, contributors):
    x, y, z = contributors
    a, b, c = (make_work() for _ in range(3))
    generations = pd.DataFrame({"generation_id": [1, 2, 3], "model_version_id": [1, 1, 2],
                                "revenue_micros": [1_000_003, 2_999_999, 7]})
    attributions = pd.DataFrame({"generation_id": [1, 1, 2, 2, 3], "work_id": [a.pk, b.pk, b.pk, c.pk, c.pk],
                                 "score": [0.7, 0.2, 0.5, 0.5, 1e-9]})
    manifest = pd.DataFrame({"model_version_id": [1, 1, 1, 2], "work_id": [a.pk, b.pk, c.pk, c.pk]})
    ownership = pd.DataFrame({"work_id": [a.pk, b.pk, b.pk, b.pk, c.pk],
                              "contributor_id": [x.pk, x.pk, y.pk, z.pk, z.pk],
                              "bps": [10_000, 3_334, 3_333, 3_333, 10_000]})
    terms = PolicyTerms.from_terms(program_terms_for(program=program, day=DAY))
    result = royalty_compute(terms=terms, generations=generations, attributions=attributions, manifest=manifest,
                             ownership=ownership)

    entry = accrual_post(program=program, period=DAY, allocations=result.accruals,
                         expense_total_micros=result.expense_micros)

    assert result.expense_micros == result.pool_micros == 800_001  # 20% of 4,000,009, floored once
    assert sum(contributor_payable_balances(currency="USD").values()) == result.expense_micros
    for person in (x, y, z):
        detail = sum(r.amount_micros for r in accrual_list(contributor=person, period_from=DAY, period_to=DAY))
        assert detail == contributor_payable_balance(contributor=person, currency="USD")
    assert entry.accruals.get(contributor=y, work=b).ownership_bps == 3_333
    # Down to the generations: per work, the attribution rows' amounts are what the owners share.
    per_work = result.attributions.groupby("work_id")["amount_micros"].sum()
    assert accrual_attributed_by_work(program=program, day=DAY) == {w: int(v) for w, v in per_work.items() if v}
    source = accrual_source(accrual=entry.accruals.get(contributor=y, work=b))
    assert (source.ai_model_id, source.work_id, source.day, source.ownership_bps) == (
        program.ai_model_id, b.pk, DAY, 3_333)
    # The reversal negates the detail too, keeping each row's ownership share.
    reversal = journal_entry_reverse(entry=entry)
    assert set(reversal.accruals.values_list("ownership_bps", flat=True)) == {10_000, 3_334, 3_333}
    assert ledger_check().ok
