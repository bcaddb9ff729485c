"""The Stripe webhook endpoint: signatures (good, forged, tampered, stale), storing each event once,
processing exactly once from a fresh read of Stripe, and the event types we act on.

Events are real: the fake Stripe server emits them; we sign them with the fake's signing function and our
endpoint verifies them with the SDK's verifier.
"""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
import stripe

from audit.models import AuditEvent
from contributors.models import Contributor
from payouts import stripe_client
from payouts.fakestripe import sign_payload
from payouts.models import BankPayout, ConnectedAccount, StripeEvent, StripeTransfer
from payouts.services import connected_account_get_or_create, stripe_event_process, stripe_events_retry_pending
from tests.payouts.conftest import wait_for

SECRET = "whsec_test_endpoint_secret"
URL = "/webhooks/stripe/"


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    settings.STRIPE_WEBHOOK_SECRET = SECRET


@pytest.fixture
def sdk(fake_stripe):
    return stripe.StripeClient(fake_stripe.api_key, base_addresses={"api": fake_stripe.url}, max_network_retries=0)


def stripe_events(sdk, *, account: str | None = None, type: str | None = None) -> list[dict]:
    """Events as the fake recorded them, oldest first, as plain JSON-ready dicts."""
    params = {"limit": 100, **({"type": type} if type else {})}
    options = {"stripe_account": account} if account else {}
    return [e.to_dict() for e in reversed(sdk.v1.events.list(params=params, options=options).data)]


@pytest.fixture
def post(client, django_capture_on_commit_callbacks):
    """POST an event to the endpoint, signed like Stripe; the work queued on commit runs, as in production."""

    def _post(event: dict, *, secret: str = SECRET, timestamp: int | None = None, header: str | None = None,
              body: bytes | None = None):
        raw = body if body is not None else json.dumps(event).encode()
        signature = header if header is not None else sign_payload(raw, secret, timestamp=timestamp)
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(URL, data=raw, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature)

    return _post


@pytest.fixture
def onboarded(fake_stripe, contributor, sdk):
    """A contributor's account that finished onboarding on Stripe; its account.updated not yet received."""
    account = connected_account_get_or_create(contributor=contributor)
    fake_stripe.complete_onboarding(account.stripe_account_id)
    return account


def test_a_signed_account_update_is_stored_processed_and_keeps_the_contributor_status_current(
        post, sdk, onboarded, contributor):
    event = stripe_events(sdk, account=onboarded.stripe_account_id)[-1]

    response = post(event)

    assert response.status_code == 200
    assert response.json() == {"received": True, "duplicate": False, "event_id": event["id"]}
    stored = StripeEvent.objects.get(event_id=event["id"])
    assert (stored.type, stored.account, stored.status, stored.attempts) == (
        "account.updated", onboarded.stripe_account_id, "processed", 1)
    assert stored.payload == event
    onboarded.refresh_from_db()
    assert onboarded.transfers_capability == "active"
    assert onboarded.payouts_enabled
    assert onboarded.requirements_due == []
    assert onboarded.disabled_reason == ""
    contributor.refresh_from_db()
    assert contributor.payout_status == Contributor.PayoutStatus.ACTIVE
    # The status change is in the audit trail, attributed to Stripe, with before and after.
    change = AuditEvent.objects.get(action="contributor.payout_status_change", after__payout_status="active")
    assert change.before == {"payout_status": "onboarding"}
    assert change.actor_label == "stripe"


def test_a_replayed_event_is_a_no_op(post, sdk, onboarded, fake_stripe):
    event = stripe_events(sdk, account=onboarded.stripe_account_id)[-1]
    assert post(event).status_code == 200
    audit_count = AuditEvent.objects.count()
    stripe_reads = len(fake_stripe.request_log)

    again = post(event)  # Stripe delivers at least once: the same event id, freshly signed

    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert StripeEvent.objects.filter(event_id=event["id"]).count() == 1
    assert StripeEvent.objects.get(event_id=event["id"]).attempts == 1
    # Nothing was processed again: no Stripe read, no audit line.
    assert len(fake_stripe.request_log) == stripe_reads
    assert AuditEvent.objects.count() == audit_count


@pytest.mark.parametrize("case", ["forged", "tampered", "stale", "missing", "garbled", "future_tampered"])
def test_a_bad_signature_is_refused_and_changes_nothing(post, client, sdk, onboarded, contributor, case):
    event = stripe_events(sdk, account=onboarded.stripe_account_id)[-1]
    body = json.dumps(event).encode()
    if case == "forged":
        response = post(event, secret="whsec_someone_else")
    elif case == "tampered":
        header = sign_payload(body, SECRET)
        response = post(event, header=header, body=body.replace(b'"active"', b'"inactive"'))
    elif case == "stale":
        response = post(event, timestamp=int(time.time()) - 301)  # beyond the 300 s tolerance
    elif case == "missing":
        response = client.post(URL, data=body, content_type="application/json")
    elif case == "garbled":
        response = post(event, header="t=abc,v1=nothex")
    else:
        # A valid signature for another timestamp does not sign this one.
        header = sign_payload(body, SECRET)
        stamp, signature = header.split(",")
        response = post(event, header=f"t={int(stamp[2:]) + 1},{signature}")

    assert response.status_code == 400
    assert "Stripe-Signature" in response.json()["detail"]
    assert not StripeEvent.objects.exists()
    contributor.refresh_from_db()
    assert contributor.payout_status == "onboarding"


