"""Reading request parameters strictly, as Stripe does: unknown names and malformed values are 400s."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from payouts.fakestripe.errors import invalid_param, missing_param, unknown_param

_CURRENCY = re.compile(r"^[a-z]{3}$")
_URL = re.compile(r"^https?://[^\s]+$")


def reject_unknown(params: dict[str, Any], allowed: Iterable[str]) -> None:
    allowed = set(allowed) | {"expand"}
    for name in params:
        if name not in allowed:
            raise unknown_param(name)


def get_str(params: dict[str, Any], name: str, *, required: bool = False, max_length: int = 5000) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise missing_param(name)
        return None
    if not isinstance(value, str):
        raise invalid_param(name, f"Invalid string: {name} must be a string")
    if len(value) > max_length:
        raise invalid_param(name, f"Invalid string: {name} must be at most {max_length} characters")
    return value


def get_int(params: dict[str, Any], name: str, *, required: bool = False, minimum: int | None = None,
            maximum: int | None = None) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise missing_param(name)
        return None
    if not isinstance(value, str) or not re.fullmatch(r"-?\d+", value):
        raise invalid_param(name, f"Invalid integer: {value}", code="parameter_invalid_integer")
    number = int(value)
    if minimum is not None and number < minimum:
        raise invalid_param(
            name, f"Invalid integer: {name} must be at least {minimum}", code="parameter_invalid_integer"
        )
    if maximum is not None and number > maximum:
        raise invalid_param(
            name, f"Invalid integer: {name} must be at most {maximum}", code="parameter_invalid_integer"
        )
    return number


def get_bool(params: dict[str, Any], name: str, default: bool = False) -> bool:
    value = params.get(name)
    if value is None or value == "":
        return default
    if value in ("true", "false"):
        return value == "true"
    raise invalid_param(name, f"Invalid boolean: {value}", code="parameter_invalid_string")


def get_currency(params: dict[str, Any], name: str = "currency", *, required: bool = True) -> str | None:
    value = get_str(params, name, required=required)
    if value is None:
        return None
    value = value.lower()
    if not _CURRENCY.match(value):
        raise invalid_param(name, f"Invalid currency: {value}. Stripe currencies are three-letter ISO codes.")
    return value


def get_url(params: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = get_str(params, name, required=required, max_length=2048)
    if value is not None and not _URL.match(value):
        raise invalid_param(name, f"Not a valid URL: {name}", code="url_invalid")
    return value


def get_metadata(params: dict[str, Any], name: str = "metadata") -> dict[str, str] | None:
    """Stripe's limits: 50 keys, keys up to 40 characters, values up to 500; "" unsets a key on update."""
    value = params.get(name)
    if value is None:
        return None
    if value == "":
        return {}
    if not isinstance(value, dict):
        raise invalid_param(name, "Invalid hash: metadata must be a set of key-value pairs")
    if len(value) > 50:
        raise invalid_param(name, "Invalid metadata: at most 50 keys")
    for key, item in value.items():
        if len(key) > 40:
            raise invalid_param(f"{name}[{key}]", "Invalid metadata: keys must be at most 40 characters")
        if not isinstance(item, str) or len(item) > 500:
            raise invalid_param(f"{name}[{key}]", "Invalid metadata: values must be strings of at most 500 characters")
    return dict(value)


def get_list(params: dict[str, Any], name: str) -> list[str]:
    value = params.get(name)
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise invalid_param(name, f"Invalid array: {name}")


def get_hash(params: dict[str, Any], name: str) -> dict[str, Any]:
    value = params.get(name)
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise invalid_param(name, f"Invalid hash: {name}")
    return value


def require_str(params: dict[str, Any], name: str, *, max_length: int = 5000) -> str:
    value = get_str(params, name, required=True, max_length=max_length)
    assert value is not None  # get_str raised parameter_missing otherwise
    return value


def require_int(params: dict[str, Any], name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    value = get_int(params, name, required=True, minimum=minimum, maximum=maximum)
    assert value is not None
    return value


def require_currency(params: dict[str, Any], name: str = "currency") -> str:
    value = get_currency(params, name, required=True)
    assert value is not None
    return value


def require_url(params: dict[str, Any], name: str) -> str:
    value = get_url(params, name, required=True)
    assert value is not None
    return value
