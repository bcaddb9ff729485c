"""Holds move owed money out of reach of payouts and back, whole, once."""

from __future__ import annotations

import datetime as dt

import pytest

from royalties.ledger.errors import LedgerValidationError, ReversalError
from royalties.ledger.models import JournalEntry
from royalties.ledger.selectors import contributor_held_balance, contributor_payable_balance, hold_list
from royalties.ledger.services import accrual_post, hold_place, hold_release
from tests.royalties.ledger.factories import make_work

pytestmark = pytest.mark.django_db

DAY = dt.date(2024, 3, 1)


@pytest.fixture
def owed(program, contributors):
    x = contributors[0]
    accrual_post(program=program, period=DAY, allocations=[(x.pk, make_work().pk, 1_000_000, 3, 0)],
                 expense_total_micros=1_000_000)
    return x


def test_a_hold_moves_money_from_payable_to_hold_and_release_moves_it_back(owed, finance_user):
    hold = hold_place(contributor=owed, currency="USD", amount_micros=400_000, reason="ownership dispute #12",
                      idempotency_key="hold:dispute:12", created_by=finance_user, period=DAY)

    assert contributor_payable_balance(contributor=owed, currency="USD") == 600_000
    assert contributor_held_balance(contributor=owed, currency="USD") == 400_000
    assert list(hold_list(contributor=owed)) == [hold]
    assert hold.metadata["reason"] == "ownership dispute #12"

    release = hold_release(hold_entry=hold, reason="dispute resolved", created_by=finance_user, period=DAY)

    assert release.kind == JournalEntry.Kind.HOLD_RELEASE
    assert release.reverses_id == hold.pk
    assert contributor_payable_balance(contributor=owed, currency="USD") == 1_000_000
    assert contributor_held_balance(contributor=owed, currency="USD") == 0
    assert list(hold_list(contributor=owed)) == []
    assert list(hold_list(contributor=owed, open_only=False)) == [hold]
    # Releasing again is the same release, not a second one.
    assert hold_release(hold_entry=hold, reason="again", period=DAY).pk == release.pk


def test_one_cannot_hold_more_than_is_owed(owed):
    with pytest.raises(LedgerValidationError, match="exceeds the payable balance 1000000") as exc:
        hold_place(contributor=owed, currency="USD", amount_micros=1_000_001, reason="r", idempotency_key="h")
    assert exc.value.field == "amount_micros"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"amount_micros": 0}, "amount_micros"), ({"reason": " "}, "reason"), ({"currency": "dollars"}, "currency")],
)
def test_bad_hold_input_names_the_field(owed, kwargs, field):
    params = {"contributor": owed, "currency": "USD", "amount_micros": 5, "reason": "r", "idempotency_key": "h",
              **kwargs}
    with pytest.raises(LedgerValidationError) as exc:
        hold_place(**params)
    assert exc.value.field == field


def test_only_hold_entries_can_be_released_and_a_reason_is_required(owed):
    accrual = JournalEntry.objects.get(kind="accrual")
    with pytest.raises(LedgerValidationError, match="must be a hold entry"):
        hold_release(hold_entry=accrual, reason="x")
    hold = hold_place(contributor=owed, currency="USD", amount_micros=5, reason="r", idempotency_key="h", period=DAY)
    with pytest.raises(ReversalError, match="reason"):
        hold_release(hold_entry=hold, reason="")
