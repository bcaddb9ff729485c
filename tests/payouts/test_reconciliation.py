"""Reconciliation against what Stripe really holds: a clean run reconciles; each kind of disagreement is listed;
``manage.py reconcile_payouts RUN`` exits non-zero on any.

Disagreements are produced for real where they can be (a transfer made outside the run, a reversal whose
webhook never arrived); where only a bug could produce one, the test edits our own rows to stand in for it.
"""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from payouts import stripe_client
from payouts.models import Payout
from payouts.services import payout_run_create, payout_run_reconcile
from royalties.ledger.models import JournalEntry


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    monkeypatch.setattr(stripe_client, "_sleep", lambda seconds: None)


@pytest.fixture
def run(accrue, make_ready_contributor, finance_user, approve, execute):
    ada, bo = make_ready_contributor("Ada"), make_ready_contributor("Bo")
    accrue({ada: 12_345_678, bo: 30_000_000})
    run = payout_run_create(currency="USD", created_by=finance_user)
    approve(run)
    return execute(run)


def reconcile(run_id: int) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("reconcile_payouts", str(run_id), stdout=out, stderr=io.StringIO())
    except SystemExit as exc:
        return int(exc.code), out.getvalue()
    return 0, out.getvalue()


def test_a_clean_run_reconciles_and_the_command_exits_zero(run):
    code, out = reconcile(run.pk)

    assert code == 0
    assert "2 payouts, 2 transfers, 2 balance transactions, 0 mismatch(es)" in out
    assert "no mismatch" in out
    record = run.reconciliations.get()
    assert (record.mismatch_count, record.payouts_checked, record.transfers_checked) == (0, 2, 2)
    assert record.ran_by_label == "command:reconcile_payouts"


def test_a_transfer_in_the_group_that_no_payout_records_is_a_mismatch(run, make_ready_contributor):
    stray = make_ready_contributor("Stray")
    transfer = stripe_client.transfer_create(payout_id=424_242, amount_minor=777, currency="usd",
                                             destination=stray.connected_account.stripe_account_id,
                                             transfer_group=run.transfer_group)

    code, out = reconcile(run.pk)

    assert code == 1
    assert f"[transfer_without_payout] run transfer {transfer.id}: 777 usd" in out
    assert "metadata payout_id 424242" in out
    assert "1 mismatch(es)" in out


def test_a_reversal_whose_webhook_never_arrived_is_a_mismatch(run):
    payout = run.payouts.first()
    stripe_client.transfer_reversal_create(transfer_id=payout.stripe_transfer_id, key="test-reversal", amount_minor=100)

    result = payout_run_reconcile(run=run)

    assert [(m.code, m.payout_id) for m in result.mismatches] == [("reversal_mismatch", payout.pk)]
    assert "Stripe reversed 1000000 micro-units, the ledger returned 0" in result.mismatches[0].message


def test_every_kind_of_disagreement_is_listed(run, finance_user):
    ada_payout, bo_payout = run.payouts.order_by("id")
    # stand-ins for bugs: a paid payout pointing at a transfer Stripe never made, and one whose booking
    # says another amount than Stripe moved (rows edited directly: no service would write them)
    Payout.objects.filter(pk=ada_payout.pk).update(stripe_transfer_id="tr_1DoesNotExistAnywhere00000")
    Payout.objects.filter(pk=bo_payout.pk).update(amount_minor=2_999, amount_micros=29_990_000,
                                                  remainder_micros=10_000)

    result = payout_run_reconcile(run=run, actor=finance_user)

    codes = sorted((m.code, m.payout_id) for m in result.mismatches)
    assert codes == sorted([
        ("transfer_missing", ada_payout.pk),
        ("transfer_without_payout", None),  # Ada's real transfer is now recorded by no payout
        ("amount_mismatch", bo_payout.pk),
    ])
    assert run.reconciliations.get().mismatch_count == 3
    code, out = reconcile(run.pk)
    assert code == 1
    assert out.count("\n  [") == 3


def test_a_payout_paid_but_never_booked_and_a_booking_without_transfer_are_found(run):
    _ada_payout, bo_payout = run.payouts.order_by("id")
    # stand-in for a bug: Bo's payout left sending although Stripe made the transfer and the ledger booked it
    Payout.objects.filter(pk=bo_payout.pk).update(status="sending", stripe_transfer_id="", ledger_entry=None)

    result = payout_run_reconcile(run=run)

    codes = sorted(m.code for m in result.mismatches)
    assert codes == ["ledger_entry_without_transfer", "payout_unsettled"]
    assert JournalEntry.objects.filter(idempotency_key=f"payout:{bo_payout.pk}").exists()


def test_the_command_refuses_an_unknown_run(db):
    with pytest.raises(Exception, match="no such payout run"):
        call_command("reconcile_payouts", "999999")
