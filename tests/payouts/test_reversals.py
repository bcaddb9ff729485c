"""Transfer webhooks and our payouts: a reversal books the returning entry once and puts the money back on the
contributor's balance; a payout left in doubt by a dead worker is booked from Stripe's confirmation.

The events are the fake Stripe server's own, signed and posted to /webhooks/stripe/ as Stripe would.
"""

from __future__ import annotations

import json

import pytest
import stripe

from audit.models import AuditEvent
from payouts import stripe_client
from payouts.errors import PayoutRunStateError
from payouts.fakestripe import sign_payload
from payouts.models import Payout, StripeEvent
from payouts.services import execution as execution_module
from payouts.services import payout_run_create, payout_run_resume, payout_send
from royalties.ledger.models import JournalEntry
from royalties.ledger.selectors import contributor_payable_balance

SECRET = "whsec_reversal_tests"


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    settings.STRIPE_WEBHOOK_SECRET = SECRET


@pytest.fixture
def sdk(fake_stripe):
    return stripe.StripeClient(fake_stripe.api_key, base_addresses={"api": fake_stripe.url}, max_network_retries=0)


@pytest.fixture
def post(client, django_capture_on_commit_callbacks):
    def _post(event: dict):
        raw = json.dumps(event).encode()
        with django_capture_on_commit_callbacks(execute=True):
            return client.post("/webhooks/stripe/", data=raw, content_type="application/json",
                               HTTP_STRIPE_SIGNATURE=sign_payload(raw, SECRET))

    return _post


def events(sdk, type_: str) -> list[dict]:
    return [e.to_dict() for e in reversed(sdk.v1.events.list(params={"limit": 100, "type": type_}).data)]


@pytest.fixture
def paid(accrue, make_ready_contributor, finance_user, approve, execute):
    ada = make_ready_contributor()
    accrue({ada: 25_004_321})
    run = payout_run_create(currency="USD", created_by=finance_user)
    approve(run)
    execute(run)
    payout = run.payouts.get()
    assert payout.status == "paid"
    return payout


def test_a_reversal_books_the_returning_entry_once_and_the_money_is_owed_again(paid, sdk, post):
    contributor = paid.contributor
    assert contributor_payable_balance(contributor=contributor, currency="USD") == 4_321

    reversal = sdk.v1.transfers.reversals.create(paid.stripe_transfer_id)
    event = events(sdk, "transfer.reversed")[-1]
    response = post(event)

    # then: 200, the event processed, the payout reversed, one return entry keyed by the reversal id
    assert response.status_code == 200
    assert StripeEvent.objects.get(event_id=event["id"]).status == "processed"
    paid.refresh_from_db()
    assert (paid.status, paid.amount_reversed_minor) == ("reversed", 2_500)
    entry = JournalEntry.objects.get(idempotency_key=f"payout-return:{reversal.id}")
    assert entry.kind == JournalEntry.Kind.PAYOUT_RETURN
    assert sorted(entry.postings.values_list("account__kind", "amount_micros")) == [
        ("contributor_payable", -25_000_000), ("stripe_clearing", 25_000_000)]
    # the transfer's amount is owed again, on top of the remainder that had carried forward
    assert contributor_payable_balance(contributor=contributor, currency="USD") == 25_004_321
    assert AuditEvent.objects.filter(action="payout.reversed", object_id=str(paid.pk)).count() == 1

    # when: Stripe delivers again, and another event of the same transfer arrives
    assert post(event).json()["duplicate"] is True
    assert post(events(sdk, "transfer.created")[-1]).status_code == 200

    # then: nothing is booked twice
    assert JournalEntry.objects.filter(kind=JournalEntry.Kind.PAYOUT_RETURN).count() == 1
    assert contributor_payable_balance(contributor=contributor, currency="USD") == 25_004_321


def test_partial_reversals_each_return_their_amount_and_the_payout_stays_paid_until_fully_reversed(paid, sdk, post):
    sdk.v1.transfers.reversals.create(paid.stripe_transfer_id, params={"amount": 400})
    post(events(sdk, "transfer.reversed")[-1])

    paid.refresh_from_db()
    assert (paid.status, paid.amount_reversed_minor, paid.net_amount_minor) == ("paid", 400, 2_100)
    assert contributor_payable_balance(contributor=paid.contributor, currency="USD") == 4_004_321

    sdk.v1.transfers.reversals.create(paid.stripe_transfer_id)
    post(events(sdk, "transfer.reversed")[-1])

    paid.refresh_from_db()
    assert (paid.status, paid.amount_reversed_minor) == ("reversed", 2_500)
    assert JournalEntry.objects.filter(kind=JournalEntry.Kind.PAYOUT_RETURN).count() == 2
    assert contributor_payable_balance(contributor=paid.contributor, currency="USD") == 25_004_321


def test_a_transfer_of_someone_elses_is_mirrored_and_touches_no_payout(paid, sdk, post, fake_stripe):
    destination = paid.stripe_account_id
    stripe_client.transfer_create(payout_id=999_999, amount_minor=100, currency="usd", destination=destination,
                                  transfer_group="manual")
    response = post(events(sdk, "transfer.created")[-1])

    assert response.status_code == 200
    event = StripeEvent.objects.order_by("-id").first()
    assert "no payout of ours" in event.outcome
    assert Payout.objects.get().status == "paid"


def test_a_payout_left_sending_by_a_dead_worker_is_booked_from_stripes_confirmation(
        accrue, make_ready_contributor, finance_user, approve, execute, sdk, post, monkeypatch,
        django_capture_on_commit_callbacks, fake_stripe):
    accrue({make_ready_contributor(): 30_000_000})
    run = payout_run_create(currency="USD", created_by=finance_user)
    approve(run)

    def die() -> None:
        raise KeyboardInterrupt  # the worker vanishes after Stripe's answer, before our commit

    monkeypatch.setattr(execution_module, "_pause_after_transfer", die)
    with pytest.raises(KeyboardInterrupt):
        execute(run)
    payout = run.payouts.get()
    assert payout.status == "sending"

    post(events(sdk, "transfer.created")[-1])

    payout.refresh_from_db()
    run.refresh_from_db()
    assert payout.status == "paid"
    assert run.status == "completed"  # it was the run's last payout in doubt
    assert JournalEntry.objects.filter(idempotency_key=f"payout:{payout.pk}").count() == 1
    # a resume later finds it paid: no request to Stripe, no second entry
    before = len(fake_stripe.request_log)
    with pytest.raises(PayoutRunStateError):
        payout_run_resume(run=run)  # nothing left to resume
    with django_capture_on_commit_callbacks(execute=True):
        payout_send(payout_id=payout.pk)
    assert len(fake_stripe.request_log) == before
    assert JournalEntry.objects.filter(kind=JournalEntry.Kind.PAYOUT).count() == 1
