"""Showing integer minor units as money, exactly (no floats on the way)."""

from __future__ import annotations

from django import template

register = template.Library()

# ISO 4217 currencies without a minor unit (Stripe's "zero-decimal currencies"); the rest use cents.
ZERO_DECIMAL = {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf",
                "xof", "xpf"}
THREE_DECIMAL = {"bhd", "jod", "kwd", "omr", "tnd"}


def format_minor(amount_minor: int, currency: str) -> str:
    code = currency.lower()
    digits = 0 if code in ZERO_DECIMAL else 3 if code in THREE_DECIMAL else 2
    sign = "-" if amount_minor < 0 else ""
    units, fraction = divmod(abs(int(amount_minor)), 10**digits)
    text = f"{units:,}" + (f".{fraction:0{digits}d}" if digits else "")
    return f"{sign}{text} {code.upper()}"


@register.filter
def minor_units(amount_minor: int, currency: str) -> str:
    """``{{ payout.amount_minor|minor_units:payout.currency }}`` -> ``1,234.50 USD``."""
    return format_minor(amount_minor, currency)
