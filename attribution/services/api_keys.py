"""API keys for model services: created by admins, shown once, stored as a hash, scoped, revocable.

A key reads ``rk_<prefix>_<secret>``: the prefix (12 hex characters, stored in clear) finds the row, the
SHA-256 of the whole key proves it. The secret is 256 random bits, so a fast hash is the right one (a slow
password hash would only slow every ingest request down; there is nothing to brute-force).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from attribution.models import AIModel, ApiKey, ModelVersion
from attribution.services.errors import InvalidInput, ItemError
from audit.services import audit_record

KEY_PREFIX = "rk"
# last_used_at is written at most this often per key: an UPDATE per ingest request would cost more than
# the rest of authentication, and "used in the last minute" is as precise as anyone needs.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class CreatedApiKey:
    api_key: ApiKey
    secret: str  # the full key; never stored, shown to the admin once


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@transaction.atomic
def api_key_create(
    *,
    name: str,
    ai_model: AIModel | None = None,
    model_version: ModelVersion | None = None,
    actor: Any = None,
    actor_label: str = "",
) -> CreatedApiKey:
    """Create a key scoped to one model version or to every version of one model; returns the secret once."""
    name = (name or "").strip()
    errors = []
    if not name:
        errors.append(ItemError(None, "name", "is required: say what the key is for"))
    if (ai_model is None) == (model_version is None):
        errors.append(ItemError(None, "scope", "choose exactly one: a model version, or a model (all its versions)"))
    if errors:
        raise InvalidInput("The API key cannot be created.", errors=errors)
    while True:
        prefix = secrets.token_hex(6)
        if not ApiKey.objects.filter(prefix=prefix).exists():
            break
    secret = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    api_key = ApiKey.objects.create(
        name=name[:200], prefix=prefix, secret_sha256=_hash(secret), ai_model=ai_model, model_version=model_version,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    audit_record(
        action="api_key.create", obj=api_key, actor=actor, actor_label=actor_label,
        after={"name": api_key.name, "prefix": prefix, "scope": api_key.scope_label},
    )
    return CreatedApiKey(api_key=api_key, secret=secret)


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, actor: Any = None, actor_label: str = "", reason: str = "") -> ApiKey:
    """Revoke a key: every later request with it is refused. Revoking twice changes nothing."""
    api_key = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    if api_key.revoked_at is not None:
        return api_key
    api_key.revoked_at = timezone.now()
    api_key.revoked_by = actor if getattr(actor, "is_authenticated", False) else None
    api_key.save(update_fields=["revoked_at", "revoked_by"])
    audit_record(
        action="api_key.revoke", obj=api_key, actor=actor, actor_label=actor_label, reason=reason,
        before={"revoked_at": None}, after={"revoked_at": api_key.revoked_at},
    )
    return api_key


class ApiKeyInvalid(Exception):
    pass


def api_key_authenticate(*, key: str, now: dt.datetime | None = None) -> ApiKey:
    """The active ApiKey for a presented key string; raises ApiKeyInvalid with a reason safe to show."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 12:
        raise ApiKeyInvalid("Malformed API key: expected rk_<prefix>_<secret>.")
    # One plain indexed lookup, no joins: this runs on every ingest request. The scope's names load lazily,
    # only when an error message needs them.
    api_key = next(iter(ApiKey.objects.filter(prefix=parts[1]).order_by()[:1]), None)
    # Compare a hash even when the prefix is unknown, so timing does not tell which prefixes exist.
    expected = api_key.secret_sha256 if api_key else "0" * 64
    if not hmac.compare_digest(_hash(key), expected) or api_key is None:
        raise ApiKeyInvalid("Invalid API key.")
    if api_key.revoked_at is not None:
        raise ApiKeyInvalid("This API key has been revoked.")
    now = now or timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at >= LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key
