"""Webhook processing in a real Celery worker process, through the real broker."""

from __future__ import annotations

import json

import pytest
import stripe

from contributors.models import Contributor
from payouts.fakestripe import sign_payload
from payouts.models import StripeEvent
from payouts.services import connected_account_get_or_create
from tests.conftest import FAKE_STRIPE_KEY
from tests.payouts.conftest import wait_for

SECRET = "whsec_worker_test"


@pytest.mark.celery_worker
def test_a_webhook_is_answered_at_once_and_processed_by_a_worker(
        celery_worker_factory, fake_stripe, make_contributor, client, settings):
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    # The worker is another process: it learns where the fake Stripe is from its environment.
    worker = celery_worker_factory(extra_env={
        "STRIPE_API_BASE": fake_stripe.url, "STRIPE_CONNECT_BASE": fake_stripe.url,
        "STRIPE_SECRET_KEY": FAKE_STRIPE_KEY, "STRIPE_WEBHOOK_SECRET": SECRET, "PYTHONUNBUFFERED": "1",
    })
    contributor = make_contributor()
    account = connected_account_get_or_create(contributor=contributor)
    fake_stripe.complete_onboarding(account.stripe_account_id)
    sdk = stripe.StripeClient(FAKE_STRIPE_KEY, base_addresses={"api": fake_stripe.url}, max_network_retries=0)
    event = sdk.v1.events.list(options={"stripe_account": account.stripe_account_id}).data[0].to_dict()
    body = json.dumps(event).encode()
    reads_before = len(fake_stripe.request_log)

    response = client.post("/webhooks/stripe/", data=body, content_type="application/json",
                           HTTP_STRIPE_SIGNATURE=sign_payload(body, SECRET))

    # The endpoint only stored the event: no Stripe call happened in the web process.
    assert response.status_code == 200
    assert len(fake_stripe.request_log) == reads_before
    processed = wait_for(lambda: StripeEvent.objects.filter(event_id=event["id"], status="processed").first(),
                         timeout=30, what="the worker to process the event")
    assert processed.attempts == 1
    assert Contributor.objects.get(pk=contributor.pk).payout_status == "active"
    # The worker re-read the account from Stripe, and says so in its log.
    assert any(r["path"] == f"/v1/accounts/{account.stripe_account_id}" for r in fake_stripe.request_log[reads_before:])
    assert "payouts.stripe_event_process" in worker.log()
