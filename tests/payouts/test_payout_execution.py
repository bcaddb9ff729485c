"""Executing a run against the fake Stripe server: one transfer per payout whatever happens, booked only once
Stripe confirmed it; refusals fail the payout with Stripe's words and book nothing; retries use a new key.

Only our own seams are patched: ``stripe_client._sleep`` (backoff delays recorded, not slept) and
``execution._pause_after_transfer`` (where a crash between Stripe's answer and our commit is injected).
"""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from payouts import stripe_client
from payouts.errors import PayoutRunStateError, PayoutValidationError
from payouts.models import Payout, PayoutRun
from payouts.services import execution as execution_module
from payouts.services import (
    payout_run_create,
    payout_run_release_failed,
    payout_run_resume,
    payout_run_retry_failed,
)
from royalties.ledger.models import Account, JournalEntry
from royalties.ledger.selectors import account_balance, contributor_payable_balance
from royalties.ledger.services import hold_place


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    delays: list[float] = []
    monkeypatch.setattr(stripe_client, "_sleep", delays.append)
    return delays


def transfer_posts(fake):
    return [r for r in fake.request_log if r["method"] == "POST" and r["path"] == "/v1/transfers"]


def stripe_transfers(run):
    return list(stripe_client.transfer_list(transfer_group=run.transfer_group))


@pytest.fixture
def two_owed(accrue, make_ready_contributor):
    ada, bo = make_ready_contributor("Ada"), make_ready_contributor("Bo")
    accrue({ada: 12_345_678, bo: 20_000_000})
    return ada, bo


def test_an_approved_run_sends_one_transfer_per_payout_and_books_each_once_confirmed(
        two_owed, finance_user, approve, execute, fake_stripe):
    ada, bo = two_owed
    run = payout_run_create(currency="USD", created_by=finance_user)
    approve(run)

    run = execute(run)

    # the run is done, every payout paid
    assert run.status == PayoutRun.Status.COMPLETED
    assert run.execution_started_at <= run.completed_at
    payouts = {p.contributor_id: p for p in run.payouts.all()}
    assert {p.status for p in payouts.values()} == {"paid"}
    # Stripe holds exactly one transfer per payout, in the run's group, keyed by the payout id
    transfers = {t.metadata["payout_id"]: t for t in stripe_transfers(run)}
    assert set(transfers) == {str(p.pk) for p in payouts.values()}
    for payout in payouts.values():
        transfer = transfers[str(payout.pk)]
        assert (transfer.id, transfer.amount, transfer.currency) == (
            payout.stripe_transfer_id, payout.amount_minor, "usd")
        assert transfer.destination == payout.stripe_account_id
        assert transfer.metadata["run_id"] == str(run.pk)
    assert sorted(r["idempotency_key"] for r in transfer_posts(fake_stripe)) == sorted(
        f"transfer:{p.pk}" for p in payouts.values())
    # each payout booked once: payable debited, Stripe clearing credited, by exactly the transfer
    for payout in payouts.values():
        entry = JournalEntry.objects.get(idempotency_key=f"payout:{payout.pk}")
        assert payout.ledger_entry_id == entry.pk
        assert entry.kind == JournalEntry.Kind.PAYOUT
        assert sorted(entry.postings.values_list("account__kind", "amount_micros")) == [
            ("contributor_payable", payout.amount_micros), ("stripe_clearing", -payout.amount_micros)]
    # what is left owed is the sub-cent remainder, which carries forward
    assert contributor_payable_balance(contributor=ada, currency="USD") == 5_678
    assert contributor_payable_balance(contributor=bo, currency="USD") == 0
    clearing = Account.objects.get(kind=Account.Kind.STRIPE_CLEARING, currency="USD")
    assert account_balance(account=clearing) == -(12_340_000 + 20_000_000)
    # and the audit trail follows every step
    actions = list(AuditEvent.objects.filter(object_type="payouts.payout").values_list("action", flat=True))
    assert sorted(actions) == ["payout.paid", "payout.paid", "payout.sending", "payout.sending"]
    assert AuditEvent.objects.filter(action="payout_run.complete", object_id=str(run.pk)).exists()
    # and each paid payout got its statement once the run finished
    assert all(hasattr(p, "statement") for p in run.payouts.all())


