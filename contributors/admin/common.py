"""Pieces the catalog admin pages share: the audit history panel and turning service errors into messages."""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Model
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from audit.selectors import audit_event_list_for_many

HISTORY_ROWS = 100
# Before/after JSON can be long: wrap it inside its cell instead of widening the admin page.
_WRAP = mark_safe('style="white-space:pre-wrap;word-break:break-all"')


def history_table(objects: list[Model]) -> str:
    """The audit trail of ``objects`` as a read-only table: when, who, what, before -> after."""
    events = list(audit_event_list_for_many(objects=[o for o in objects if o is not None and o.pk])[:HISTORY_ROWS])
    if not events:
        return format_html("<p>{}</p>", "No recorded changes.")
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{} #{}</td><td>{}</td><td><code {}>{}</code></td><td><code {}>{}</code></td>"
        "<td>{}</td></tr>",
        (
            (
                f"{e.created_at:%Y-%m-%d %H:%M:%S}", e.actor_label, e.object_type, e.object_id,
                e.action, _WRAP, _compact(e.before), _WRAP, _compact(e.after), e.reason,
            )
            for e in events
        ),
    )
    return format_html(
        '<div class="audit-history" style="overflow-x:auto"><table style="width:100%"><thead><tr>'
        "<th>When (UTC)</th><th>Who</th><th>Object</th><th>Action</th>"
        "<th>Before</th><th>After</th><th>Reason</th></tr></thead><tbody>{}</tbody></table></div>",
        rows,
    )


def _compact(value) -> str:
    if value in (None, {}, []):
        return "—"
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 400 else text[:400] + "…"


def report_errors(request, exc: ValidationError, *, prefix: str = "") -> None:
    for message in exc.messages:
        messages.error(request, f"{prefix}{message}")
