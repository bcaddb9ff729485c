"""Celery tasks of the payouts app: thin ways in that load ids and call one service."""

from __future__ import annotations

from celery import shared_task

from payouts import stripe_client
from payouts.services import stripe_event_process, stripe_events_retry_pending


@shared_task(
    name="payouts.stripe_event_process",
    autoretry_for=(stripe_client.StripeUnavailable,),
    retry_backoff=5,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=8,
)
def stripe_event_process_task(event_id: str) -> str:
    """Process one stored Stripe event; Stripe being unreachable is retried with backoff."""
    return stripe_event_process(event_id=event_id).status


@shared_task(name="payouts.stripe_events_retry_pending")
def stripe_events_retry_pending_task() -> int:
    """Periodic: queue again events whose processing never ran or failed."""
    return stripe_events_retry_pending()