def test_a_signature_that_is_not_stale_yet_is_accepted(post, sdk, onboarded):
    event = stripe_events(sdk, account=onboarded.stripe_account_id)[-1]

    assert post(event, timestamp=int(time.time()) - 290).status_code == 200


def test_any_configured_secret_verifies(post, sdk, onboarded, settings):
    # A platform endpoint and a Connect endpoint each have a secret; rotation overlaps two.
    settings.STRIPE_WEBHOOK_SECRET = "whsec_platform, whsec_connect"
    event = stripe_events(sdk, account=onboarded.stripe_account_id)[-1]

    assert post(event, secret="whsec_connect").status_code == 200
    assert post(dict(event, id="evt_other"), secret="whsec_platform").status_code == 200
    assert post(dict(event, id="evt_third"), secret=SECRET).status_code == 400


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda e: e.pop("type"), "type"),
    (lambda e: e.update(id="not-an-event"), "id"),
    (lambda e: e.update(object="charge"), "object"),
    (lambda e: e["data"].pop("object"), "data"),
])
def test_a_signed_but_malformed_event_is_refused_naming_the_field(post, sdk, onboarded, mutate, field):
    event = stripe_events(sdk, account=onboarded.stripe_account_id)[-1]
    mutate(event)

    response = post(event)

    assert response.status_code == 400
    assert field in response.json()
    assert not StripeEvent.objects.exists()


def test_a_signed_body_that_is_not_json_is_refused(post, db):
    response = post({}, body=b"not json at all")

    assert response.status_code == 400
    assert not StripeEvent.objects.exists()


def test_only_post_is_allowed(client, db):
    assert client.get(URL).status_code == 405


def test_events_out_of_order_leave_the_current_state_because_processing_rereads_stripe(
        post, sdk, onboarded, fake_stripe, contributor):
    fake_stripe.restrict_account(onboarded.stripe_account_id, disabled_reason="requirements.past_due",
                                 currently_due=["individual.verification.document"])
    completed, restricted = stripe_events(sdk, account=onboarded.stripe_account_id, type="account.updated")

    # The newer event arrives first, the older one last.
    assert post(restricted).status_code == 200
    assert post(completed).status_code == 200

    onboarded.refresh_from_db()
    contributor.refresh_from_db()
    # The older event's snapshot said "active"; the state stored is Stripe's current one.
    assert completed["data"]["object"]["capabilities"]["transfers"] == "active"
    assert onboarded.transfers_capability == "inactive"
    assert onboarded.disabled_reason == "requirements.past_due"
    assert onboarded.requirements_due == ["individual.verification.document"]
    assert contributor.payout_status == Contributor.PayoutStatus.RESTRICTED


def test_processing_is_exactly_once(post, sdk, onboarded, fake_stripe):
    event = stripe_events(sdk, account=onboarded.stripe_account_id)[-1]
    post(event)
    reads = len(fake_stripe.request_log)

    again = stripe_event_process(event_id=event["id"])  # e.g. a task delivered twice by the broker

    assert again.status == "processed"
    assert again.attempts == 1
    assert len(fake_stripe.request_log) == reads


def test_an_event_for_an_account_that_is_not_ours_is_ignored(post, sdk, fake_stripe, db):
    stranger = sdk.v1.accounts.create(params={"type": "express", "capabilities": {"transfers": {"requested": True}}})
    fake_stripe.complete_onboarding(stranger.id)
    event = stripe_events(sdk, account=stranger.id)[-1]

    assert post(event).status_code == 200

    stored = StripeEvent.objects.get(event_id=event["id"])
    assert stored.status == "ignored"
    assert "no contributor" in stored.outcome
    assert not ConnectedAccount.objects.exists()


def test_an_event_type_without_handler_is_stored_and_ignored(post, sdk, onboarded):
    event = dict(stripe_events(sdk, account=onboarded.stripe_account_id)[-1], id="evt_cap", type="capability.updated")

    assert post(event).status_code == 200

    assert StripeEvent.objects.get(event_id="evt_cap").status == "ignored"


