"""Writing to the audit trail. Every money and catalog action calls ``audit_record``."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any

from django.db import models

from audit.models import AuditEvent


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, bytes):
        return value.hex()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def audit_snapshot(obj: models.Model, *, fields: list[str] | None = None) -> dict[str, Any]:
    """The concrete field values of a model instance, JSON-ready, for ``before``/``after``."""
    names = fields or [f.attname for f in obj._meta.concrete_fields]
    return {name: _jsonable(getattr(obj, name)) for name in names}


def audit_record(
    *,
    action: str,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str | int = "",
    actor: Any = None,
    actor_label: str = "",
    before: dict | None = None,
    after: dict | None = None,
    reason: str = "",
    ip_address: str | None = None,
) -> AuditEvent:
    """Append one event to the audit trail (inside the caller's transaction, so it commits with the change).

    ``actor`` is the user who acted, or a label string for commands and tasks.
    """
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or obj.pk
    if isinstance(actor, str):
        # Commands and tasks act under a label ("command:import_catalog"), not as a person.
        actor_label, actor = actor_label or actor, None
    user = actor if getattr(actor, "is_authenticated", False) else None
    if not actor_label:
        actor_label = getattr(user, "email", "") or getattr(user, "username", "") or "system"
    return AuditEvent.objects.create(
        actor=user,
        actor_label=actor_label[:200],
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        object_repr=(str(obj) if obj is not None else "")[:300],
        before=_jsonable(before) if before is not None else None,
        after=_jsonable(after) if after is not None else None,
        reason=reason,
        ip_address=ip_address,
    )
