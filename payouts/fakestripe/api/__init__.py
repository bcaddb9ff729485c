"""The /v1 endpoints the platform uses, with Stripe's parameters, validation, side effects and events."""

from __future__ import annotations

# Importing the endpoint modules registers their routes.
from payouts.fakestripe.api import connect, events, money  # noqa: F401
from payouts.fakestripe.api._routing import route

__all__ = ["route"]
