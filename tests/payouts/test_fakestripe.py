"""The fake Stripe server, driven through the official SDK and raw HTTP: shapes, rules and test controls.

These tests use a plain ``stripe.StripeClient`` (not our client module), so they pin the fake's behaviour
to what the SDK expects, independently of how the platform uses it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import stripe

from payouts.fakestripe import FakeStripeServer, sign_payload
from tests.conftest import FAKE_STRIPE_KEY


@pytest.fixture
def sdk(fake_stripe):
    return stripe.StripeClient(FAKE_STRIPE_KEY, base_addresses={"api": fake_stripe.url},
                               stripe_version="2026-10-28.endive", max_network_retries=0)


def express_account(sdk, **params):
    return sdk.v1.accounts.create(params={
        "controller": {"stripe_dashboard": {"type": "express"}, "fees": {"payer": "application"},
                       "losses": {"payments": "application"}, "requirement_collection": "stripe"},
        "capabilities": {"transfers": {"requested": True}}, **params,
    })


def active_account(sdk, fake):
    account = express_account(sdk)
    fake.complete_onboarding(account.id)
    return account


def test_a_new_express_account_looks_like_stripes_and_cannot_receive_transfers_yet(sdk):
    account = express_account(sdk, metadata={"contributor_id": "42"}, country="DE")

    assert isinstance(account, stripe.Account)
    assert account.id.startswith("acct_")
    assert account.type == "express"
    assert account.controller.stripe_dashboard.type == "express"
    assert account.capabilities.transfers == "inactive"
    assert account.details_submitted is False
    assert account.payouts_enabled is False
    assert "external_account" in account.requirements.currently_due
    assert account.requirements.disabled_reason == "requirements.past_due"
    assert account.metadata["contributor_id"] == "42"
    assert account.country == "DE"
    assert account.default_currency == "eur"
    assert sdk.v1.accounts.retrieve(account.id).id == account.id


def test_the_deprecated_type_parameter_also_makes_an_express_account(sdk):
    account = sdk.v1.accounts.create(params={"type": "express", "capabilities": {"transfers": {"requested": True}}})

    assert account.type == "express"
    assert account.controller.requirement_collection == "stripe"


def test_unknown_parameters_and_bad_values_are_refused_naming_the_parameter(sdk, fake_stripe):
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        sdk.v1.accounts.create(params={"type": "express", "capabilities": {"transfers": {"requested": True}},
                                       "colour": "blue"})
    assert unknown.value.code == "parameter_unknown"
    assert unknown.value.param == "colour"

    with pytest.raises(stripe.InvalidRequestError) as bad_amount:
        sdk.v1.transfers.create(params={"amount": -5, "currency": "usd", "destination": "acct_x"})
    assert bad_amount.value.param == "amount"

    with pytest.raises(stripe.InvalidRequestError) as missing:
        sdk.v1.transfers.create(params={"amount": 5, "destination": "acct_x"})
    assert missing.value.param == "currency"
    # Refused requests change nothing.
    assert sdk.v1.accounts.list().data == []


def test_a_wrong_api_key_is_an_authentication_error(fake_stripe):
    wrong = stripe.StripeClient("sk_test_wrong", base_addresses={"api": fake_stripe.url}, max_network_retries=0)

    with pytest.raises(stripe.AuthenticationError):
        wrong.v1.balance.retrieve()


def test_transfers_move_balance_and_leave_balance_transactions_that_carry_the_transfer_group(sdk, fake_stripe):
    account = active_account(sdk, fake_stripe)
    before = sdk.v1.balance.retrieve().available[0].amount

    transfer = sdk.v1.transfers.create(params={"amount": 1234, "currency": "usd", "destination": account.id,
                                               "transfer_group": "run-7", "metadata": {"payout_id": "9"}})

    assert isinstance(transfer, stripe.Transfer)
    assert (transfer.amount, transfer.amount_reversed, transfer.reversed) == (1234, 0, False)
    assert transfer.destination == account.id
    assert transfer.transfer_group == "run-7"
    assert transfer.metadata["payout_id"] == "9"
    assert sdk.v1.balance.retrieve().available[0].amount == before - 1234
    assert sdk.v1.balance.retrieve(options={"stripe_account": account.id}).available[0].amount == 1234
    txns = sdk.v1.balance_transactions.list(params={"source": transfer.id, "expand": ["data.source"]}).data
    assert [(t.type, t.amount, t.net) for t in txns] == [("transfer", -1234, -1234)]
    # The expanded source is the transfer itself: a balance transaction leads back to its payout run.
    assert txns[0].source.id == transfer.id
    assert txns[0].source.transfer_group == "run-7"
    assert sdk.v1.balance_transactions.list(params={"type": "transfer"}).data[0].id == txns[0].id


def test_transfer_lists_filter_by_group_and_paginate_with_cursors(sdk, fake_stripe):
    account = active_account(sdk, fake_stripe)
    ids: dict[str, list[str]] = {"a": [], "b": []}
    created = []
    for i in range(5):
        group = "a" if i % 2 == 0 else "b"
        transfer_id = sdk.v1.transfers.create(params={"amount": 100 + i, "currency": "usd",
                                                      "destination": account.id, "transfer_group": group}).id
        ids[group].append(transfer_id)
        created.append(transfer_id)

    first = sdk.v1.transfers.list(params={"transfer_group": "a", "limit": 2})
    assert first.has_more is True
    assert len(first.data) == 2
    second = sdk.v1.transfers.list(params={"transfer_group": "a", "limit": 2, "starting_after": first.data[-1].id})
    assert second.has_more is False
    # Newest first, each transfer exactly once across the pages, none of the other group.
    assert [t.id for t in first.data + second.data] == list(reversed(ids["a"]))
    # The SDK's auto-pagination walks the cursors one transfer at a time and sees all of them, newest first.
    assert [t.id for t in sdk.v1.transfers.list(params={"limit": 1}).auto_paging_iter()] == list(reversed(created))


def test_transfers_to_an_account_without_active_transfers_capability_are_refused(sdk):
    account = express_account(sdk)

    with pytest.raises(stripe.InvalidRequestError) as exc:
        sdk.v1.transfers.create(params={"amount": 100, "currency": "usd", "destination": account.id})

    assert exc.value.code == "insufficient_capabilities_for_transfer"
    assert sdk.v1.transfers.list().data == []


def test_a_transfer_beyond_the_available_balance_fails_with_balance_insufficient(sdk, fake_stripe):
    account = active_account(sdk, fake_stripe)
    fake_stripe.set_balance("usd", 500)

    with pytest.raises(stripe.InvalidRequestError) as exc:
        sdk.v1.transfers.create(params={"amount": 501, "currency": "usd", "destination": account.id})

    assert exc.value.code == "balance_insufficient"
    assert sdk.v1.balance.retrieve().available[0].amount == 500


def test_reversals_return_money_and_mark_the_transfer(sdk, fake_stripe):
    account = active_account(sdk, fake_stripe)
    transfer = sdk.v1.transfers.create(params={"amount": 1000, "currency": "usd", "destination": account.id})
    platform_before = sdk.v1.balance.retrieve().available[0].amount

    partial = sdk.v1.transfers.reversals.create(transfer.id, params={"amount": 300})
    rest = sdk.v1.transfers.reversals.create(transfer.id)

    assert isinstance(partial, stripe.TransferReversal)
    assert partial.transfer == transfer.id
    assert (partial.amount, rest.amount) == (300, 700)
    refreshed = sdk.v1.transfers.retrieve(transfer.id)
    assert (refreshed.amount_reversed, refreshed.reversed) == (1000, True)
    assert refreshed.reversals.total_count == 2
    assert sdk.v1.balance.retrieve().available[0].amount == platform_before + 1000
    with pytest.raises(stripe.InvalidRequestError):
        sdk.v1.transfers.reversals.create(transfer.id, params={"amount": 1})


def test_same_idempotency_key_returns_the_stored_response_and_other_parameters_are_an_error(sdk, fake_stripe):
    account = active_account(sdk, fake_stripe)
    params = {"amount": 250, "currency": "usd", "destination": account.id}

    first = sdk.v1.transfers.create(params=params, options={"idempotency_key": "k-1"})
    again = sdk.v1.transfers.create(params=params, options={"idempotency_key": "k-1"})
    with pytest.raises(stripe.IdempotencyError):
        sdk.v1.transfers.create(params={**params, "amount": 251}, options={"idempotency_key": "k-1"})

    assert again.id == first.id
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.last_response.headers
    assert len(sdk.v1.transfers.list().data) == 1


def test_a_started_request_keeps_its_error_under_the_key_but_validation_errors_do_not(sdk, fake_stripe):
    account = active_account(sdk, fake_stripe)
    fake_stripe.set_balance("usd", 10)
    params = {"amount": 50, "currency": "usd", "destination": account.id}
    with pytest.raises(stripe.InvalidRequestError):
        sdk.v1.transfers.create(params=params, options={"idempotency_key": "short"})
    fake_stripe.set_balance("usd", 1000)

    # Stripe stores the result of a request that started executing, errors included.
    with pytest.raises(stripe.InvalidRequestError) as replay:
        sdk.v1.transfers.create(params=params, options={"idempotency_key": "short"})
    assert replay.value.code == "balance_insufficient"
    assert replay.value.headers["Idempotent-Replayed"] == "true"

    # A request refused by validation is not stored: the same key with valid parameters then works.
    with pytest.raises(stripe.InvalidRequestError):
        sdk.v1.transfers.create(params={**params, "amount": 0}, options={"idempotency_key": "fresh"})
    assert sdk.v1.transfers.create(params=params, options={"idempotency_key": "fresh"}).amount == 50


def test_faults_decline_drop_and_rate_limit_as_armed(sdk, fake_stripe):
    account = active_account(sdk, fake_stripe)
    params = {"amount": 5, "currency": "usd", "destination": account.id}

    fake_stripe.add_fault("decline")
    with pytest.raises(stripe.CardError) as declined:
        sdk.v1.transfers.create(params=params)
    assert declined.value.code == "transfers_not_allowed"

    fake_stripe.add_fault("drop_after")
    with pytest.raises(stripe.APIConnectionError):
        sdk.v1.transfers.create(params=params, options={"idempotency_key": "dropped"})
    # The transfer was made before the connection dropped.
    assert len(sdk.v1.transfers.list().data) == 1

    fake_stripe.add_fault("rate_limit", count=2, retry_after=1.5)
    for _ in range(2):
        with pytest.raises(stripe.RateLimitError) as limited:
            sdk.v1.balance.retrieve()
    assert limited.value.http_status == 429
    assert limited.value.headers["Retry-After"] == "1.5"
    assert sdk.v1.balance.retrieve().object == "balance"  # the fault is used up


def test_the_token_bucket_answers_429_above_the_configured_rate(sdk, fake_stripe):
    fake_stripe.set_rate_limit(2, burst=3)

    outcomes = []
    for _ in range(6):
        try:
            sdk.v1.balance.retrieve()
            outcomes.append("ok")
        except stripe.RateLimitError:
            outcomes.append("429")

    assert outcomes[:3] == ["ok", "ok", "ok"]  # the burst
    assert "429" in outcomes[3:]
    time.sleep(0.6)  # a token refills at 2 per second
    assert sdk.v1.balance.retrieve().object == "balance"


def test_account_links_are_single_use_and_expire(sdk, fake_stripe):
    account = express_account(sdk)
    link = sdk.v1.account_links.create(params={
        "account": account.id, "type": "account_onboarding",
        "refresh_url": "http://platform.test/refresh", "return_url": "http://platform.test/return"})
    assert isinstance(link, stripe.AccountLink)
    assert link.expires_at - link.created == 300

    page = requests.get(link.url, allow_redirects=False, timeout=5)
    again = requests.get(link.url, allow_redirects=False, timeout=5)

    assert page.status_code == 200
    assert account.id in page.text
    assert again.status_code == 303
    assert again.headers["Location"] == "http://platform.test/refresh"

    fake_stripe.fake.link_ttl_seconds = -1  # links made now are already past their expiry
    try:
        stale = sdk.v1.account_links.create(params={
            "account": account.id, "type": "account_onboarding",
            "refresh_url": "http://platform.test/refresh", "return_url": "http://platform.test/return"})
        expired = requests.get(stale.url, allow_redirects=False, timeout=5)
    finally:
        fake_stripe.fake.link_ttl_seconds = 300
    assert expired.status_code == 303
    assert expired.headers["Location"] == "http://platform.test/refresh"


def test_the_hosted_onboarding_form_completes_the_account_and_returns(sdk):
    account = express_account(sdk)
    link = sdk.v1.account_links.create(params={
        "account": account.id, "type": "account_onboarding",
        "refresh_url": "http://platform.test/refresh", "return_url": "http://platform.test/return"})
    page = requests.get(link.url, timeout=5).text
    session = page.split('name="session" value="')[1].split('"')[0]

    done = requests.post(link.url, data={"session": session, "action": "complete"}, allow_redirects=False, timeout=5)

    assert done.status_code == 303
    assert done.headers["Location"] == "http://platform.test/return"
    account = sdk.v1.accounts.retrieve(account.id)
    assert account.capabilities.transfers == "active"
    assert account.details_submitted
    assert account.payouts_enabled
    assert account.requirements.currently_due == []
    assert account.requirements.disabled_reason is None
    assert account.external_accounts.data[0].object == "bank_account"


def test_the_test_control_api_over_http(sdk, fake_stripe):
    base = fake_stripe.url + "/_fake"
    account = express_account(sdk)

    assert requests.post(f"{base}/accounts/{account.id}/complete_onboarding", json={"pending_verification": True},
                         timeout=5).json()["capabilities"]["transfers"] == "pending"
    assert requests.post(f"{base}/accounts/{account.id}/activate", timeout=5).json()["capabilities"]["transfers"] \
        == "active"
    restricted = requests.post(f"{base}/accounts/{account.id}/restrict",
                               json={"disabled_reason": "rejected.fraud", "currently_due": []}, timeout=5).json()
    assert restricted["requirements"]["disabled_reason"] == "rejected.fraud"
    assert requests.post(f"{base}/faults", json={"kind": "explode"}, timeout=5).status_code == 400
    assert requests.post(f"{base}/faults", data={"kind": "server_error", "path": "/v1/balance"},
                         timeout=5).status_code == 200
    with pytest.raises(stripe.APIError):
        sdk.v1.balance.retrieve()
    assert requests.post(f"{base}/balance", json={"currency": "usd", "amount": 77}, timeout=5).ok
    assert sdk.v1.balance.retrieve().available[0].amount == 77
    logged = requests.get(f"{base}/requests", timeout=5).json()["requests"]
    assert [r["status"] for r in logged if r["path"] == "/v1/balance"] == [500, 200]
    assert requests.post(f"{base}/reset", timeout=5).json() == {"reset": True}
    assert sdk.v1.accounts.list().data == []


class _Receiver(BaseHTTPRequestHandler):
    """A webhook receiver that refuses the first delivery, then accepts (to watch the fake retry)."""

    received: list[tuple[bytes, str]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((body, self.headers["Stripe-Signature"]))
        status = 500 if len(type(self).received) == 1 else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_webhooks_are_signed_like_stripes_and_retried_until_accepted(sdk, fake_stripe):
    _Receiver.received = []
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        endpoint = sdk.v1.webhook_endpoints.create(params={
            "url": f"http://127.0.0.1:{receiver.server_address[1]}/hook", "enabled_events": ["account.updated"],
            "connect": True})
        account = express_account(sdk)

        fake_stripe.complete_onboarding(account.id)
        assert fake_stripe.deliverer.wait_idle(timeout=10)
    finally:
        receiver.shutdown()

    assert endpoint.secret.startswith("whsec_")
    assert len(_Receiver.received) == 2  # refused once, delivered again
    body, header = _Receiver.received[-1]
    # The SDK's own verifier accepts the signature: same scheme as Stripe's.
    event = stripe.Webhook.construct_event(body.decode(), header, endpoint.secret)
    assert event.type == "account.updated"
    assert event.account == account.id
    assert event.data.object.capabilities.transfers == "active"
    assert event.data.previous_attributes.capabilities.transfers == "inactive"
    timestamp, signature = (part.split("=", 1)[1] for part in header.split(","))
    expected = hmac.new(endpoint.secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert signature == expected
    attempts = [d for d in fake_stripe.delivery_log if d["event"] == event.id]
    assert [(d["attempt"], d["status"]) for d in attempts] == [(1, 500), (2, 200)]


def test_platform_events_go_to_platform_endpoints_and_account_events_to_connect_endpoints(sdk, fake_stripe):
    account = express_account(sdk)
    fake_stripe.complete_onboarding(account.id)
    sdk.v1.transfers.create(params={"amount": 10, "currency": "usd", "destination": account.id})

    platform_events = [e.type for e in sdk.v1.events.list().data]
    account_events = [e.type for e in sdk.v1.events.list(options={"stripe_account": account.id}).data]

    assert platform_events == ["transfer.created"]
    assert account_events == ["account.updated"]
    event_id = sdk.v1.events.list(options={"stripe_account": account.id}).data[0].id
    with pytest.raises(stripe.InvalidRequestError):
        sdk.v1.events.retrieve(event_id)  # not a platform event
    assert sdk.v1.events.retrieve(event_id, options={"stripe_account": account.id}).account == account.id


def test_connected_account_payouts_succeed_or_fail_with_events(sdk, fake_stripe):
    account = active_account(sdk, fake_stripe)
    sdk.v1.transfers.create(params={"amount": 900, "currency": "usd", "destination": account.id})

    paid = fake_stripe.simulate_payout(account.id, amount=400)
    failed = fake_stripe.simulate_payout(account.id, amount=500, outcome="failed", failure_code="no_account")

    assert sdk.v1.payouts.retrieve(paid["id"], options={"stripe_account": account.id}).status == "paid"
    failed_payout = sdk.v1.payouts.retrieve(failed["id"], options={"stripe_account": account.id})
    assert (failed_payout.status, failed_payout.failure_code) == ("failed", "no_account")
    # A failed payout's money goes back to the account's balance.
    assert sdk.v1.balance.retrieve(options={"stripe_account": account.id}).available[0].amount == 500
    types = [e.type for e in sdk.v1.events.list(options={"stripe_account": account.id}).data]
    assert types.count("payout.paid") == 1
    assert types.count("payout.failed") == 1


def test_the_state_file_survives_a_restart(tmp_path):
    path = tmp_path / "fake.json"
    first = FakeStripeServer(port=0, state_path=path).start()
    try:
        client = stripe.StripeClient("sk_test_any", base_addresses={"api": first.url}, max_network_retries=0)
        account_id = client.v1.accounts.create(params={"type": "express",
                                                       "capabilities": {"transfers": {"requested": True}}}).id
    finally:
        first.stop()

    second = FakeStripeServer(port=0, state_path=path).start()
    try:
        client = stripe.StripeClient("sk_test_any", base_addresses={"api": second.url}, max_network_retries=0)
        assert client.v1.accounts.retrieve(account_id).id == account_id
    finally:
        second.stop()
    assert json.loads(path.read_text())["objects"][account_id]["object"] == "account"


def test_sign_payload_matches_the_sdk_verifier():
    payload = json.dumps({"id": "evt_1", "object": "event"})
    header = sign_payload(payload, "whsec_abc")

    stripe.WebhookSignature.verify_header(payload, header, "whsec_abc", tolerance=300)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(payload, header, "whsec_other", tolerance=300)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(payload, sign_payload(payload, "whsec_abc",
                                                                    timestamp=int(time.time()) - 301),
                                              "whsec_abc", tolerance=300)
