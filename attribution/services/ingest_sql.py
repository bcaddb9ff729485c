"""The two statements of an ingest request, tuned for PostgreSQL (with a portable ORM fallback).

On PostgreSQL a batch is one ``INSERT ... SELECT FROM unnest(arrays) RETURNING`` with every column sent as a
binary array through a server-side-bound psycopg cursor, and the idempotency check is one join against
unnest'ed (version, external_id) pairs. The ORM's bulk_create produces the same statement shape but quotes
every value into the SQL text client-side: at 500 rows x 17 columns that quoting, not the database, was
most of the request's time (see docs/benchmarks.md). Other databases use the ORM.
"""

from __future__ import annotations

import datetime as dt
import json
from functools import cache
from typing import Any

import psycopg
from django.db import IntegrityError, connection

from attribution.models import Generation

# Columns the idempotency check reads back (enough to answer "existing" and to explain a conflict).
STORED_FIELDS = ("id", "model_version_id", "external_id", "content_sha256", "prompt_sha256", "output_sha256",
                 "output_mime_type", "revenue_micros", "currency", "generated_at", "received_at", "metadata")


@cache
def _insert_plan() -> tuple[str, tuple[tuple[str, Any], ...]]:
    """The INSERT statement and, per column, its attname and the default for rows that do not set it.

    Built from the model, so a column added later is written with its declared default, not forgotten.
    """
    table = connection.ops.quote_name(Generation._meta.db_table)
    columns, casts, selects, plan = [], [], [], []
    for field in Generation._meta.concrete_fields:
        if field.primary_key:
            continue
        db_type = field.db_type(connection)
        name = connection.ops.quote_name(field.column)
        columns.append(name)
        if db_type == "jsonb":
            casts.append("%b::text[]")  # sent as JSON text, converted by the server
            selects.append(f"u.{name}::jsonb")
        else:
            casts.append(f"%b::{db_type}[]")
            selects.append(f"u.{name}")
        plan.append((field.attname, field.get_default() if field.has_default() or field.null else _REQUIRED))
    # Identifiers come from the model's own metadata; every value travels as a bound parameter.
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(selects)} "  # noqa: S608
        f"FROM unnest({', '.join(casts)}) AS u({', '.join(columns)}) "
        f"ON CONFLICT (model_version_id, external_id) DO NOTHING RETURNING id, model_version_id, external_id"
    )
    return sql, tuple(plan)


class _Required:
    def __repr__(self) -> str:
        return "<required>"


_REQUIRED = _Required()


def _column(rows: list[dict], attname: str, default: Any) -> list[Any]:
    if attname == "metadata":
        # The ingest path hands over the JSON it already serialised (for the fingerprint): no second dumps.
        return [row.get("metadata_json") or json.dumps(row.get("metadata", default)) for row in rows]
    if default is _REQUIRED:
        return [row[attname] for row in rows]  # a KeyError here is a programming error: every row sets it
    return [row.get(attname, default) for row in rows]


def _bound_cursor() -> psycopg.Cursor:
    """A server-side-binding cursor on Django's connection (Django's own cursors bind client-side).

    Same connection, so the same transaction: it commits or rolls back with the caller's atomic block.
    """
    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)


Key = tuple[int, str]  # (model version id, external_id)


def generation_rows_store(*, rows: list[dict]) -> tuple[dict[Key, tuple[int, dt.datetime]], dict[Key, dict]]:
    """Insert the rows that are new; ``(created, existing)``, together covering every row's key.

    ``created`` maps a key to (id, received_at as stored); ``existing`` to the stored row (STORED_FIELDS),
    for the caller to compare. Rows are dicts of attname -> value (plus an optional ready ``metadata_json``).
    Must run inside the caller's transaction.

    PostgreSQL inserts first (ON CONFLICT DO NOTHING: a concurrent insert of the same key is waited for, not
    failed on) and reads back only the rows it skipped: one statement for a batch of new generations. Other
    databases read first and insert the rest; a concurrent insert then raises django.db.IntegrityError.
    """
    keys = [(row["model_version_id"], row["external_id"]) for row in rows]
    if connection.vendor == "postgresql":
        created = _insert_postgresql(rows)
        existing = generation_rows_existing(keys=[key for key in keys if key not in created])
    else:
        existing = generation_rows_existing(keys=keys)
        created = _insert_orm([row for row, key in zip(rows, keys, strict=True) if key not in existing])
    if any(key not in created and key not in existing for key in keys):
        # Skipped as a conflict, yet not found: the rival transaction vanished between the two statements.
        raise IntegrityError("a generation was neither inserted nor found; retry the batch")
    return created, existing


def _insert_orm(rows: list[dict]) -> dict[Key, tuple[int, dt.datetime]]:
    objs = [Generation(**{k: v for k, v in row.items() if k != "metadata_json"}) for row in rows]
    Generation.objects.bulk_create(objs)
    # received_at is auto_now_add: the ORM stamps each object itself, so report what it stored.
    return {(o.model_version_id, o.external_id): (o.pk, o.received_at) for o in objs}


def _insert_postgresql(rows: list[dict]) -> dict[Key, tuple[int, dt.datetime]]:
    if not rows:
        return {}
    sql, plan = _insert_plan()
    params = [_column(rows, attname, default) for attname, default in plan]
    with connection.wrap_database_errors, _bound_cursor() as cursor:
        cursor.execute(sql, params)
        ids = {(version_id, external_id): pk for pk, version_id, external_id in cursor.fetchall()}
    created = {}
    for row in rows:  # rows skipped as conflicts are not in ids
        key = (row["model_version_id"], row["external_id"])
        if key in ids:
            created[key] = (ids[key], row["received_at"])
    return created


def generation_rows_existing(*, keys: list[Key]) -> dict[Key, dict]:
    """The stored generations among ``keys`` (version id, external_id), as dicts of STORED_FIELDS."""
    if not keys:
        return {}
    if connection.vendor != "postgresql":
        from django.db.models import Q

        by_version: dict[int, list[str]] = {}
        for version_id, external_id in keys:
            by_version.setdefault(version_id, []).append(external_id)
        query = Q()
        for version_id, external_ids in by_version.items():
            query |= Q(model_version_id=version_id, external_id__in=external_ids)
        return {(r["model_version_id"], r["external_id"]): r
                for r in Generation.objects.filter(query).values(*STORED_FIELDS)}
    table = connection.ops.quote_name(Generation._meta.db_table)
    sql = (
        f"SELECT {', '.join('g.' + f for f in STORED_FIELDS)} FROM {table} g "  # noqa: S608 - as above
        "JOIN unnest(%b::bigint[], %b::text[]) AS k(version_id, external_id) "
        "ON g.model_version_id = k.version_id AND g.external_id = k.external_id"
    )
    with connection.wrap_database_errors, _bound_cursor() as cursor:
        cursor.execute(sql, [[k[0] for k in keys], [k[1] for k in keys]])
        found = {}
        for values in cursor.fetchall():
            row = dict(zip(STORED_FIELDS, values, strict=True))
            if isinstance(row["metadata"], str):  # Django registers jsonb as text on its connections
                row["metadata"] = json.loads(row["metadata"])
            found[(row["model_version_id"], row["external_id"])] = row
        return found
