"""Our Stripe client against the fake server: idempotency, retries with backoff, typed failures.

Only our own seam is patched: ``stripe_client._sleep``, so that backoff delays are recorded instead of
slept. Everything else is real: the SDK, HTTP, the fake's idempotency store and faults.
"""

from __future__ import annotations

import random
import threading

import pytest
import stripe
from django.conf import settings

from payouts import stripe_client


@pytest.fixture
def sleeps(monkeypatch):
    """The delays the retry loop asked for (not slept: the fake answers at once)."""
    recorded: list[float] = []
    monkeypatch.setattr(stripe_client, "_sleep", recorded.append)
    return recorded


@pytest.fixture
def destination(fake_stripe):
    account = stripe_client.account_create(contributor_id=1)
    fake_stripe.complete_onboarding(account.id)
    return account.id


def send(destination: str, *, payout_id: int = 501, amount_minor: int = 1250, **kwargs):
    return stripe_client.transfer_create(payout_id=payout_id, amount_minor=amount_minor, currency="USD",
                                         destination=destination, transfer_group="run-3",
                                         metadata={"run_id": 3}, **kwargs)


def transfer_requests(fake):
    return [r for r in fake.request_log if r["method"] == "POST" and r["path"] == "/v1/transfers"]


def test_the_client_uses_the_pinned_version_and_the_configured_address(fake_stripe):
    balance = stripe_client.balance_retrieve()

    assert isinstance(balance, stripe.Balance)
    assert balance.last_response.headers["Stripe-Version"] == settings.STRIPE_API_VERSION
    assert fake_stripe.request_log[-1]["path"] == "/v1/balance"


def test_the_pinned_api_version_is_the_one_the_installed_sdk_is_built_for():
    from stripe._api_version import _ApiVersion

    # The SDK's typed objects describe exactly this version; a mismatch after an SDK upgrade fails here.
    assert settings.STRIPE_API_VERSION == _ApiVersion.CURRENT


def test_account_creation_is_idempotent_per_contributor(fake_stripe):
    first = stripe_client.account_create(contributor_id=77, country="fr")
    second = stripe_client.account_create(contributor_id=77, country="fr")

    assert second.id == first.id
    assert second.last_response.headers["Idempotent-Replayed"] == "true"
    assert first.controller.stripe_dashboard.type == "express"
    assert first.capabilities.transfers == "inactive"
    assert first.metadata["contributor_id"] == "77"
    assert [r["idempotency_key"] for r in fake_stripe.request_log] == ["account-create:77"] * 2


def test_a_transfer_carries_the_payout_key_and_replays_instead_of_paying_twice(fake_stripe, destination):
    first = send(destination)
    again = send(destination)

    assert isinstance(first, stripe.Transfer)
    assert again.id == first.id
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert (first.amount, first.currency, first.transfer_group) == (1250, "usd", "run-3")
    assert first.metadata.to_dict() == {"payout_id": "501", "run_id": "3"}
    assert [r["idempotency_key"] for r in transfer_requests(fake_stripe)] == ["transfer:501", "transfer:501"]
    assert len(list(stripe_client.transfer_list(transfer_group="run-3"))) == 1


def test_concurrent_sends_of_one_payout_make_one_transfer(fake_stripe, destination):
    # A double-clicked "execute" or two workers racing on the same payout, at the same moment.
    results: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            results.append(send(destination, payout_id=777).id)
        except BaseException as exc:  # collected, so the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert len(results) == 8
    assert len(set(results)) == 1
    assert [t.id for t in stripe_client.transfer_list(transfer_group="run-3")] == results[:1]
    assert sum(1 for r in transfer_requests(fake_stripe) if r["replayed"]) == 7


def test_reusing_a_payout_key_with_other_parameters_is_an_idempotency_conflict(fake_stripe, destination):
    send(destination, amount_minor=1250)

    with pytest.raises(stripe_client.IdempotencyConflict) as exc:
        send(destination, amount_minor=1300)

    assert exc.value.http_status == 400
    assert exc.value.idempotency_key == "transfer:501"
    assert "same parameters" in exc.value.message
    assert len(transfer_requests(fake_stripe)) == 2  # not retried: a bug of ours, not a passing fault
    assert [t.amount for t in stripe_client.transfer_list(transfer_group="run-3")] == [1250]


