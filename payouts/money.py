"""Money at the payout boundary: the ledger's micro-units become Stripe's minor units here, and only here.

The ledger keeps amounts in micro-units (1e-6 of the currency unit) so that sub-cent accruals of single
generations stay exact; Stripe moves whole minor units (cents, yen, fils). ``micros_to_minor`` is the one
conversion: it floors to whole minor units and returns the remainder, which is never rounded away but stays
on the contributor's payable balance and carries forward to the next run.
"""

from __future__ import annotations

from dataclasses import dataclass

MICROS_PER_UNIT = 1_000_000

# ISO 4217 currencies without a minor unit (Stripe's "zero-decimal currencies"), and those with three
# decimals; every other currency Stripe supports has two.
ZERO_DECIMAL = frozenset({"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
                          "xaf", "xof", "xpf"})
THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})


class MoneyError(ValueError):
    """An amount or currency the conversion refuses (never silently coerced); ``field`` names the input."""

    def __init__(self, message: str, *, field: str):
        super().__init__(message)
        self.message = message
        self.field = field


def currency_exponent(currency: str) -> int:
    """Digits of the currency's minor unit: 0 (JPY), 3 (KWD) or 2 (USD, EUR and the rest)."""
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
        raise MoneyError(f"currency must be a three-letter ISO 4217 code, got {currency!r}", field="currency")
    code = currency.lower()
    return 0 if code in ZERO_DECIMAL else 3 if code in THREE_DECIMAL else 2


def micros_per_minor(currency: str) -> int:
    return MICROS_PER_UNIT // 10 ** currency_exponent(currency)


def _as_int(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MoneyError(f"{field} must be an integer, got {value!r}", field=field)
    return value


@dataclass(frozen=True)
class MinorConversion:
    """``amount_minor`` whole minor units (= ``amount_micros``) and the ``remainder_micros`` left behind."""

    amount_minor: int
    amount_micros: int
    remainder_micros: int


def micros_to_minor(*, amount_micros: int, currency: str) -> MinorConversion:
    """Floor a non-negative micro-unit balance to whole minor units; the remainder carries forward.

    ``amount_micros == conversion.amount_micros + conversion.remainder_micros`` always holds exactly.
    """
    amount_micros = _as_int(amount_micros, "amount_micros")
    if amount_micros < 0:
        raise MoneyError(f"amount_micros must be >= 0 (a balance the platform owes), got {amount_micros}",
                         field="amount_micros")
    step = micros_per_minor(currency)
    minor, remainder = divmod(amount_micros, step)
    return MinorConversion(amount_minor=minor, amount_micros=minor * step, remainder_micros=remainder)


def minor_to_micros(*, amount_minor: int, currency: str) -> int:
    """Whole minor units as micro-units (exact: every minor unit is a whole number of micro-units)."""
    return _as_int(amount_minor, "amount_minor") * micros_per_minor(currency)


def format_minor(amount_minor: int, currency: str) -> str:
    """``123450, "usd"`` -> ``"1,234.50 USD"`` (integers only: no float on the way)."""
    digits = currency_exponent(currency)
    sign = "-" if amount_minor < 0 else ""
    units, fraction = divmod(abs(int(amount_minor)), 10**digits)
    text = f"{units:,}" + (f".{fraction:0{digits}d}" if digits else "")
    return f"{sign}{text} {currency.upper()}"


def format_micros(amount_micros: int, currency: str) -> str:
    """``12345678, "usd"`` -> ``"12.345678 USD"``: every micro-unit shown, so statement lines add up on paper."""
    sign = "-" if amount_micros < 0 else ""
    units, fraction = divmod(abs(int(amount_micros)), MICROS_PER_UNIT)
    return f"{sign}{units:,}.{fraction:06d} {currency.upper()}"


def plain_micros(amount_micros: int) -> str:
    """``-12345678`` -> ``"-12.345678"``: a machine-readable decimal for CSV files (no separators, no code)."""
    sign = "-" if amount_micros < 0 else ""
    units, fraction = divmod(abs(int(amount_micros)), MICROS_PER_UNIT)
    return f"{sign}{units}.{fraction:06d}"
