"""Corrections are reversals: the exact negation of an entry, linked to it, at most once."""

from __future__ import annotations

import datetime as dt

import pytest

from royalties.ledger.errors import LedgerValidationError, PeriodClosedError, ReversalError
from royalties.ledger.models import JournalEntry, Posting
from royalties.ledger.selectors import account_balance, contributor_payable_balance
from royalties.ledger.services import (
    PostingLine,
    account_get_or_create,
    journal_entry_post,
    journal_entry_reverse,
    period_close,
)

pytestmark = pytest.mark.django_db

DAY = dt.date(2024, 3, 1)
NEXT = DAY + dt.timedelta(days=1)


@pytest.fixture
def setup(program, contributors):
    expense = account_get_or_create(kind="royalty_expense", currency="USD", program=program)
    payable = account_get_or_create(kind="contributor_payable", currency="USD", contributor=contributors[0])
    entry = journal_entry_post(kind="adjustment", period=DAY, idempotency_key="orig", memo="",
                               lines=[PostingLine(expense, 1234), PostingLine(payable, -1234)])
    return expense, payable, entry


def test_a_reversal_negates_every_posting_and_balances_return_to_zero(setup, finance_user):
    expense, payable, entry = setup

    reversal = journal_entry_reverse(entry=entry, memo="wrong amount", created_by=finance_user)

    assert reversal.kind == JournalEntry.Kind.REVERSAL
    assert reversal.reverses_id == entry.pk
    assert reversal.idempotency_key == f"reversal:{entry.pk}"
    assert sorted(reversal.postings.values_list("account_id", "amount_micros")) == sorted(
        (a, -m) for a, m in entry.postings.values_list("account_id", "amount_micros")
    )
    assert account_balance(account=expense) == 0
    assert contributor_payable_balance(contributor=payable.contributor_id, currency="USD") == 0
    # The original is untouched: history keeps both.
    assert sorted(Posting.objects.filter(entry=entry).values_list("amount_micros", flat=True)) == [-1234, 1234]


def test_reversing_twice_returns_the_same_reversal_and_a_second_key_is_refused(setup):
    _, _, entry = setup
    first = journal_entry_reverse(entry=entry)

    assert journal_entry_reverse(entry=entry).pk == first.pk
    with pytest.raises(ReversalError, match=f"already reversed by entry #{first.pk}"):
        journal_entry_reverse(entry=entry, idempotency_key="another-key")
    assert JournalEntry.objects.filter(reverses=entry).count() == 1


def test_a_reversal_cannot_itself_be_reversed(setup):
    _, _, entry = setup
    reversal = journal_entry_reverse(entry=entry)

    with pytest.raises(ReversalError, match="is itself a reversal; post a new entry"):
        journal_entry_reverse(entry=reversal)


def test_the_reversal_of_a_closed_day_goes_into_an_open_period(setup):
    expense, _, entry = setup
    period_close(day=DAY)

    with pytest.raises(PeriodClosedError, match=f"period {DAY} was closed"):
        journal_entry_reverse(entry=entry)
    reversal = journal_entry_reverse(entry=entry, period=NEXT, memo="found after close")

    assert reversal.period.day == NEXT
    assert account_balance(account=expense, as_of=DAY) == 1234  # the closed day still reads as it was
    assert account_balance(account=expense, as_of=NEXT) == 0


def test_posting_a_reversal_by_hand_must_negate_exactly(setup):
    expense, payable, entry = setup

    with pytest.raises(LedgerValidationError, match="must negate exactly the postings"):
        journal_entry_post(kind="reversal", period=DAY, idempotency_key="r", memo="", reverses=entry,
                           lines=[PostingLine(expense, -1000), PostingLine(payable, 1000)])
    with pytest.raises(LedgerValidationError, match="must name the entry it reverses"):
        journal_entry_post(kind="reversal", period=DAY, idempotency_key="r", memo="",
                           lines=[PostingLine(expense, -1234), PostingLine(payable, 1234)])
    with pytest.raises(LedgerValidationError, match="only hold_release, reversal entries may reverse"):
        journal_entry_post(kind="adjustment", period=DAY, idempotency_key="r", memo="", reverses=entry,
                           lines=[PostingLine(expense, -1234), PostingLine(payable, 1234)])
    manual = journal_entry_post(kind="reversal", period=DAY, idempotency_key="r", memo="", reverses=entry,
                                lines=[PostingLine(payable, 1234), PostingLine(expense, -1234)])
    assert manual.reverses_id == entry.pk


def test_only_a_hold_can_be_released(setup):
    _, _, entry = setup
    with pytest.raises(ReversalError, match="only a hold can be released"):
        journal_entry_reverse(entry=entry, kind="hold_release")