def test_a_connection_dropped_after_the_transfer_is_made_is_retried_into_exactly_one_transfer(
        fake_stripe, destination, sleeps):
    fake_stripe.add_fault("drop_after")

    transfer = send(destination, payout_id=900)

    requests_made = transfer_requests(fake_stripe)
    assert [(r["dropped"], r["replayed"]) for r in requests_made] == [(True, False), (False, True)]
    # Both attempts carried the same key, so Stripe answered the retry with the transfer it had made.
    assert {r["idempotency_key"] for r in requests_made} == {"transfer:900"}
    transfers = list(stripe_client.transfer_list(transfer_group="run-3"))
    assert [t.id for t in transfers] == [transfer.id]
    assert len(sleeps) == 1


def test_rate_limits_and_server_errors_are_retried_with_backoff_honouring_retry_after(
        fake_stripe, destination, sleeps):
    fake_stripe.add_fault("rate_limit", count=2, method="POST", path="/v1/transfers", retry_after=3)
    fake_stripe.add_fault("server_error", count=1, method="POST", path="/v1/transfers")

    transfer = send(destination)

    assert transfer.amount == 1250
    assert [r["status"] for r in transfer_requests(fake_stripe)] == [429, 429, 500, 200]
    assert {r["idempotency_key"] for r in transfer_requests(fake_stripe)} == {"transfer:501"}
    # Never sooner than Retry-After; the server error's delay is jittered below the exponential cap.
    assert sleeps[0] >= 3
    assert sleeps[1] >= 3
    assert 0 <= sleeps[2] <= stripe_client.BACKOFF_BASE_SECONDS * 2**2


def test_retries_are_bounded_and_end_in_stripe_unavailable(fake_stripe, destination, sleeps, settings):
    settings.STRIPE_MAX_RETRIES = 2
    fake_stripe.add_fault("drop_before", count=5, method="POST", path="/v1/transfers")

    with pytest.raises(stripe_client.StripeUnavailable) as exc:
        send(destination)

    assert exc.value.idempotency_key == "transfer:501"
    assert len(transfer_requests(fake_stripe)) == 3  # the first try and two retries
    assert len(sleeps) == 2
    assert list(stripe_client.transfer_list(transfer_group="run-3")) == []


def test_a_decline_is_a_typed_failure_with_stripes_message_and_is_not_retried(fake_stripe, destination, sleeps):
    fake_stripe.add_fault("decline", message="The bank refused this transfer.")

    with pytest.raises(stripe_client.TransferDeclined) as exc:
        send(destination)

    assert exc.value.message == "The bank refused this transfer."
    assert exc.value.code == "transfers_not_allowed"
    assert exc.value.http_status == 402
    assert exc.value.decline_code == "generic_decline"
    assert len(transfer_requests(fake_stripe)) == 1
    assert sleeps == []


def test_a_400_decline_code_is_also_a_decline(fake_stripe, destination):
    fake_stripe.add_fault("decline", status=400, code="transfers_not_allowed", message="Transfers are disabled.")

    with pytest.raises(stripe_client.TransferDeclined) as exc:
        send(destination)

    assert exc.value.http_status == 400
    assert exc.value.message == "Transfers are disabled."


def test_insufficient_funds_is_a_typed_failure_and_is_not_retried(fake_stripe, destination, sleeps):
    fake_stripe.set_balance("usd", 1000)

    with pytest.raises(stripe_client.InsufficientFunds) as exc:
        send(destination, amount_minor=1001)

    assert exc.value.code == "balance_insufficient"
    assert "insufficient available funds" in exc.value.message
    assert len(transfer_requests(fake_stripe)) == 1
    assert sleeps == []
    # A deliberate second attempt for the same payout, once funds arrived, uses a new key.
    fake_stripe.set_balance("usd", 5000)
    assert send(destination, amount_minor=1001, attempt=2).amount == 1001
    assert transfer_requests(fake_stripe)[-1]["idempotency_key"] == "transfer:501:2"


def test_a_destination_that_cannot_receive_transfers_is_account_not_ready(fake_stripe):
    account = stripe_client.account_create(contributor_id=5)

    with pytest.raises(stripe_client.AccountNotReady) as exc:
        send(account.id)

    assert exc.value.code == "insufficient_capabilities_for_transfer"
    assert exc.value.param == "destination"


