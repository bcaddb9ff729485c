"""Logging generations: the fast path model services call for every output they produce.

The whole batch is validated in plain Python (services.ingest_validation), its model versions resolved
within the API key's scope with one query, then stored in one transaction (services.ingest_sql: on
PostgreSQL a single INSERT for the batch). Idempotent by (model version, external_id): an item already
stored with the same content is reported ``existing``; with different content the whole request is a 409.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from attribution.models import ApiKey, ModelVersion
from attribution.services.errors import Conflict, InvalidInput, ItemError, NotAllowed
from attribution.services.ingest_sql import generation_rows_store
from attribution.services.ingest_validation import (
    MAX_BATCH,
    MAX_ID,
    MICROS_PER_UNIT,
    Item,
    generation_body_parse,
    generation_items_validate,
)

__all__ = ["MAX_BATCH", "MAX_ID", "generation_body_parse", "generation_ingest", "micros_to_decimal_string"]


# --- scope, duplicates, idempotency ----------------------------------------------------------------------


def _scope_q(api_key: ApiKey) -> Q:
    if api_key.model_version_id:
        return Q(pk=api_key.model_version_id)
    return Q(ai_model_id=api_key.ai_model_id)


def _resolve_versions(*, api_key: ApiKey, items: list[Item]) -> None:
    """Set each item's model_version_id; refs outside the key's scope are refused (one query)."""
    ids = {item.ref for item in items if isinstance(item.ref, int)}
    pairs = {item.ref for item in items if isinstance(item.ref, tuple)}
    lookup = Q(pk__in=ids) if ids else Q(pk__in=[])
    for name, label in pairs:
        lookup |= Q(ai_model__name=name, label=label)
    found: dict[int | tuple[str, str], tuple[int, str]] = {}
    for pk, name, label in ModelVersion.objects.filter(_scope_q(api_key)).filter(lookup).values_list(
        "pk", "ai_model__name", "label"
    ):
        found[pk] = found[(name, label)] = (pk, f"{name}@{label}")
    errors = []
    for item in items:
        resolved = found.get(item.ref)
        if resolved is None:
            shown = item.ref if isinstance(item.ref, int) else "@".join(item.ref)
            # One message for "does not exist" and "belongs to another model": a key learns nothing
            # about models outside its scope.
            errors.append(ItemError(item.index, "model_version",
                                    f"model version {shown!r} is not one this API key may log to"))
        else:
            item.model_version_id, item.model_version_ref = resolved
    if errors:
        raise NotAllowed(
            f"{len(errors)} generation(s) name a model version outside this API key's scope "
            f"({api_key.scope_label}); nothing was stored.",
            errors=errors,
        )


def _reject_duplicates(items: list[Item]) -> None:
    first: dict[tuple[int, str], int] = {}
    errors = []
    for item in items:
        key = (item.model_version_id, item.external_id)
        seen = first.setdefault(key, item.index)
        if seen != item.index:
            errors.append(ItemError(item.index, "external_id",
                                    f"external_id {item.external_id!r} repeats item {seen} of this batch"))
    if errors:
        raise InvalidInput("The batch repeats external_ids; each generation must appear once. Nothing was stored.",
                           errors=errors, code="duplicate_external_id")


def _differences(item: Item, row: dict) -> list[str]:
    pairs = [
        ("prompt", item.prompt_sha256, row["prompt_sha256"]),
        ("output", item.output_sha256, row["output_sha256"]),
        ("output_media.mime_type", item.mime_type, row["output_mime_type"]),
        ("revenue", item.revenue_micros, row["revenue_micros"]),
        ("currency", item.currency, row["currency"]),
        ("generated_at", item.generated_at, row["generated_at"]),
        ("metadata", item.metadata, row["metadata"]),
    ]
    return [name for name, new, old in pairs if new != old] or ["content"]


# --- writing ---------------------------------------------------------------------------------------------


def _media_store(data: bytes, sha256: str) -> str:
    """Store media content-addressed, so a replay or a second identical output reuses the same file."""
    name = f"generations/media/{sha256[:2]}/{sha256}"
    if not default_storage.exists(name):
        name = default_storage.save(name, ContentFile(data))
    return name


def micros_to_decimal_string(micros: int) -> str:
    return f"{micros // MICROS_PER_UNIT}.{micros % MICROS_PER_UNIT:06d}"


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _record(*, status: str, pk: int, item: Item, received_at: str, stored: dict | None = None) -> dict:
    if stored is None:
        return {
            "status": status, "id": pk, "model_version": item.model_version_id,
            "model_version_ref": item.model_version_ref, "external_id": item.external_id,
            "prompt_sha256": item.prompt_sha256, "output_sha256": item.output_sha256,
            "revenue": micros_to_decimal_string(item.revenue_micros), "revenue_micros": item.revenue_micros,
            "currency": item.currency, "generated_at": item.generated_iso, "received_at": received_at,
        }
    source = stored
    return {
        "status": status,
        "id": pk,
        "model_version": item.model_version_id,
        "model_version_ref": item.model_version_ref,
        "external_id": item.external_id,
        "prompt_sha256": source.get("prompt_sha256", item.prompt_sha256),
        "output_sha256": source.get("output_sha256", item.output_sha256),
        "revenue": micros_to_decimal_string(source.get("revenue_micros", item.revenue_micros)),
        "revenue_micros": source.get("revenue_micros", item.revenue_micros),
        "currency": source.get("currency", item.currency),
        "generated_at": _iso(source["generated_at"]),
        "received_at": received_at,
    }


def _write(*, api_key: ApiKey, items: list[Item]) -> list[dict]:
    with transaction.atomic():
        received_at = timezone.now()
        created, existing = generation_rows_store(rows=[
            {
                "model_version_id": item.model_version_id, "external_id": item.external_id, "prompt": item.prompt,
                "output_text": item.output_text,
                "output_media": (_media_store(item.media_bytes, item.output_sha256)
                                 if item.media_bytes is not None else ""),
                "output_mime_type": item.mime_type, "prompt_sha256": item.prompt_sha256,
                "output_sha256": item.output_sha256, "revenue_micros": item.revenue_micros,
                "currency": item.currency, "generated_at": item.generated_at, "metadata": item.metadata,
                "metadata_json": item.metadata_json,
                "content_sha256": item.content_sha256, "api_key_id": api_key.pk, "received_at": received_at,
            }
            for item in items
        ])
        conflicts = []
        for item in items:
            row = existing.get((item.model_version_id, item.external_id))
            if row is not None and row["content_sha256"] != item.content_sha256:
                conflicts.append(ItemError(
                    item.index, "external_id",
                    f"external_id {item.external_id!r} was already logged for {item.model_version_ref} with "
                    f"different {', '.join(_differences(item, row))}; a replay must repeat the original exactly",
                ))
        if conflicts:
            # Raised inside the transaction: anything this batch inserted is rolled back with it.
            raise Conflict(
                f"{len(conflicts)} generation(s) reuse an external_id with different content; nothing was stored.",
                errors=conflicts, code="external_id_conflict",
            )
    records = []
    stamps: dict[dt.datetime, str] = {}  # one received_at per batch on PostgreSQL; format each once
    for item in items:
        key = (item.model_version_id, item.external_id)
        if key in created:
            pk, stored_at = created[key]
            iso = stamps.get(stored_at) or stamps.setdefault(stored_at, _iso(stored_at))
            records.append(_record(status="created", pk=pk, item=item, received_at=iso))
        else:
            stored = existing[key]
            records.append(_record(status="existing", pk=stored["id"], item=item,
                                   received_at=_iso(stored["received_at"]), stored=stored))
    return records


def generation_ingest(*, api_key: ApiKey, raw_items: list[Any], now: dt.datetime | None = None) -> list[dict]:
    """Validate and store a batch of generations all-or-nothing; one record per item, in order.

    Each record says ``created`` or ``existing`` (the same item was logged before: nothing new is written).
    Raises InvalidInput (400), NotAllowed (403) or Conflict (409) before anything is stored.
    """
    items = generation_items_validate(raw_items=raw_items, now=now)
    _resolve_versions(api_key=api_key, items=items)
    _reject_duplicates(items)
    try:
        return _write(api_key=api_key, items=items)
    except IntegrityError:
        # A concurrent request stored one of these external_ids between our check and our insert (the ORM
        # path checks first). Our transaction rolled back; a second pass sees its rows: existing or conflict.
        return _write(api_key=api_key, items=items)
