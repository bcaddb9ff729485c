"""Template filters for the catalog pages."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def bps_percent(bps: int | None) -> str:
    """Basis points as an exact percentage: 3333 -> "33.33%" (integer arithmetic, nothing rounded)."""
    if bps is None or bps == "":
        return ""
    bps = int(bps)
    return f"{bps // 100}.{bps % 100:02d}%"


_ACTION_LABELS = {
    "work.create": "Registered",
    "work.update": "Edited",
    "ownership.set": "Owners and splits set",
    "work.opt_out": "Opted out of future training",
    "work.opt_out_withdraw": "Opt-out withdrawn",
    "dispute.open": "Dispute opened",
    "dispute.resolve": "Dispute resolved",
}


@register.filter
def audit_label(event) -> str:
    """A reader's phrase for an audit event's action ("work.status" names the new status)."""
    if event.action == "work.status" and isinstance(event.after, dict):
        return f"Status changed to {event.after.get('status', '?')}"
    return _ACTION_LABELS.get(event.action, event.action)
