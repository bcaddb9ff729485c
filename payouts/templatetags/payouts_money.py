"""Showing integer minor units and micro-units as money, exactly (no floats on the way)."""

from __future__ import annotations

from django import template

from payouts.money import format_micros, format_minor, plain_micros

register = template.Library()


@register.filter
def minor_units(amount_minor: int, currency: str) -> str:
    """``{{ payout.amount_minor|minor_units:payout.currency }}`` -> ``1,234.50 USD``."""
    if amount_minor is None:
        return "—"
    return format_minor(amount_minor, currency)


@register.filter
def micro_units(amount_micros: int, currency: str) -> str:
    """``{{ line.amount_micros|micro_units:"USD" }}`` -> ``12.345678 USD`` (every micro-unit shown)."""
    if amount_micros is None:
        return "—"
    return format_micros(amount_micros, currency)


@register.filter
def micros_plain(amount_micros: int) -> str:
    """``-12345678`` -> ``-12.345678``: micro-units as a decimal, for tables whose currency is given elsewhere."""
    if amount_micros is None:
        return "—"
    return plain_micros(amount_micros)
