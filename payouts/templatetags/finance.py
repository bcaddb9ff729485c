"""Small helpers of the finance pages' templates."""

from __future__ import annotations

from django import template

register = template.Library()


@register.simple_tag(takes_context=True)
def query_with(context, key: str, value) -> str:
    """The current query string with ``key`` set to ``value`` (two paginated tables on one page keep each other's
    place and the filters)."""
    query = context["request"].GET.copy()
    query[key] = value
    return "?" + query.urlencode()


@register.filter
def neg(value: int) -> int:
    """``{{ posting.amount_micros|neg }}``: a credit (negative) shown as a positive amount in the credit column."""
    return -int(value)