def test_a_wrong_api_key_is_a_configuration_error_and_is_not_retried(fake_stripe, settings, sleeps):
    settings.STRIPE_SECRET_KEY = "sk_test_not_the_right_one"

    with pytest.raises(stripe_client.StripeConfigurationError) as exc:
        stripe_client.balance_retrieve()

    assert exc.value.http_status == 401
    assert sleeps == []
    assert len(fake_stripe.request_log) == 1


def test_a_missing_object_is_resource_missing(fake_stripe):
    with pytest.raises(stripe_client.ResourceMissing):
        stripe_client.transfer_retrieve(transfer_id="tr_doesnotexist")


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("amount_minor", {"amount_minor": 0}),
        ("amount_minor", {"amount_minor": 12.5}),
        ("amount_minor", {"amount_minor": True}),
        ("currency", {"currency": "dollars"}),
        ("destination", {"destination": "ba_123"}),
        ("transfer_group", {"transfer_group": ""}),
    ],
)
def test_bad_transfer_arguments_name_the_field_and_send_nothing(fake_stripe, field, kwargs):
    arguments = {"payout_id": 1, "amount_minor": 100, "currency": "usd", "destination": "acct_123",
                 "transfer_group": "run-1", **kwargs}

    with pytest.raises(ValueError, match=field):
        stripe_client.transfer_create(**arguments)

    assert fake_stripe.request_log == []


def test_backoff_is_full_jitter_under_an_exponential_cap():
    error = stripe.APIConnectionError("network down")
    random.seed(7)

    delays = [[stripe_client._backoff_delay(attempt, error) for _ in range(200)] for attempt in range(8)]

    for attempt, samples in enumerate(delays):
        cap = min(stripe_client.BACKOFF_CAP_SECONDS, stripe_client.BACKOFF_BASE_SECONDS * 2**attempt)
        assert all(0 <= d <= cap for d in samples)
        # Spread over the whole window (that is what keeps many retrying workers apart).
        assert max(samples) - min(samples) > cap * 0.8


def test_lists_follow_cursors_across_pages(fake_stripe, destination):
    ids = [send(destination, payout_id=n, amount_minor=100 + n).id for n in range(1, 6)]

    listed = list(stripe_client.transfer_list(transfer_group="run-3", page_size=2))

    assert [t.id for t in listed] == list(reversed(ids))
    pages = [r for r in fake_stripe.request_log if r["path"] == "/v1/transfers" and r["method"] == "GET"]
    assert len(pages) == 3


def test_balance_transactions_of_a_transfer_lead_back_to_its_group(fake_stripe, destination):
    transfer = send(destination)

    txns = list(stripe_client.balance_transaction_list(source=transfer.id, expand_source=True))

    assert [(t.type, t.amount) for t in txns] == [("transfer", -1250)]
    assert txns[0].source.transfer_group == "run-3"
    connected = list(stripe_client.balance_transaction_list(account_id=destination))
    assert [(t.type, t.amount) for t in connected] == [("payment", 1250)]


def test_rate_limits_have_their_own_longer_budget_of_short_retries(fake_stripe, destination, sleeps, settings,
                                                                    monkeypatch):
    # A run driving Stripe at its limit meets many 429s in a row; none may turn into a lost payout.
    settings.STRIPE_MAX_RETRIES = 2
    fake_stripe.add_fault("rate_limit", count=8, method="POST", path="/v1/transfers")

    transfer = send(destination)

    assert transfer.amount == 1250
    assert [r["status"] for r in transfer_requests(fake_stripe)] == [429] * 8 + [200]
    assert all(0 <= s <= stripe_client.RATE_LIMIT_BACKOFF_CAP_SECONDS for s in sleeps)

    # ... but that budget is bounded too, and an explicit max_retries (event processing) bounds 429s as well
    monkeypatch.setattr(stripe_client, "RATE_LIMIT_RETRIES", 3)
    fake_stripe.add_fault("rate_limit", count=10, method="POST", path="/v1/transfers")
    with pytest.raises(stripe_client.StripeUnavailable):
        send(destination, payout_id=502)
    fake_stripe.clear_faults()
    fake_stripe.add_fault("rate_limit", count=3, method="GET")
    with pytest.raises(stripe_client.StripeUnavailable):
        stripe_client.transfer_retrieve(transfer_id=transfer.id, max_retries=1)
