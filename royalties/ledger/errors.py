"""Typed errors of the ledger. Each names the field at fault, so an API or a form can show it beside it."""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every refusal by the ledger; nothing was written when one is raised."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field

    def as_dict(self) -> dict[str, list[str]]:
        """The error in Django/DRF's ``{field: [messages]}`` shape."""
        return {self.field or "non_field_errors": [self.message]}


class LedgerValidationError(LedgerError, ValueError):
    """Malformed input: a wrong type, a missing account, an amount that is not an integer."""


class UnbalancedEntryError(LedgerError):
    """The postings of an entry do not sum to zero in some currency."""


class IdempotencyConflictError(LedgerError):
    """The idempotency key was already used for an entry with different content."""


class PeriodClosedError(LedgerError):
    """The period is closed: nothing more can be posted to it."""


class ReversalError(LedgerError):
    """The entry cannot be reversed (already reversed, or itself a reversal)."""


class TermsError(LedgerError):
    """No terms are in force, or new terms would rewrite a period that is already accrued or closed."""


class ImmutableRecordError(LedgerError, PermissionError):
    """An attempt to change or delete an append-only ledger row."""

    def __init__(self, message: str):
        super().__init__(message)
