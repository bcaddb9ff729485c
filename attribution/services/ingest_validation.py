"""Reading and validating an ingest request body, in plain Python: no queries, no DRF serializers.

At 500 items per request a DRF serializer costs more than everything else together; this module checks the
same rules at about 20 microseconds an item and reports every problem with its item index and field.
"""


from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils import timezone

from attribution.services.currencies import ISO_4217_CURRENCIES
from attribution.services.errors import InvalidInput, ItemError, TooLarge, UnsupportedMediaType

MAX_BATCH = 1_000
MAX_ID = 2**63 - 1  # the largest primary key a BIGINT holds; larger ids cannot even be looked up
MICROS_PER_UNIT = 1_000_000
EXTERNAL_ID_MAX = 200
MIME_MAX = 100
METADATA_MAX_DEPTH = 16
# Clocks drift; a generation stamped more than this far ahead of the server is a bug upstream.
FUTURE_TOLERANCE = dt.timedelta(hours=1)
EARLIEST_GENERATION = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)

ITEM_FIELDS = frozenset(
    {"model_version", "external_id", "prompt", "output_text", "output_media", "revenue", "currency",
     "generated_at", "metadata"}
)
REQUIRED_FIELDS = ("model_version", "external_id", "prompt", "revenue", "generated_at")
MEDIA_FIELDS = frozenset({"mime_type", "sha256", "content_base64"})

_REVENUE_RE = re.compile(r"(\d{1,15})(?:\.(\d{1,6}))?")
_REVENUE_SHAPE_RE = re.compile(r"\d+(?:\.\d+)?")
_SHA256_RE = re.compile(r"[0-9a-fA-F]{64}")
_MIME_RE = re.compile(r"[A-Za-z0-9][\w.+-]*/[A-Za-z0-9][\w.+-]*")


@dataclass(slots=True)
class Item:
    """One validated generation, in the shape the insert needs."""

    index: int
    ref: int | tuple[str, str]
    external_id: str
    prompt: str
    output_text: str
    media_bytes: bytes | None
    mime_type: str
    prompt_sha256: str
    output_sha256: str
    revenue_micros: int
    currency: str
    generated_at: dt.datetime
    generated_iso: str  # UTC, as the API answers it
    metadata: dict
    metadata_json: str  # canonical (sorted keys): fingerprinted, and stored as is on PostgreSQL
    content_sha256: str
    model_version_id: int = 0
    model_version_ref: str = ""


# --- parsing the body ------------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (use null or a string)")


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} is out of range")
    return value


def generation_body_parse(*, body: bytes, content_type: str) -> tuple[list[Any], bool]:
    """Parse an ingest request body into raw items; returns ``(items, is_batch)``.

    The body is one generation object, or ``{"generations": [...]}`` with 1 to 1,000 of them.
    """
    if len(body) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        raise TooLarge(
            f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes; "
            f"send fewer generations per request (at most {MAX_BATCH})."
        )
    if not body:
        raise InvalidInput(
            'The request body is empty: send a generation object or {"generations": [...]}.', code="parse_error"
        )
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType(
            f"Send the generations as application/json (got {media_type or 'no content type'!r})."
        )
    try:
        # JSON on the wire is UTF-8 (RFC 8259); json.loads(bytes) would also guess UTF-16 and UTF-32.
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"The request body is not valid UTF-8 ({exc.reason} at byte {exc.start}).", code="parse_error"
        ) from exc
    try:
        data = json.loads(text, parse_constant=_reject_constant, parse_float=_parse_float)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"Malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}.",
                           code="parse_error") from exc
    except (ValueError, RecursionError) as exc:
        raise InvalidInput(f"Malformed JSON: {exc}.", code="parse_error") from exc
    if not isinstance(data, dict):
        raise InvalidInput(
            f"The body must be a JSON object (one generation, or {{\"generations\": [...]}}), "
            f"not {_json_type(data)}."
        )
    if "generations" not in data:
        return [data], False
    extra = sorted(set(data) - {"generations"})
    if extra:
        raise InvalidInput(
            "A batch body holds only \"generations\".",
            errors=[ItemError(index=None, field=name, message="unknown field") for name in extra],
        )
    items = data["generations"]
    if not isinstance(items, list):
        raise InvalidInput("\"generations\" must be a list.",
                           errors=[ItemError(None, "generations", f"must be a list, not {_json_type(items)}")])
    if not items:
        raise InvalidInput("\"generations\" is empty: send at least one generation.",
                           errors=[ItemError(None, "generations", "must hold 1 to 1000 items")])
    if len(items) > MAX_BATCH:
        raise InvalidInput(
            f"A batch holds at most {MAX_BATCH} generations; this one has {len(items)}.",
            errors=[ItemError(None, "generations", f"has {len(items)} items; the maximum is {MAX_BATCH}")],
        )
    return items, True


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


