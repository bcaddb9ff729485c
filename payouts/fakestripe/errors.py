"""Errors shaped like Stripe's: ``{"error": {"type", "code", "message", "param"}}`` with the same HTTP status.

The status matters as much as the body: the official SDK picks its exception class from it (402 ->
CardError, 400/404 -> InvalidRequestError or IdempotencyError, 429 -> RateLimitError, 5xx -> APIError).
"""

from __future__ import annotations

from typing import Any


class FakeStripeError(Exception):
    """An API error. ``store`` says whether an idempotency key keeps it (Stripe keeps results of requests that
    started executing, e.g. a decline or a short balance, but not validation failures, rate limits or 409s)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        store: bool = False,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.decline_code = decline_code
        self.store = store
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = f"https://docs.stripe.com/error-codes/{self.code.replace('_', '-')}"
        if self.param:
            error["param"] = self.param
        if self.decline_code:
            error["decline_code"] = self.decline_code
        return {"error": error}


def missing_param(param: str) -> FakeStripeError:
    return FakeStripeError(400, f"Missing required param: {param}.", code="parameter_missing", param=param)


def invalid_param(param: str, message: str, *, code: str = "parameter_invalid_string") -> FakeStripeError:
    return FakeStripeError(400, message, code=code, param=param)


def unknown_param(param: str) -> FakeStripeError:
    return FakeStripeError(400, f"Received unknown parameter: {param}", code="parameter_unknown", param=param)


def no_such(kind: str, object_id: str, *, param: str = "id") -> FakeStripeError:
    return FakeStripeError(404, f"No such {kind}: '{object_id}'", code="resource_missing", param=param)
