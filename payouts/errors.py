"""Typed refusals of the payouts services. Each names the field at fault, so a form, a page or the API can
show it beside the input; nothing was written when one is raised."""

from __future__ import annotations


class PayoutError(Exception):
    """Base of every refusal by the payout-run services."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field

    def as_dict(self) -> dict[str, list[str]]:
        """The error in Django/DRF's ``{field: [messages]}`` shape."""
        return {self.field or "non_field_errors": [self.message]}


class PayoutValidationError(PayoutError, ValueError):
    """Malformed input: a bad currency, a date out of range, a missing user."""


class PayoutRunStateError(PayoutError):
    """The run is not in a state that allows this transition (approving a draft, executing a cancelled run)."""


class MakerCheckerError(PayoutError):
    """The approver is the run's creator, or not a finance user: two different people must agree."""


class PayoutIntegrityError(PayoutError):
    """Stripe's answer does not match the payout (amount, currency, destination): nothing is booked."""


class StatementError(PayoutError):
    """A statement cannot be issued (its lines would not add up, or the period is out of order)."""


class StatementImmutableError(StatementError, PermissionError):
    """An attempt to change or delete an issued statement."""