# --- validating items ------------------------------------------------------------------------------------


def _text(value: Any, field: str, errors: list[ItemError], index: int) -> str | None:
    """A string the database can store: no NUL (PostgreSQL refuses it), no unpaired surrogate."""
    if not isinstance(value, str):
        errors.append(ItemError(index, field, f"must be a string, not {_json_type(value)}"))
        return None
    if "\x00" in value:
        errors.append(ItemError(index, field, "contains a NUL character (\\u0000), which cannot be stored"))
        return None
    return value


def _utf8(value: str, field: str, errors: list[ItemError], index: int) -> bytes | None:
    try:
        return value.encode()
    except UnicodeEncodeError:
        errors.append(ItemError(index, field, "contains an unpaired UTF-16 surrogate; send valid Unicode"))
        return None


def _metadata_problem(value: Any, depth: int = 0) -> str | None:
    """Why ``value`` cannot be stored as JSON in PostgreSQL, or None."""
    if depth > METADATA_MAX_DEPTH:
        return f"is nested deeper than {METADATA_MAX_DEPTH} levels"
    if isinstance(value, str):
        if "\x00" in value:
            return "contains a NUL character (\\u0000), which cannot be stored"
        try:
            value.encode()
        except UnicodeEncodeError:
            return "contains an unpaired UTF-16 surrogate"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            problem = _metadata_problem(key, depth + 1) or _metadata_problem(item, depth + 1)
            if problem:
                return problem
    elif isinstance(value, list):
        for item in value:
            problem = _metadata_problem(item, depth + 1)
            if problem:
                return problem
    return None


def revenue_parse(value: Any) -> tuple[int | None, str | None]:
    """A revenue decimal string to exact micro-units: ``(micros, None)`` or ``(None, why not)``."""
    if not isinstance(value, str):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return None, 'must be a decimal string such as "0.0125", not a JSON number (numbers lose precision)'
        return None, f'must be a decimal string such as "0.0125", not {_json_type(value)}'
    match = _REVENUE_RE.fullmatch(value)
    if match is None:
        if value.startswith("-"):
            return None, f"must not be negative (got {value!r})"
        if _REVENUE_SHAPE_RE.fullmatch(value):
            if "." in value and len(value.split(".", 1)[1]) > 6:
                return None, f"has more than 6 decimal places (got {value!r}); amounts are kept in micro-units"
            return None, f"is too large (got {value!r})"
        return None, f'must be a decimal string of digits with an optional "." and up to 6 decimals (got {value!r})'
    whole, frac = match.group(1), match.group(2) or ""
    micros = int(whole) * MICROS_PER_UNIT + int(frac.ljust(6, "0"))
    cap = settings.ROYALTIES_MAX_GENERATION_REVENUE
    if micros > cap * MICROS_PER_UNIT:
        return None, f"{value} exceeds the limit of {cap} per generation (ROYALTIES_MAX_GENERATION_REVENUE)"
    return micros, None