def test_stripe_unreachable_during_processing_still_answers_2xx_and_the_sweep_finishes_later(
        post, sdk, onboarded, fake_stripe, contributor, monkeypatch):
    monkeypatch.setattr(stripe_client, "_sleep", lambda seconds: None)
    event = stripe_events(sdk, account=onboarded.stripe_account_id)[-1]
    fake_stripe.add_fault("server_error", count=1000, method="GET",
                          path=f"/v1/accounts/{onboarded.stripe_account_id}")

    response = post(event)

    # Stripe got its 2xx (the event is safely stored); processing failed and is recorded as such.
    assert response.status_code == 200
    stored = StripeEvent.objects.get(event_id=event["id"])
    assert stored.status == "failed"
    assert stored.attempts >= 1
    assert "StripeUnavailable" in stored.processing_error
    contributor.refresh_from_db()
    assert contributor.payout_status == "onboarding"

    fake_stripe.clear_faults()
    assert stripe_events_retry_pending(older_than=dt.timedelta(0)) == 1

    stored.refresh_from_db()
    contributor.refresh_from_db()
    assert stored.status == "processed"
    assert stored.processing_error == ""
    assert contributor.payout_status == "active"


def test_transfer_events_keep_a_mirror_of_the_transfer_including_reversals(post, sdk, onboarded, fake_stripe):
    fake_stripe.activate_account(onboarded.stripe_account_id)
    transfer = stripe_client.transfer_create(payout_id=11, amount_minor=4000, currency="usd",
                                             destination=onboarded.stripe_account_id, transfer_group="run-11")
    sdk.v1.transfers.reversals.create(transfer.id, params={"amount": 1500})
    created, reversed_ = stripe_events(sdk, type="transfer.*")
    assert (created["type"], reversed_["type"]) == ("transfer.created", "transfer.reversed")

    assert post(created).status_code == 200
    mirror = StripeTransfer.objects.get(stripe_transfer_id=transfer.id)
    # transfer.created was processed after the reversal happened: the mirror holds the current amounts.
    assert (mirror.amount_minor, mirror.amount_reversed_minor, mirror.net_amount_minor) == (4000, 1500, 2500)
    assert (mirror.transfer_group, mirror.destination_account_id, mirror.currency) == (
        "run-11", onboarded.stripe_account_id, "usd")
    assert mirror.metadata == {"payout_id": "11"}

    sdk.v1.transfers.reversals.create(transfer.id)
    last = stripe_events(sdk, type="transfer.reversed")[-1]
    assert post(last).status_code == 200
    mirror.refresh_from_db()
    assert (mirror.amount_reversed_minor, mirror.reversed) == (4000, True)
    assert AuditEvent.objects.filter(action="stripe_transfer.reversal", object_id=str(mirror.pk)).count() == 1


def test_bank_payout_events_are_mirrored_and_failures_audited(post, sdk, onboarded, fake_stripe):
    fake_stripe.activate_account(onboarded.stripe_account_id)
    stripe_client.transfer_create(payout_id=12, amount_minor=3000, currency="usd",
                                  destination=onboarded.stripe_account_id, transfer_group="run-12")
    fake_stripe.simulate_payout(onboarded.stripe_account_id, amount=1000)
    fake_stripe.simulate_payout(onboarded.stripe_account_id, amount=2000, outcome="failed",
                                failure_code="account_closed")

    for event in stripe_events(sdk, account=onboarded.stripe_account_id, type="payout.*"):
        assert post(event).status_code == 200

    payouts = {p.amount_minor: p for p in BankPayout.objects.all()}
    assert payouts[1000].status == "paid"
    assert (payouts[2000].status, payouts[2000].failure_code) == ("failed", "account_closed")
    assert payouts[2000].failure_message == "The bank account has been closed."
    assert AuditEvent.objects.filter(action="bank_payout.failed").count() == 1
    # payout.created has no handler: stored and ignored.
    assert set(StripeEvent.objects.values_list("type", "status")) == {
        ("payout.created", "ignored"), ("payout.paid", "processed"), ("payout.failed", "processed")}


def test_events_flow_from_the_fake_to_the_live_endpoint(fake_stripe_webhooks, contributor):
    # given: a contributor who started onboarding, and webhook endpoints registered on the fake
    account = connected_account_get_or_create(contributor=contributor)

    # when: the contributor completes Stripe's form (on Stripe's side: no call of ours)
    fake_stripe_webhooks.complete_onboarding(account.stripe_account_id)

    # then: Stripe's signed account.updated reaches /webhooks/stripe/ and the status follows
    wait_for(lambda: Contributor.objects.filter(pk=contributor.pk, payout_status="active").exists(),
             what="the contributor to become active from the webhook")
    assert fake_stripe_webhooks.deliverer.wait_idle(timeout=10)
    delivered = [d for d in fake_stripe_webhooks.delivery_log if d["ok"]]
    assert delivered
    assert all(d["status"] == 200 for d in delivered)
    assert StripeEvent.objects.get(type="account.updated").status == "processed"
