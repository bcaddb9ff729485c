"""Moving many plain rows in and out of the database fast (the night writes and reads millions).

Building model instances for a million attribution rows costs more than the rows themselves, so the nightly
job writes with COPY (PostgreSQL) or batched ``executemany`` (SQLite), reads with one cursor into NumPy
columns, and updates many rows by id through a temporary table. Everything runs inside the caller's
transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any, cast

import numpy as np
import pandas as pd
from django.db import connection, models

BATCH = 5_000


def _table_and_columns(model: type[models.Model], fields: Sequence[str]) -> tuple[str, list[str]]:
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    columns = [quote(str(cast(models.Field, model._meta.get_field(f)).column)) for f in fields]
    return table, columns


def bulk_insert(model: type[models.Model], fields: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Insert rows of plain values (JSON columns as JSON text); returns how many were written."""
    table, columns = _table_and_columns(model, fields)
    written = 0
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    written += 1
            return written
        placeholders = ", ".join(["%s"] * len(columns))
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"  # noqa: S608 - from _meta
        batch: list[Sequence[Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= BATCH:
                cursor.executemany(sql, batch)
                written += len(batch)
                batch = []
        if batch:
            cursor.executemany(sql, batch)
            written += len(batch)
    return written


def update_by_id(model: type[models.Model], fields: Sequence[str], ids: np.ndarray, values: Sequence[Sequence[Any]]
                 ) -> None:
    """``UPDATE model SET fields = values WHERE id = ids`` for many rows (``values`` are columns, one per field).

    PostgreSQL copies the new values into a temporary table and updates with one join; SQLite runs a
    prepared UPDATE per row (it has no COPY, and executemany on a primary key is fast there).
    """
    if len(ids) == 0:
        return
    table, columns = _table_and_columns(model, fields)
    pk = connection.ops.quote_name(model._meta.pk.column)
    rows = zip(*values, ids.tolist(), strict=True)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            types = [_pg_type(cast(models.Field, model._meta.get_field(f)), connection) for f in fields]
            temp = f"nightly_update_{model._meta.db_table}"
            cursor.execute(f"DROP TABLE IF EXISTS {temp}")
            cursor.execute(
                f"CREATE TEMPORARY TABLE {temp} (id bigint PRIMARY KEY, "
                + ", ".join(f"v{i} {t}" for i, t in enumerate(types)) + ") ON COMMIT DROP"
            )
            with cursor.cursor.copy(
                f"COPY {temp} ({', '.join(f'v{i}' for i in range(len(types)))}, id) FROM STDIN"
            ) as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(f"ANALYZE {temp}")  # a fresh table has no statistics: let the join be planned on facts
            assignments = ", ".join(f"{c} = t.v{i}" for i, c in enumerate(columns))
            cursor.execute(f"UPDATE {table} SET {assignments} FROM {temp} t WHERE {table}.{pk} = t.id")  # noqa: S608
            cursor.execute(f"DROP TABLE {temp}")
            return
        assignments = ", ".join(f"{c} = %s" for c in columns)
        sql = f"UPDATE {table} SET {assignments} WHERE {pk} = %s"  # noqa: S608 - names from _meta
        batch: list[tuple] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= BATCH:
                cursor.executemany(sql, batch)
                batch = []
        if batch:
            cursor.executemany(sql, batch)


def _pg_type(field: models.Field, conn) -> str:
    return str(field.db_type(conn)).replace("serial", "integer")


def fetch_columns(sql: str, params: Sequence[Any], columns: dict[str, str]) -> pd.DataFrame:
    """Run a SELECT and return its rows as a DataFrame with the given dtypes (``int64``, ``float64``, ``bool``).

    One ``fetchall`` into NumPy: a million rows of four numbers takes about a second, where model instances
    would take half a minute.
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        rows = cursor.fetchall()
    if not rows:
        return pd.DataFrame({name: np.zeros(0, dtype=dtype) for name, dtype in columns.items()})
    transposed = list(zip(*rows, strict=True))
    return pd.DataFrame({
        name: np.asarray(col, dtype=dtype) for (name, dtype), col in zip(columns.items(), transposed, strict=True)
    })


def in_list(values: Sequence[int]) -> tuple[str, list[int]]:
    """``(%s, %s, ...)`` and its parameters for an ``IN`` over a short list of ids (chunks, versions)."""
    if not values:
        return "(NULL)", []
    return "(" + ", ".join(["%s"] * len(values)) + ")", [int(v) for v in values]


def advisory_lock(name: str) -> None:
    """Serialise a critical section across processes for the rest of the transaction (PostgreSQL).

    SQLite needs nothing: the project opens its transactions IMMEDIATE, so writers already take turns.
    """
    if connection.vendor != "postgresql":
        return
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
