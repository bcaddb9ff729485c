"""Reading the audit trail."""

from __future__ import annotations

from django.db.models import Model, Q, QuerySet

from audit.models import AuditEvent


def audit_event_list_for(*, obj: Model) -> QuerySet[AuditEvent]:
    """Every event recorded about one object, newest first."""
    return AuditEvent.objects.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk))


def audit_event_list_for_many(*, objects: list[Model]) -> QuerySet[AuditEvent]:
    """Every event about any of ``objects`` (e.g. a work and its disputes), newest first."""
    condition = Q(pk__in=[])
    by_type: dict[str, list[str]] = {}
    for obj in objects:
        by_type.setdefault(obj._meta.label_lower, []).append(str(obj.pk))
    for object_type, ids in by_type.items():
        condition |= Q(object_type=object_type, object_id__in=ids)
    return AuditEvent.objects.filter(condition)
