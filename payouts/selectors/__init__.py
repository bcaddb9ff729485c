"""Selectors of the payouts app: everything that reads. One module per subject, re-exported here."""

from __future__ import annotations

from payouts.selectors.ledger import (
    LedgerEntryFilter,
    ledger_account_balances,
    ledger_account_list,
    ledger_entry_get,
    ledger_entry_list,
    ledger_postings_for_export,
)
from payouts.selectors.runs import (
    payout_exclusion_list,
    payout_list,
    payout_run_get,
    payout_run_list,
    payout_run_progress,
    reconciliation_latest_by_run,
)
from payouts.selectors.statements import (
    StatementFileTampered,
    statement_file_bytes,
    statement_get_for_user,
    statement_list,
)
from payouts.selectors.stripe import (
    bank_payout_list,
    connected_account_get,
    connected_account_get_by_stripe_id,
    stripe_event_list,
    stripe_transfer_list,
)

__all__ = [
    "LedgerEntryFilter",
    "StatementFileTampered",
    "bank_payout_list",
    "connected_account_get",
    "connected_account_get_by_stripe_id",
    "ledger_account_balances",
    "ledger_account_list",
    "ledger_entry_get",
    "ledger_entry_list",
    "ledger_postings_for_export",
    "payout_exclusion_list",
    "payout_list",
    "payout_run_get",
    "payout_run_list",
    "payout_run_progress",
    "reconciliation_latest_by_run",
    "statement_file_bytes",
    "statement_get_for_user",
    "statement_list",
    "stripe_event_list",
    "stripe_transfer_list",
]
