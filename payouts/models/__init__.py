"""Models of the payouts app: Stripe mirrors, payout runs and their payouts, statements, reconciliations."""

from __future__ import annotations

from payouts.models.runs import Payout, PayoutExclusion, PayoutRun, PayoutRunReconciliation
from payouts.models.statements import Statement, StatementEntry, statement_storage
from payouts.models.stripe import BankPayout, ConnectedAccount, StripeEvent, StripeTransfer

__all__ = [
    "BankPayout",
    "ConnectedAccount",
    "Payout",
    "PayoutExclusion",
    "PayoutRun",
    "PayoutRunReconciliation",
    "Statement",
    "StatementEntry",
    "StripeEvent",
    "StripeTransfer",
    "statement_storage",
]
