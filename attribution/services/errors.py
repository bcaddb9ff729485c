"""Errors the attribution services raise: each carries an HTTP status, a code and per-item details.

The APIs render them as ``{"detail", "code", "errors": [{"index", "field", "message"}]}``; commands print
them. A service raises before it writes anything, or inside a transaction that the raise rolls back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

# Enough to fix a batch; a batch of 1,000 bad items would otherwise produce a 1,000-line answer.
MAX_REPORTED_ERRORS = 100


@dataclass(frozen=True, slots=True)
class ItemError:
    """One problem: which item (batch index) or manifest line, which field, and what is wrong."""

    index: int | None
    field: str | None
    message: str
    line: int | None = None

    def as_dict(self) -> dict:
        body = asdict(self)
        if self.line is None:
            del body["line"]
        return body


class ServiceError(Exception):
    status: int = 400
    code: str = "invalid"

    def __init__(self, detail: str, *, errors: list[ItemError] | None = None, code: str | None = None):
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors or [])
        if code:
            self.code = code

    def as_dict(self) -> dict:
        shown = self.errors[:MAX_REPORTED_ERRORS]
        body: dict = {"detail": self.detail, "code": self.code, "errors": [e.as_dict() for e in shown]}
        if len(self.errors) > len(shown):
            body["errors_not_shown"] = len(self.errors) - len(shown)
        return body


class InvalidInput(ServiceError):
    status = 400
    code = "invalid"


class NotAllowed(ServiceError):
    """The caller may not act on this (a model version outside the API key's scope, or unknown to it)."""

    status = 403
    code = "model_version_not_allowed"


class Conflict(ServiceError):
    status = 409
    code = "conflict"


class TooLarge(ServiceError):
    status = 413
    code = "request_too_large"


class UnsupportedMediaType(ServiceError):
    status = 415
    code = "unsupported_media_type"
