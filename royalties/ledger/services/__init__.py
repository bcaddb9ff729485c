"""Every write to the ledger goes through these services (keyword-only, typed, one transaction each)."""

from __future__ import annotations

from royalties.ledger.services.accounts import account_get_or_create, accounts_for_contributors
from royalties.ledger.services.accruals import ACCRUAL_COLUMNS, OWNERSHIP_COLUMN, accrual_correct, accrual_post
from royalties.ledger.services.entries import PostingLine, journal_entry_post, journal_entry_reverse
from royalties.ledger.services.holds import hold_place, hold_release
from royalties.ledger.services.periods import period_close, period_get_or_create
from royalties.ledger.services.programs import program_terms_create, royalty_program_create

__all__ = [
    "ACCRUAL_COLUMNS",
    "OWNERSHIP_COLUMN",
    "PostingLine",
    "account_get_or_create",
    "accounts_for_contributors",
    "accrual_correct",
    "accrual_post",
    "hold_place",
    "hold_release",
    "journal_entry_post",
    "journal_entry_reverse",
    "period_close",
    "period_get_or_create",
    "program_terms_create",
    "royalty_program_create",
]
