"""Celery tasks of the payouts app: thin ways in that load ids and call one service."""

from __future__ import annotations

import datetime as dt

from celery import shared_task

from payouts import stripe_client
from payouts.services import (
    payout_batch_send,
    payout_run_dispatch,
    payout_run_finalize,
    payout_runs_resume_stalled,
    payout_send,
    statements_issue_for_run,
    statements_issue_monthly,
    stripe_event_process,
    stripe_events_retry_pending,
)
from payouts.services.runs import utc_today


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


@shared_task(name="payouts.payout_run_dispatch")
def payout_run_dispatch_task(run_id: int) -> int:
    """Fan an executing run's unsent payouts out into batch tasks."""
    return payout_run_dispatch(run_id=run_id)


@shared_task(name="payouts.payout_batch_send")
def payout_batch_send_task(run_id: int, payout_ids: list[int]) -> dict:
    """Send a batch of payouts (a bounded pool of transfers in flight), then maybe finish the run."""
    return payout_batch_send(run_id=run_id, payout_ids=payout_ids)


@shared_task(
    name="payouts.payout_send",
    autoretry_for=(stripe_client.StripeUnavailable,),
    retry_backoff=5,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=8,
)
def payout_send_task(payout_id: int) -> str:
    """Send one payout (the same key on every retry: at most one transfer), then maybe finish its run."""
    payout = payout_send(payout_id=payout_id)
    payout_run_finalize(run_id=payout.run_id)
    return payout.status


@shared_task(name="payouts.payout_runs_resume_stalled")
def payout_runs_resume_stalled_task() -> list[int]:
    """Periodic: resume executing runs whose payouts wait too long (a crashed worker, Stripe down)."""
    return payout_runs_resume_stalled()


@shared_task(name="payouts.statements_issue_for_run")
def statements_issue_for_run_task(run_id: int) -> dict:
    """The statements of a run's paid payouts (after the run finished)."""
    return statements_issue_for_run(run=run_id)


@shared_task(name="payouts.statements_issue_monthly")
def statements_issue_monthly_task(month: str | None = None) -> dict:
    """Monthly: statements of the previous month (or ``month``, YYYY-MM) for contributors it did not pay."""
    if month:
        first = dt.date.fromisoformat(f"{month}-01")
    else:
        first = (utc_today().replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    return statements_issue_monthly(month=first)
