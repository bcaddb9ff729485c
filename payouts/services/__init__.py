"""Services of the payouts app: everything that writes. One module per subject; the public functions are
re-exported here so callers write ``from payouts.services import connected_account_sync``."""

from __future__ import annotations

from payouts.services.accounts import (
    connected_account_apply,
    connected_account_get_or_create,
    connected_account_onboarding_link,
    connected_account_sync,
)
from payouts.services.events import (
    EVENT_HANDLERS,
    EventHandler,
    EventIgnored,
    stripe_event_process,
    stripe_event_record,
    stripe_events_retry_pending,
    stripe_webhook_verify,
)
from payouts.services.mirrors import (
    bank_payout_apply,
    stripe_transfer_apply,
    stripe_transfer_sync,
)
from payouts.services.webhook_endpoints import stripe_webhook_endpoints_register

__all__ = [
    "EVENT_HANDLERS",
    "EventHandler",
    "EventIgnored",
    "bank_payout_apply",
    "connected_account_apply",
    "connected_account_get_or_create",
    "connected_account_onboarding_link",
    "connected_account_sync",
    "stripe_event_process",
    "stripe_event_record",
    "stripe_events_retry_pending",
    "stripe_transfer_apply",
    "stripe_transfer_sync",
    "stripe_webhook_endpoints_register",
    "stripe_webhook_verify",
]
