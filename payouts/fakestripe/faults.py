"""Faults and rate limits the test-control API arms, to watch the platform cope with Stripe misbehaving."""

from __future__ import annotations

import time
from dataclasses import dataclass

from payouts.fakestripe.errors import FakeStripeError

# Faults the test-control API can arm. "Before" faults answer without executing; "execution" faults make a
# started request fail (Stripe keeps that result under the idempotency key); drop_after executes, stores the
# answer, then closes the connection without sending it.
FAULT_KINDS = {
    "rate_limit": "before",
    "server_error": "before",
    "drop_before": "before",
    "decline": "execution",
    "insufficient_funds": "execution",
    "drop_after": "after",
}
FAULT_DEFAULT_TARGET = {
    "decline": ("POST", "/v1/transfers"),
    "insufficient_funds": ("POST", "/v1/transfers"),
    "drop_after": ("POST", "/v1/transfers"),
}


@dataclass
class Fault:
    kind: str
    remaining: int
    method: str | None = None
    path: str | None = None
    status: int | None = None
    code: str | None = None
    message: str | None = None
    retry_after: float | None = None

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (self.path is None or self.path == path)


class TokenBucket:
    """``rate`` requests per second on average, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: int):
        self.rate = rate
        self.burst = max(1, burst)
        self.tokens = float(self.burst)
        self.updated = time.monotonic()

    def take(self) -> float | None:
        """None when the request may go; else the seconds until a token is free."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return None
        return (1 - self.tokens) / self.rate


def rate_limited(*, retry_after: float | None, wait: float | None) -> FakeStripeError:
    headers = {"Stripe-Rate-Limited-Reason": "global-rate", "Stripe-Should-Retry": "true"}
    if retry_after is not None:
        headers["Retry-After"] = f"{retry_after:g}"
    message = "Request rate limit exceeded. You can learn more about rate limits here https://stripe.com/docs/rate-limits."
    if wait is not None:
        message += f" (fake: next request possible in {wait:.3f}s)"
    return FakeStripeError(429, message, code="rate_limit", headers=headers)