def _generated_at(value: Any, errors: list[ItemError], index: int, now: dt.datetime) -> dt.datetime | None:
    if not isinstance(value, str):
        errors.append(ItemError(index, "generated_at", f"must be an ISO 8601 string, not {_json_type(value)}"))
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        errors.append(ItemError(index, "generated_at", f"is not an ISO 8601 date-time (got {value[:60]!r})"))
        return None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        errors.append(ItemError(index, "generated_at",
                                f"needs a time zone offset, e.g. 2026-01-31T12:00:00Z (got {value[:60]!r})"))
        return None
    try:
        parsed = parsed.astimezone(dt.UTC)
    except OverflowError:
        errors.append(ItemError(index, "generated_at", f"is out of range (got {value[:60]!r})"))
        return None
    if parsed < EARLIEST_GENERATION:
        errors.append(ItemError(index, "generated_at", f"is before {EARLIEST_GENERATION:%Y-%m-%d}: check the clock"))
        return None
    if parsed > now + FUTURE_TOLERANCE:
        errors.append(ItemError(index, "generated_at", "is more than an hour in the future: check the clock"))
        return None
    return parsed


def _model_version_ref(value: Any, errors: list[ItemError], index: int) -> int | tuple[str, str] | None:
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 < value <= MAX_ID:
            errors.append(ItemError(index, "model_version", 'must be a positive id or "<model>@<label>"'))
            return None
        return value
    if isinstance(value, str):
        name, sep, label = value.partition("@")
        if sep and name and label:
            return (name, label)
        errors.append(ItemError(index, "model_version", f"must look like \"<model>@<label>\" (got {value[:100]!r})"))
        return None
    errors.append(ItemError(index, "model_version",
                            f"must be an integer id or a \"<model>@<label>\" string, not {_json_type(value)}"))
    return None


def _output(raw: dict, errors: list[ItemError], index: int) -> tuple[str, bytes | None, str, str] | None:
    """``(output_text, media_bytes, mime_type, output_sha256)`` from output_text xor output_media."""
    has_text, has_media = "output_text" in raw, "output_media" in raw
    if has_text == has_media:
        errors.append(ItemError(index, "output_text",
                                "send exactly one of output_text (text) or output_media (a media object)"))
        return None
    if has_text:
        text = _text(raw["output_text"], "output_text", errors, index)
        if text is None:
            return None
        encoded = _utf8(text, "output_text", errors, index)
        if encoded is None:
            return None
        return text, None, "text/plain", hashlib.sha256(encoded).hexdigest()
    media = raw["output_media"]
    if not isinstance(media, dict):
        errors.append(ItemError(index, "output_media", f"must be an object, not {_json_type(media)}"))
        return None
    before = len(errors)
    for name in sorted(set(media) - MEDIA_FIELDS):
        errors.append(ItemError(index, f"output_media.{name}", "unknown field"))
    mime = media.get("mime_type")
    if not isinstance(mime, str) or len(mime) > MIME_MAX or not _MIME_RE.fullmatch(mime):
        errors.append(ItemError(index, "output_media.mime_type", "must be a media type such as \"image/png\""))
    digest = media.get("sha256")
    if digest is not None and (not isinstance(digest, str) or not _SHA256_RE.fullmatch(digest)):
        errors.append(ItemError(index, "output_media.sha256", "must be 64 hexadecimal characters"))
    content = media.get("content_base64")
    data: bytes | None = None
    if content is not None:
        if not isinstance(content, str):
            errors.append(ItemError(index, "output_media.content_base64", "must be a base64 string"))
        else:
            try:
                data = base64.b64decode(content, validate=True)
            except (binascii.Error, ValueError):
                errors.append(ItemError(index, "output_media.content_base64", "is not valid base64"))
    if digest is None and content is None:
        errors.append(ItemError(index, "output_media",
                                "send content_base64 (we store and hash it) or sha256 (you keep the bytes)"))
    if len(errors) > before:
        return None
    if data is not None:
        actual = hashlib.sha256(data).hexdigest()
        if digest is not None and digest.lower() != actual:
            errors.append(ItemError(index, "output_media.sha256",
                                    f"does not match the content (its SHA-256 is {actual})"))
            return None
        digest = actual
    return "", data, str(mime).lower(), str(digest).lower()