def test_a_decline_fails_the_payout_with_stripes_message_books_nothing_and_a_retry_uses_a_new_key(
        two_owed, finance_user, approve, execute, fake_stripe, django_capture_on_commit_callbacks):
    ada, _ = two_owed
    run = payout_run_create(currency="USD", created_by=finance_user)
    approve(run)
    ada_payout = run.payouts.get(contributor=ada)
    fake_stripe.add_fault("decline", message="The destination bank refused the transfer.")

    run = execute(run)

    assert run.status == PayoutRun.Status.COMPLETED_WITH_FAILURES
    failed = Payout.objects.get(status="failed")
    assert failed.failure_message == "The destination bank refused the transfer."
    assert failed.failure_code == "transfers_not_allowed"
    assert failed.ledger_entry is None
    assert not JournalEntry.objects.filter(idempotency_key=f"payout:{failed.pk}").exists()
    # the failed amount is still owed (nothing moved, nothing booked)
    owner = failed.contributor
    assert contributor_payable_balance(contributor=owner, currency="USD") == failed.balance_micros
    assert Payout.objects.filter(status="paid").count() == 1

    with django_capture_on_commit_callbacks(execute=True):
        payout_run_retry_failed(run=run, actor=finance_user)

    failed.refresh_from_db()
    run.refresh_from_db()
    assert (failed.status, failed.attempt) == ("paid", 2)
    assert run.status == PayoutRun.Status.COMPLETED
    keys = [r["idempotency_key"] for r in transfer_posts(fake_stripe) if str(failed.pk) in r["idempotency_key"]]
    # Stripe keeps the refusal under the first key; the retry is a new attempt with its own key
    assert keys == [f"transfer:{failed.pk}", f"transfer:{failed.pk}:2"]
    assert len([t for t in stripe_transfers(run) if t.metadata["payout_id"] == str(failed.pk)]) == 1
    assert contributor_payable_balance(contributor=owner, currency="USD") == failed.remainder_micros
    assert ada_payout.pk in {p.pk for p in run.payouts.all()}
    assert AuditEvent.objects.filter(action="payout.retry", object_id=str(failed.pk)).count() == 1


@pytest.mark.parametrize(("fault", "code"), [("insufficient_funds", "balance_insufficient")])
def test_insufficient_platform_funds_fails_the_payout(two_owed, finance_user, approve, execute, fake_stripe,
                                                      fault, code):
    run = payout_run_create(currency="USD", created_by=finance_user)
    approve(run)
    fake_stripe.add_fault(fault, count=5)

    run = execute(run)

    assert run.status == PayoutRun.Status.COMPLETED_WITH_FAILURES
    assert set(run.payouts.values_list("status", "failure_code")) == {("failed", code)}
    assert "insufficient available funds" in run.payouts.first().failure_message
    assert not JournalEntry.objects.filter(kind=JournalEntry.Kind.PAYOUT).exists()


def test_an_account_stripe_restricted_since_the_draft_is_refused_by_stripe(
        two_owed, finance_user, approve, execute, fake_stripe):
    ada, _ = two_owed
    run = payout_run_create(currency="USD", created_by=finance_user)
    approve(run)
    # Stripe restricted the account; our copy has not heard yet (no webhook), so we send and Stripe refuses.
    fake_stripe.restrict_account(ada.connected_account.stripe_account_id)

    execute(run)

    payout = run.payouts.get(contributor=ada)
    assert (payout.status, payout.failure_code) == ("failed", "insufficient_capabilities_for_transfer")
    assert "capabilities" in payout.failure_message


def test_changes_since_approval_stop_a_payout_before_stripe_is_called(
        two_owed, finance_user, approve, execute, fake_stripe, program):
    ada, bo = two_owed
    run = payout_run_create(currency="USD", created_by=finance_user)
    approve(run)
    # after approval: a hold on Ada, and Bo's balance corrected downwards
    hold_place(contributor=ada, currency="USD", amount_micros=1, reason="fraud check", idempotency_key="h-ada")
    from royalties.ledger.models import JournalEntry as Entry
    from royalties.ledger.services import journal_entry_reverse

    journal_entry_reverse(entry=Entry.objects.get(kind="accrual"), memo="wrong night")
    before = len(fake_stripe.request_log)

    run = execute(run)

    codes = dict(run.payouts.values_list("contributor_id", "failure_code"))
    assert codes == {ada.pk: "on_hold", bo.pk: "balance_changed"}
    assert len(fake_stripe.request_log) == before  # Stripe was never asked
    assert run.status == PayoutRun.Status.COMPLETED_WITH_FAILURES


def test_a_connection_dropped_after_stripe_made_the_transfer_still_makes_one(
        two_owed, finance_user, approve, execute, fake_stripe):
    run = payout_run_create(currency="USD", created_by=finance_user)
    approve(run)
    fake_stripe.add_fault("drop_after", count=2)

    run = execute(run)

    assert run.status == PayoutRun.Status.COMPLETED
    assert len(stripe_transfers(run)) == 2
    assert sum(1 for r in transfer_posts(fake_stripe) if r["replayed"]) == 2


