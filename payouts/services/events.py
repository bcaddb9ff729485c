"""Stripe webhook events: verified, stored once by id, processed exactly once from a fresh read of Stripe.

The endpoint only verifies and stores (so Stripe gets its 2xx fast); a Celery task processes. Stripe
sends events at least once and in no particular order, so processing never trusts the event's snapshot:
each handler re-reads the object from Stripe, and the mirrors keep whichever read is newest.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from payouts import stripe_client
from payouts.models import StripeEvent
from payouts.services._util import from_unix_required
from payouts.services.accounts import connected_account_apply
from payouts.services.mirrors import bank_payout_apply, stripe_transfer_apply
from payouts.services.reversals import payout_apply_transfer

logger = logging.getLogger(__name__)

# Processing reads Stripe with few retries of its own: a failure releases the worker, and the Celery task
# retries later with backoff instead of sleeping here.
FETCH_RETRIES = 1
MAX_EVENT_ATTEMPTS = 10
_DONE = (StripeEvent.Status.PROCESSED, StripeEvent.Status.IGNORED)


class EventIgnored(Exception):
    """The event is valid but not for us (an account that is not a contributor's, a platform payout...)."""


@dataclass(frozen=True)
class EventHandler:
    """How one event type is processed.

    ``fetch(event) -> dict``: read the object's CURRENT state from Stripe (runs outside any transaction).
    ``apply(*, event, current, read_at) -> str``: store it, inside the transaction that marks the event
    processed (so the effect and the "processed" mark commit together, exactly once); returns a short
    outcome for the event row, or raises EventIgnored.
    """

    fetch: Callable[[StripeEvent], dict[str, Any]]
    apply: Callable[..., str]


def _fetch_account(event: StripeEvent) -> dict[str, Any]:
    account_id = event.account or event.object_id
    return stripe_client.account_retrieve(account_id=account_id, max_retries=FETCH_RETRIES).to_dict()


def _apply_account(*, event: StripeEvent, current: dict[str, Any], read_at: dt.datetime) -> str:
    row = connected_account_apply(data=current, read_at=read_at, reason=f"Stripe event {event.event_id}")
    if row is None:
        raise EventIgnored(f"account {current.get('id')} belongs to no contributor")
    return f"account {row.stripe_account_id}: {row.payout_status}"


def _fetch_transfer(event: StripeEvent) -> dict[str, Any]:
    transfer = stripe_client.transfer_retrieve(transfer_id=event.object_id, max_retries=FETCH_RETRIES).to_dict()
    reversals = transfer.get("reversals") or {}
    if reversals.get("has_more"):
        # Stripe lists ten reversals inline: read them all, so every one is booked.
        listed = stripe_client.transfer_reversal_list(transfer_id=transfer["id"], max_retries=FETCH_RETRIES)
        transfer["reversals"] = {**reversals, "data": [r.to_dict() for r in listed], "has_more": False}
    return transfer


def _apply_transfer(*, event: StripeEvent, current: dict[str, Any], read_at: dt.datetime) -> str:
    # Mirror the transfer, then let its payout follow: a payout still sending is booked from here (its
    # worker died after Stripe answered), and each reversal is booked once (payouts/services/reversals.py).
    reason = f"Stripe event {event.event_id}"
    row = stripe_transfer_apply(data=current, read_at=read_at, reason=reason)
    outcome = payout_apply_transfer(transfer=current, read_at=read_at, reason=reason)
    return f"transfer {row.stripe_transfer_id}: {row.amount_minor} reversed {row.amount_reversed_minor}; {outcome}"


def _fetch_payout(event: StripeEvent) -> dict[str, Any]:
    if not event.account:
        raise EventIgnored("a payout of the platform's own balance, not of a contributor's account")
    return stripe_client.payout_retrieve(payout_id=event.object_id, account_id=event.account,
                                         max_retries=FETCH_RETRIES).to_dict()


def _apply_payout(*, event: StripeEvent, current: dict[str, Any], read_at: dt.datetime) -> str:
    row = bank_payout_apply(data=current, account_id=event.account, read_at=read_at,
                            reason=f"Stripe event {event.event_id}")
    if row is None:
        raise EventIgnored(f"account {event.account} belongs to no contributor")
    return f"bank payout {row.stripe_payout_id}: {row.status}"


# The dispatch table: event type -> handler. Types not listed are stored and marked ignored.
EVENT_HANDLERS: dict[str, EventHandler] = {
    "account.updated": EventHandler(fetch=_fetch_account, apply=_apply_account),
    "transfer.created": EventHandler(fetch=_fetch_transfer, apply=_apply_transfer),
    "transfer.updated": EventHandler(fetch=_fetch_transfer, apply=_apply_transfer),
    "transfer.reversed": EventHandler(fetch=_fetch_transfer, apply=_apply_transfer),
    "payout.paid": EventHandler(fetch=_fetch_payout, apply=_apply_payout),
    "payout.failed": EventHandler(fetch=_fetch_payout, apply=_apply_payout),
}


def stripe_webhook_verify(*, payload: bytes, signature_header: str | None) -> None:
    """Raise stripe_client.WebhookSignatureInvalid unless the raw body carries a valid, fresh signature."""
    stripe_client.webhook_verify(payload=payload, signature_header=signature_header)


def stripe_event_record(*, event: dict[str, Any], payload: dict[str, Any]) -> tuple[StripeEvent, bool]:
    """Store a verified event once; the first time, queue its processing. Returns (row, created)."""
    with transaction.atomic():
        row, created = StripeEvent.objects.get_or_create(
            event_id=event["id"],
            defaults={
                "type": event["type"],
                "account": event.get("account") or "",
                "api_version": event.get("api_version") or "",
                "stripe_created_at": from_unix_required(event["created"]),
                "livemode": bool(event.get("livemode")),
                "payload": payload,
            },
        )
        if created:
            # After commit, so the worker finds the row; robust, so a broker hiccup never turns into a
            # failed webhook (the periodic sweep picks the event up instead).
            transaction.on_commit(lambda: _enqueue(row.event_id), robust=True)
    return row, created


def _enqueue(event_id: str) -> None:
    from payouts.tasks import stripe_event_process_task

    stripe_event_process_task.delay(event_id)


def _record_failure(event: StripeEvent, exc: BaseException) -> None:
    StripeEvent.objects.filter(pk=event.pk).exclude(status__in=_DONE).update(
        status=StripeEvent.Status.FAILED, attempts=F("attempts") + 1,
        processing_error=f"{type(exc).__name__}: {exc}"[:4000],
    )


def stripe_event_process(*, event_id: str) -> StripeEvent:
    """Process one stored event exactly once (a processed or ignored event is left alone)."""
    event = StripeEvent.objects.get(event_id=event_id)
    if event.status in _DONE:
        return event
    handler = EVENT_HANDLERS.get(event.type)
    read_at = timezone.now()
    current: dict[str, Any] | None = None
    ignored: str | None = None
    if handler is None:
        ignored = f"no handler for {event.type}"
    else:
        try:
            current = handler.fetch(event)
        except EventIgnored as exc:
            ignored = str(exc)
        except stripe_client.ResourceMissing as exc:
            ignored = f"the object no longer exists on Stripe ({exc.message})"
        except Exception as exc:
            _record_failure(event, exc)
            raise
    try:
        with transaction.atomic():
            locked = StripeEvent.objects.select_for_update().get(pk=event.pk)
            if locked.status in _DONE:
                return locked  # another worker finished it first
            status = StripeEvent.Status.PROCESSED
            if ignored is None and handler is not None:
                try:
                    outcome = handler.apply(event=locked, current=current, read_at=read_at)
                except EventIgnored as exc:
                    ignored = str(exc)
            if ignored is not None:
                status, outcome = StripeEvent.Status.IGNORED, ignored
            locked.status = status
            locked.outcome = outcome[:300]
            locked.processing_error = ""
            locked.attempts = F("attempts") + 1
            locked.processed_at = timezone.now()
            locked.save(update_fields=["status", "outcome", "processing_error", "attempts", "processed_at"])
    except Exception as exc:
        _record_failure(event, exc)
        raise
    locked.refresh_from_db()
    logger.info("stripe event %s (%s) %s: %s", locked.event_id, locked.type, locked.status, locked.outcome)
    return locked


def stripe_events_retry_pending(*, older_than: dt.timedelta = dt.timedelta(minutes=2)) -> int:
    """Queue again the events stuck pending or failed (a lost task, a broker outage); returns how many."""
    cutoff = timezone.now() - older_than
    stuck = list(
        StripeEvent.objects.filter(
            Q(status=StripeEvent.Status.PENDING) | Q(status=StripeEvent.Status.FAILED),
            received_at__lt=cutoff, attempts__lt=MAX_EVENT_ATTEMPTS,
        ).values_list("event_id", flat=True)[:500]
    )
    for event_id in stuck:
        try:
            _enqueue(event_id)
        except Exception:  # in-process mode runs the task here: one bad event must not stop the sweep
            logger.exception("stripe event %s: retry failed", event_id)
    return len(stuck)