def _content_sha256(item_parts: Iterable[str]) -> str:
    return hashlib.sha256("\x1f".join(item_parts).encode()).hexdigest()


def generation_items_validate(*, raw_items: list[Any], now: dt.datetime | None = None) -> list[Item]:
    """Validate every item; raise InvalidInput naming each bad item's index and field (all of them)."""
    now = now or timezone.now()
    errors: list[ItemError] = []
    items: list[Item] = []
    default_currency = settings.ROYALTIES_CURRENCY
    for index, raw in enumerate(raw_items):
        if not isinstance(raw, dict):
            errors.append(ItemError(index, None, f"must be a generation object, not {_json_type(raw)}"))
            continue
        before = len(errors)
        unknown = raw.keys() - ITEM_FIELDS
        for name in sorted(unknown):
            errors.append(ItemError(index, name, "unknown field"))
        for name in REQUIRED_FIELDS:
            if name not in raw:
                errors.append(ItemError(index, name, "is required"))
        if len(errors) > before:
            continue
        ref = _model_version_ref(raw["model_version"], errors, index)
        external_id = raw["external_id"]
        if not isinstance(external_id, str) or not 0 < len(external_id) <= EXTERNAL_ID_MAX:
            errors.append(ItemError(index, "external_id", f"must be a string of 1 to {EXTERNAL_ID_MAX} characters"))
        elif not external_id.isprintable():
            errors.append(ItemError(index, "external_id", "must contain only printable characters"))
        prompt = _text(raw["prompt"], "prompt", errors, index)
        prompt_bytes = _utf8(prompt, "prompt", errors, index) if prompt is not None else None
        output = _output(raw, errors, index)
        revenue_micros, problem = revenue_parse(raw["revenue"])
        if problem:
            errors.append(ItemError(index, "revenue", problem))
        currency = raw.get("currency", default_currency)
        if not isinstance(currency, str) or currency not in ISO_4217_CURRENCIES:
            shown = currency[:10] if isinstance(currency, str) else _json_type(currency)
            errors.append(ItemError(index, "currency",
                                    f"must be an ISO 4217 currency code in upper case, e.g. \"USD\" (got {shown!r})"))
        generated_at = _generated_at(raw["generated_at"], errors, index, now)
        metadata = raw.get("metadata", {})
        if not isinstance(metadata, dict):
            errors.append(ItemError(index, "metadata", f"must be an object, not {_json_type(metadata)}"))
        elif metadata:
            problem = _metadata_problem(metadata)
            if problem:
                errors.append(ItemError(index, "metadata", problem))
        if len(errors) > before:
            continue
        # Every check above passed, so none of these is None.
        output_text, media_bytes, mime_type, output_sha256 = output
        prompt_sha256 = hashlib.sha256(prompt_bytes).hexdigest()
        generated_iso = generated_at.isoformat()
        metadata_json = json.dumps(metadata, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        items.append(Item(
            index=index, ref=ref, external_id=external_id, prompt=prompt, output_text=output_text,
            media_bytes=media_bytes, mime_type=mime_type, prompt_sha256=prompt_sha256,
            output_sha256=output_sha256, revenue_micros=revenue_micros, currency=currency,
            generated_at=generated_at, generated_iso=generated_iso.replace("+00:00", "Z"), metadata=metadata,
            metadata_json=metadata_json,
            content_sha256=_content_sha256(
                (prompt_sha256, output_sha256, mime_type, str(revenue_micros), currency, generated_iso, metadata_json)
            ),
        ))
    if errors:
        noun = "generation is" if len(raw_items) == 1 else "generations are"
        bad = len({e.index for e in errors})
        raise InvalidInput(
            f"{bad} of {len(raw_items)} {noun} invalid; nothing was stored." if len(raw_items) > 1
            else f"The {noun} invalid; nothing was stored.",
            errors=errors,
        )
    return items


