"""Concurrent executors on committed data (threads with their own database connections, on SQLite and
PostgreSQL): whatever overlaps, one transfer per payout and one ledger entry per payout."""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from payouts import stripe_client
from payouts.models import PayoutRun
from payouts.services import payout_batch_send, payout_run_create, payout_run_execute
from payouts.services import runs as runs_module
from royalties.ledger.models import JournalEntry

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def executing_run(accrue, make_ready_contributor, finance_user, approve, monkeypatch):
    """An executing run of six payouts whose dispatch we hold back (our seam), so the test starts the executors."""
    monkeypatch.setattr(stripe_client, "_sleep", lambda seconds: None)
    contributors = [make_ready_contributor(f"C{i}") for i in range(6)]
    accrue({c: 11_000_000 + i * 1_000_001 for i, c in enumerate(contributors)})
    run = payout_run_create(currency="USD", created_by=finance_user)
    approve(run)
    monkeypatch.setattr(runs_module, "_enqueue_dispatch", lambda run_id: None)
    payout_run_execute(run=run, actor=finance_user)
    return run


def test_two_executors_racing_over_the_same_payouts_make_one_transfer_each(executing_run, fake_stripe):
    run = executing_run
    ids = list(run.payouts.values_list("id", flat=True))
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def executor() -> None:
        try:
            start.wait()
            payout_batch_send(run_id=run.pk, payout_ids=ids, threads=3)
        except BaseException as exc:  # collected so the assertion reports it
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=executor) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    run.refresh_from_db()
    assert run.status == PayoutRun.Status.COMPLETED
    transfers = list(stripe_client.transfer_list(transfer_group=run.transfer_group))
    assert sorted(t.metadata["payout_id"] for t in transfers) == sorted(str(i) for i in ids)
    for payout in run.payouts.all():
        assert payout.status == "paid"
        assert JournalEntry.objects.filter(idempotency_key=f"payout:{payout.pk}").count() == 1
    # every send went out with the payout's own key; any second send of a payout was a replay
    posts = [r for r in fake_stripe.request_log if r["method"] == "POST" and r["path"] == "/v1/transfers"]
    assert {r["idempotency_key"] for r in posts} == {f"transfer:{i}" for i in ids}
    assert sum(1 for r in posts if not r["replayed"]) == len(ids)


def test_a_pool_of_senders_pays_a_run_with_each_thread_on_its_own_connection(executing_run):
    run = executing_run

    result = payout_batch_send(run_id=run.pk, payout_ids=list(run.payouts.values_list("id", flat=True)), threads=4)

    assert (result["sent"], result["paid"]) == (6, 6)
    run.refresh_from_db()
    assert run.status == PayoutRun.Status.COMPLETED
    assert JournalEntry.objects.filter(kind=JournalEntry.Kind.PAYOUT).count() == 6
