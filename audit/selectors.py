"""Reading the audit trail."""

from __future__ import annotations

from django.db.models import Model, QuerySet

from audit.models import AuditEvent


def audit_event_list_for(*, obj: Model) -> QuerySet[AuditEvent]:
    """Every event recorded about one object, newest first."""
    return AuditEvent.objects.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk))
