"""Services of the payouts app: everything that writes. One module per subject; the public functions are
re-exported here so callers write ``from payouts.services import payout_run_create``."""

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
from payouts.services.execution import (
    payout_batch_send,
    payout_entry_key,
    payout_run_counts,
    payout_run_dispatch,
    payout_run_finalize,
    payout_send,
    payout_settle,
)
from payouts.services.mirrors import (
    bank_payout_apply,
    stripe_transfer_apply,
    stripe_transfer_sync,
)
from payouts.services.reconciliation import Mismatch, ReconciliationResult, payout_run_reconcile
from payouts.services.reversals import payout_apply_transfer, payout_return_key
from payouts.services.runs import (
    payout_run_approve,
    payout_run_can_approve,
    payout_run_cancel,
    payout_run_create,
    payout_run_execute,
    payout_run_release_failed,
    payout_run_resume,
    payout_run_retry_failed,
    payout_run_submit,
    payout_run_threshold,
    payout_runs_resume_stalled,
)
from payouts.services.statements import (
    statement_issue_for_payout,
    statement_issue_monthly,
    statements_issue_for_run,
    statements_issue_monthly,
)
from payouts.services.webhook_endpoints import stripe_webhook_endpoints_register

__all__ = [
    "EVENT_HANDLERS",
    "EventHandler",
    "EventIgnored",
    "Mismatch",
    "ReconciliationResult",
    "bank_payout_apply",
    "connected_account_apply",
    "connected_account_get_or_create",
    "connected_account_onboarding_link",
    "connected_account_sync",
    "payout_apply_transfer",
    "payout_batch_send",
    "payout_entry_key",
    "payout_return_key",
    "payout_run_approve",
    "payout_run_can_approve",
    "payout_run_cancel",
    "payout_run_counts",
    "payout_run_create",
    "payout_run_dispatch",
    "payout_run_execute",
    "payout_run_finalize",
    "payout_run_reconcile",
    "payout_run_release_failed",
    "payout_run_resume",
    "payout_run_retry_failed",
    "payout_run_submit",
    "payout_run_threshold",
    "payout_runs_resume_stalled",
    "payout_send",
    "payout_settle",
    "statement_issue_for_payout",
    "statement_issue_monthly",
    "statements_issue_for_run",
    "statements_issue_monthly",
    "stripe_event_process",
    "stripe_event_record",
    "stripe_events_retry_pending",
    "stripe_transfer_apply",
    "stripe_transfer_sync",
    "stripe_webhook_endpoints_register",
    "stripe_webhook_verify",
]
