"""Small helpers the ledger services share: input checks, actor labels, chunking, the audit hook."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Sequence
from functools import cache
from typing import Any, TypeVar, cast

import numpy as np
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, models
from django.utils import timezone
from django.utils.module_loading import import_string

from royalties.ledger.errors import LedgerValidationError

T = TypeVar("T")

# SQLite accepts at most 999 parameters per statement in Django's configuration; stay well below it.
IN_CHUNK = 500
BULK_BATCH = 5_000
_CURRENCY = re.compile(r"^[A-Z]{3}$")


def utc_today() -> dt.date:
    return timezone.now().astimezone(dt.UTC).date()


def chunks(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def as_int(value: Any, field: str) -> int:
    """An exact integer (Python or NumPy); floats, Decimals and bools are refused, never rounded."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise LedgerValidationError(f"{field} must be an integer, got {value!r}", field=field)
    return int(value)


def as_currency(value: Any, field: str = "currency") -> str:
    if not isinstance(value, str) or not _CURRENCY.match(value):
        raise LedgerValidationError(f"{field} must be a 3-letter upper-case ISO 4217 code, got {value!r}", field=field)
    return value


def as_day(value: Any, field: str) -> dt.date:
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise LedgerValidationError(f"{field} must be a date (a UTC calendar day), got {value!r}", field=field)
    return value


def actor_label(user: Any, label: str) -> str:
    """Who acted, for the row: the given label, else the user's email or username, else "system"."""
    if label:
        return label[:200]
    if user is not None:
        return (getattr(user, "email", "") or getattr(user, "username", "") or str(user.pk))[:200]
    return "system"


def as_user(user: Any, field: str = "created_by") -> Any:
    if user is None:
        return None
    if not isinstance(user, models.Model) or user.pk is None:
        raise LedgerValidationError(f"{field} must be a saved user or None, got {user!r}", field=field)
    return user


@cache
def _audit_recorder():
    try:
        path = settings.LEDGER_AUDIT_RECORDER
    except AttributeError as exc:
        raise ImproperlyConfigured(
            "LEDGER_AUDIT_RECORDER is not set: the ledger records every money action in the audit trail "
            "through this callable (royalties/settings.py sets it to audit.services.audit_record)."
        ) from exc
    return import_string(path) if path else None


def audit(**kwargs: Any) -> None:
    """Record a ledger action in the audit trail, inside the caller's transaction.

    The ledger imports no other app, so the recorder is wired in settings (``LEDGER_AUDIT_RECORDER``); it is
    called with ``audit.services.audit_record``'s keyword arguments.
    """
    recorder = _audit_recorder()
    if recorder is not None:
        recorder(**kwargs)


def bulk_insert(model: type[models.Model], fields: list[str], rows: Sequence[tuple]) -> None:
    """Insert many rows of plain values fast: COPY on PostgreSQL, batched executemany elsewhere.

    Used for postings and accrual detail, which are append-only rows of integers: building 100k model
    instances for bulk_create costs seconds, the rows themselves milliseconds. Triggers still fire (COPY
    runs the statement-level insert triggers), and the caller's transaction covers it.
    """
    if not rows:
        return
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    columns = ", ".join(quote(str(cast(models.Field, model._meta.get_field(f)).column)) for f in fields)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            placeholders = ", ".join(["%s"] * len(fields))
            sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"  # noqa: S608 - names from _meta
            for batch in chunks(rows, BULK_BATCH):
                cursor.executemany(sql, list(batch))
