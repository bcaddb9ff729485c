"""Drafting a run from the ledger: who is paid, who is left out and why, the sub-cent remainder, the threshold."""

from __future__ import annotations

import datetime as dt

import pytest

from audit.models import AuditEvent
from payouts.errors import MakerCheckerError, PayoutValidationError
from payouts.models import Payout, PayoutExclusion, PayoutRun
from payouts.services import payout_run_create, payout_run_threshold
from payouts.services.runs import utc_today
from royalties.ledger.services import hold_place
from tests.payouts.conftest import DAY
from tests.royalties.ledger.factories import make_program


def test_a_draft_pays_ready_contributors_and_lists_everyone_left_out_with_the_reason(
        accrue, make_ready_contributor, make_contributor, finance_user):
    # given: six contributors owed money, in every situation the draft must tell apart
    paid = make_ready_contributor("Paid")
    small = make_ready_contributor("Small")
    no_account = make_contributor("No account")
    pending = make_ready_contributor("Pending", state="pending")
    held = make_ready_contributor("Held")
    also_paid = make_ready_contributor("Also paid")
    accrue({paid: 12_345_678, small: 9_999_999, no_account: 50_000_000, pending: 20_000_000, held: 30_000_000,
            also_paid: 10_000_000})
    hold_place(contributor=held, currency="USD", amount_micros=1_000_000, reason="dispute", idempotency_key="h1")

    # when
    run = payout_run_create(currency="usd", created_by=finance_user, note="May royalties")

    # then: the run pays two contributors, floored to whole cents
    assert run.status == PayoutRun.Status.DRAFT
    assert (run.currency, run.as_of, run.threshold_minor) == ("USD", utc_today(), 1_000)
    payouts = {p.contributor_id: p for p in run.payouts.all()}
    assert set(payouts) == {paid.pk, also_paid.pk}
    first = payouts[paid.pk]
    assert (first.amount_minor, first.amount_micros, first.remainder_micros) == (1_234, 12_340_000, 5_678)
    assert first.balance_micros == 12_345_678
    assert (first.status, first.attempt) == ("pending", 1)
    assert first.stripe_account_id == paid.connected_account.stripe_account_id
    assert payouts[also_paid.pk].amount_minor == 1_000  # exactly at the threshold: paid
    assert (run.payout_count, run.total_minor, run.remainder_micros) == (2, 2_234, 5_678)
    # and everyone else is listed with the reason their balance carries forward
    reasons = {e.contributor_id: e for e in run.exclusions.all()}
    assert {cid: e.reason for cid, e in reasons.items()} == {
        small.pk: "below_threshold", no_account.pk: "no_account", pending.pk: "account_not_ready",
        held.pk: "on_hold",
    }
    assert reasons[small.pk].balance_micros == 9_999_999
    assert "9.99 USD is below the threshold of 10.00 USD" in reasons[small.pk].detail
    assert "1.000000 USD on hold" in reasons[held.pk].detail
    assert run.excluded_count == 4
    event = AuditEvent.objects.get(action="payout_run.create", object_id=str(run.pk))
    assert event.actor == finance_user
    assert event.after["excluded"] == {"below_threshold": 1, "no_account": 1, "account_not_ready": 1, "on_hold": 1}


def test_a_contributor_whose_payout_in_another_run_is_unfinished_is_left_out(
        accrue, make_ready_contributor, finance_user):
    ada = make_ready_contributor()
    accrue({ada: 20_000_000})
    first = payout_run_create(currency="USD", created_by=finance_user)

    second = payout_run_create(currency="USD", created_by=finance_user)

    assert second.payout_count == 0
    exclusion = second.exclusions.get()
    assert exclusion.reason == PayoutExclusion.Reason.IN_OPEN_PAYOUT
    assert f"in run #{first.pk} is pending" in exclusion.detail


def test_balances_count_only_up_to_the_cut_off_day(accrue, make_ready_contributor, finance_user):
    ada = make_ready_contributor()
    accrue({ada: 15_000_000}, day=DAY)
    accrue({ada: 40_000_000}, day=DAY + dt.timedelta(days=1))

    run = payout_run_create(currency="USD", created_by=finance_user, as_of=DAY)

    assert run.payouts.get().amount_minor == 1_500


def test_the_threshold_is_the_highest_in_force_in_the_currency_unless_a_setting_fixes_it(program, settings, db):
    make_program(payout_threshold_minor=2_500)
    make_program(payout_threshold_minor=99_999, currency="EUR")

    assert payout_run_threshold(currency="USD", as_of=DAY)[0] == 2_500
    assert payout_run_threshold(currency="EUR", as_of=DAY)[0] == 99_999
    assert payout_run_threshold(currency="GBP", as_of=DAY) == (1, "no royalty program pays in GBP on 2024-05-01: "
                                                                   "one minor unit")
    settings.ROYALTIES_PAYOUT_THRESHOLD_MINOR = 500
    assert payout_run_threshold(currency="USD", as_of=DAY) == (500, "setting ROYALTIES_PAYOUT_THRESHOLD_MINOR")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"currency": "dollars"}, "currency"),
        ({"currency": ""}, "currency"),
        ({"as_of": utc_today() + dt.timedelta(days=1)}, "as_of"),
        ({"as_of": "2024-05-01"}, "as_of"),
        ({"note": 5}, "note"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(accrue, make_ready_contributor, finance_user, kwargs, field):
    accrue({make_ready_contributor(): 20_000_000})

    with pytest.raises(PayoutValidationError) as exc:
        payout_run_create(**{"currency": "USD", "created_by": finance_user, **kwargs})

    assert exc.value.field == field
    assert not PayoutRun.objects.exists()
    assert not Payout.objects.exists()


def test_only_finance_users_draft_runs(contributor_user, catalog_admin_user, db):
    for user in (contributor_user, catalog_admin_user):
        with pytest.raises(MakerCheckerError) as exc:
            payout_run_create(currency="USD", created_by=user)
        assert exc.value.field == "created_by"
    with pytest.raises(PayoutValidationError):
        payout_run_create(currency="USD", created_by=None)
    assert not PayoutRun.objects.exists()


def test_a_negative_balance_is_left_out_as_nothing_owed(accrue, make_ready_contributor, finance_user, program):
    from royalties.ledger.models import Account, JournalEntry
    from royalties.ledger.services import PostingLine, account_get_or_create, journal_entry_post

    ada = make_ready_contributor()
    accrue({ada: 1_000_000})
    payable = account_get_or_create(kind=Account.Kind.CONTRIBUTOR_PAYABLE, currency="USD", contributor=ada)
    cash = account_get_or_create(kind=Account.Kind.CASH, currency="USD")
    journal_entry_post(kind=JournalEntry.Kind.ADJUSTMENT, period=DAY, idempotency_key="adj-1", memo="overpaid",
                       lines=[PostingLine(payable, 3_000_000), PostingLine(cash, -3_000_000)])

    run = payout_run_create(currency="USD", created_by=finance_user)

    exclusion = run.exclusions.get()
    assert (exclusion.reason, exclusion.balance_micros) == ("zero_balance", -2_000_000)
    assert "owes the platform 2.000000 USD" in exclusion.detail