def test_a_crash_between_stripes_answer_and_our_commit_is_recovered_into_one_transfer_and_one_entry(
        two_owed, finance_user, approve, execute, fake_stripe, monkeypatch, django_capture_on_commit_callbacks):
    run = payout_run_create(currency="USD", created_by=finance_user)
    approve(run)

    class WorkerDied(BaseException):
        """Stands in for SIGKILL in-process (the real kill is tests/payouts/test_payout_worker.py)."""

    def die() -> None:
        raise WorkerDied

    monkeypatch.setattr(execution_module, "_pause_after_transfer", die)
    with pytest.raises(WorkerDied):
        execute(run)

    # Stripe made the first transfer; we booked nothing and the payout is in doubt (sending)
    assert len(stripe_transfers(run)) == 1
    assert list(run.payouts.values_list("status", flat=True)) == ["sending", "pending"]
    assert not JournalEntry.objects.filter(kind=JournalEntry.Kind.PAYOUT).exists()

    monkeypatch.undo()
    monkeypatch.setattr(stripe_client, "_sleep", lambda s: None)
    with django_capture_on_commit_callbacks(execute=True):
        assert payout_run_resume(run=run) == 2

    run.refresh_from_db()
    assert run.status == PayoutRun.Status.COMPLETED
    assert len(stripe_transfers(run)) == 2  # the resend got the first transfer back, not a second one
    for payout in run.payouts.all():
        assert payout.status == "paid"
        assert JournalEntry.objects.filter(idempotency_key=f"payout:{payout.pk}").count() == 1
    replays = [r for r in transfer_posts(fake_stripe) if r["replayed"]]
    assert len(replays) == 1


def test_stripe_unreachable_leaves_the_payout_in_doubt_until_a_resume_sends_it_with_the_same_key(
        two_owed, finance_user, approve, execute, fake_stripe, settings, django_capture_on_commit_callbacks):
    settings.STRIPE_MAX_RETRIES = 1
    run = payout_run_create(currency="USD", created_by=finance_user)
    approve(run)
    fake_stripe.add_fault("server_error", count=2, path="/v1/transfers", method="POST")

    run = execute(run)

    assert run.status == PayoutRun.Status.EXECUTING  # not finished: one payout's outcome is unknown
    doubt = run.payouts.get(status="sending")
    assert "An unknown error occurred" in doubt.last_error
    assert run.payouts.filter(status="paid").count() == 1

    with django_capture_on_commit_callbacks(execute=True):
        payout_run_resume(run=run)

    doubt.refresh_from_db()
    run.refresh_from_db()
    assert (doubt.status, doubt.last_error, doubt.attempt) == ("paid", "", 1)
    assert run.status == PayoutRun.Status.COMPLETED
    assert {r["idempotency_key"] for r in transfer_posts(fake_stripe) if str(doubt.pk) in r["idempotency_key"]} == {
        f"transfer:{doubt.pk}"}


def test_releasing_failed_payouts_carries_their_balance_forward(
        two_owed, finance_user, approve, execute, fake_stripe):
    run = payout_run_create(currency="USD", created_by=finance_user)
    approve(run)
    fake_stripe.add_fault("decline", count=2)
    run = execute(run)

    with pytest.raises(PayoutValidationError) as exc:
        payout_run_release_failed(run=run, actor=finance_user, reason=" ")
    assert exc.value.field == "reason"
    payout_run_release_failed(run=run, actor=finance_user, reason="contributors asked to wait")

    assert set(run.payouts.values_list("status", flat=True)) == {"cancelled"}
    run.refresh_from_db()
    assert run.status == PayoutRun.Status.COMPLETED_WITH_FAILURES
    # the next draft pays them again
    assert payout_run_create(currency="USD", created_by=finance_user).payout_count == 2
    with pytest.raises(PayoutRunStateError, match="no failed payout"):
        payout_run_retry_failed(run=run, actor=finance_user)


def test_executing_needs_an_approved_run(two_owed, finance_user, execute):
    run = payout_run_create(currency="USD", created_by=finance_user)

    with pytest.raises(PayoutRunStateError) as exc:
        execute(run)

    assert "only a run that is approved can be executed" in exc.value.message
    assert not Payout.objects.exclude(status="pending").exists()


def test_the_periodic_sweep_resumes_runs_whose_payouts_wait_too_long(
        two_owed, finance_user, approve, execute, fake_stripe, settings, django_capture_on_commit_callbacks):
    import datetime as dt

    from payouts.services import payout_runs_resume_stalled

    settings.STRIPE_MAX_RETRIES = 0
    run = payout_run_create(currency="USD", created_by=finance_user)
    approve(run)
    fake_stripe.add_fault("server_error", count=1, path="/v1/transfers", method="POST")
    run = execute(run)
    assert run.payouts.filter(status="sending").count() == 1

    # not yet: the payout went out moments ago
    assert payout_runs_resume_stalled() == []
    with django_capture_on_commit_callbacks(execute=True):
        assert payout_runs_resume_stalled(older_than=dt.timedelta(0)) == [run.pk]

    run.refresh_from_db()
    assert run.status == PayoutRun.Status.COMPLETED


def test_the_sweeps_and_monthly_statements_are_scheduled():
    from royalties.celery import app

    tasks = {entry["task"]: entry["schedule"] for entry in app.conf.beat_schedule.values()}
    assert "payouts.payout_runs_resume_stalled" in tasks
    monthly = tasks["payouts.statements_issue_monthly"]
    assert monthly.day_of_month == {1}
