"""Reading statements: a contributor's own, any for finance, and their files checked against the stored hash."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.db.models import QuerySet

from accounts.roles import FINANCE, user_has_role
from payouts.models import Statement

logger = logging.getLogger(__name__)


class StatementFileTampered(Exception):
    """The stored file no longer matches the SHA-256 recorded when the statement was issued."""


def statement_list(*, contributor: Any = None, payout_run: Any = None) -> QuerySet[Statement]:
    rows = Statement.objects.select_related("contributor", "payout")
    if contributor is not None:
        rows = rows.filter(contributor_id=getattr(contributor, "pk", contributor))
    if payout_run is not None:
        rows = rows.filter(payout__run_id=getattr(payout_run, "pk", payout_run))
    return rows.order_by("-period_end", "-issued_at", "-id")


def statement_get_for_user(*, user: Any, pk: int) -> Statement | None:
    """The statement if ``user`` may read it (its contributor, or finance); None otherwise, never a hint."""
    statement = Statement.objects.select_related("contributor", "payout").filter(pk=pk).first()
    if statement is None:
        return None
    if user_has_role(user, FINANCE) or statement.contributor.user_id == getattr(user, "pk", None):
        return statement
    return None


def statement_file_bytes(*, statement: Statement, fmt: str) -> bytes:
    """The PDF or CSV bytes, refused if they differ from what was issued (the SHA-256 stored beside them)."""
    field, expected = ((statement.pdf_file, statement.pdf_sha256) if fmt == "pdf"
                       else (statement.csv_file, statement.csv_sha256))
    with field.storage.open(field.name, "rb") as handle:
        data = handle.read()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        logger.error("statement %s: %s file %s has SHA-256 %s, issued as %s", statement.number, fmt, field.name,
                     actual, expected)
        raise StatementFileTampered(f"statement {statement.number}: the {fmt} file does not match its issued hash")
    return data
