"""Exactly once, with real worker processes on the real broker: a worker SIGKILLed between Stripe's answer and
our commit, and two workers executing the same payouts at once.

The worker pauses at our own seam (``PAYOUTS_TEST_PAUSE_AFTER_TRANSFER``, read only by a test worker) after
Stripe made the transfer and before the booking commits; the test kills it there, as a crash would.
"""

from __future__ import annotations

import pytest
from django.conf import settings

from payouts import stripe_client
from payouts.models import Payout, PayoutRun
from payouts.services import (
    payout_run_approve,
    payout_run_create,
    payout_run_execute,
    payout_run_resume,
    payout_run_submit,
)
from payouts.services import runs as runs_module
from royalties.ledger.models import JournalEntry
from royalties.ledger.selectors import contributor_payable_balance
from tests.conftest import FAKE_STRIPE_KEY
from tests.payouts.conftest import wait_for

pytestmark = pytest.mark.celery_worker


@pytest.fixture(autouse=True)
def _forget_unacked_messages():
    """A SIGKILLed worker leaves its message unacknowledged in Redis, to come back after the visibility timeout
    (an hour): drop it when the test ends, so no later test's worker receives this test's task."""
    yield
    from kombu import Connection

    with Connection(settings.TEST_CELERY_BROKER_URL) as conn:
        conn.default_channel.client.delete("unacked", "unacked_index")


def worker_env(fake_stripe, **extra: str) -> dict[str, str]:
    # The worker is another process: it learns where the fake Stripe is from its environment.
    return {"STRIPE_API_BASE": fake_stripe.url, "STRIPE_CONNECT_BASE": fake_stripe.url,
            "STRIPE_SECRET_KEY": FAKE_STRIPE_KEY, "PAYOUTS_EXECUTION_THREADS": "2", "PYTHONUNBUFFERED": "1",
            **extra}


def approved_run(accrue, contributors, finance_user, finance_user_b) -> PayoutRun:
    accrue({c: 20_000_000 + i * 3_333_333 for i, c in enumerate(contributors)})
    run = payout_run_create(currency="USD", created_by=finance_user)
    payout_run_submit(run=run, actor=finance_user)
    return payout_run_approve(run=run, actor=finance_user_b)


def stripe_transfers(run: PayoutRun) -> list:
    return list(stripe_client.transfer_list(transfer_group=run.transfer_group))


def test_a_worker_killed_between_the_transfer_and_the_booking_leaves_one_transfer_and_one_entry(
        celery_worker_factory, fake_stripe, accrue, make_ready_contributor, finance_user, finance_user_b):
    ada = make_ready_contributor("Ada")
    run = approved_run(accrue, [ada], finance_user, finance_user_b)
    payout = run.payouts.get()
    doomed = celery_worker_factory(extra_env=worker_env(fake_stripe, PAYOUTS_TEST_PAUSE_AFTER_TRANSFER="120"))

    # when: executing, the worker sends the transfer and is killed before it books it
    payout_run_execute(run=run, actor=finance_user)
    wait_for(lambda: stripe_transfers(run), timeout=60, what="the worker to make the transfer")
    wait_for(lambda: "test pause after transfer" in doomed.log(), timeout=30, what="the worker to reach the pause")
    doomed.kill()

    # then: Stripe holds the transfer; we booked nothing; the payout is in doubt
    assert len(stripe_transfers(run)) == 1
    payout.refresh_from_db()
    assert payout.status == Payout.Status.SENDING
    assert not JournalEntry.objects.filter(idempotency_key=f"payout:{payout.pk}").exists()
    assert contributor_payable_balance(contributor=ada, currency="USD") == 20_000_000

    # when: a new worker starts and the run is resumed (what the periodic sweep does)
    celery_worker_factory(extra_env=worker_env(fake_stripe))
    payout_run_resume(run=run)
    wait_for(lambda: PayoutRun.objects.filter(pk=run.pk, status=PayoutRun.Status.COMPLETED).exists(), timeout=90,
             what="the resumed run to complete")

    # then: still one transfer; one ledger entry; the resend was answered from Stripe's idempotency store
    transfers = stripe_transfers(run)
    assert len(transfers) == 1
    payout.refresh_from_db()
    assert (payout.status, payout.stripe_transfer_id) == (Payout.Status.PAID, transfers[0].id)
    assert JournalEntry.objects.filter(idempotency_key=f"payout:{payout.pk}").count() == 1
    assert contributor_payable_balance(contributor=ada, currency="USD") == 0
    posts = [r for r in fake_stripe.request_log if r["method"] == "POST" and r["path"] == "/v1/transfers"]
    assert [(r["idempotency_key"], r["replayed"]) for r in posts] == [(f"transfer:{payout.pk}", False),
                                                                      (f"transfer:{payout.pk}", True)]


def test_two_workers_executing_the_same_payouts_at_once_make_one_transfer_each(
        celery_worker_factory, fake_stripe, accrue, make_ready_contributor, finance_user, finance_user_b,
        monkeypatch):
    contributors = [make_ready_contributor(f"C{i}") for i in range(8)]
    run = approved_run(accrue, contributors, finance_user, finance_user_b)
    ids = list(run.payouts.values_list("id", flat=True))
    for _ in range(2):
        celery_worker_factory(extra_env=worker_env(fake_stripe))
    # Hold back the normal dispatch (our seam) and hand the same payouts to both workers at once, as a
    # redelivered message or a second "execute" from another node would.
    monkeypatch.setattr(runs_module, "_enqueue_dispatch", lambda run_id: None)
    payout_run_execute(run=run, actor=finance_user)
    from payouts.tasks import payout_batch_send_task

    payout_batch_send_task.delay(run.pk, ids)
    payout_batch_send_task.delay(run.pk, list(reversed(ids)))

    wait_for(lambda: PayoutRun.objects.filter(pk=run.pk, status=PayoutRun.Status.COMPLETED).exists(), timeout=90,
             what="the run to complete")
    transfers = stripe_transfers(run)
    assert sorted(t.metadata["payout_id"] for t in transfers) == sorted(str(i) for i in ids)
    for payout_id in ids:
        assert JournalEntry.objects.filter(idempotency_key=f"payout:{payout_id}").count() == 1
    assert set(Payout.objects.filter(run=run).values_list("status", flat=True)) == {"paid"}
