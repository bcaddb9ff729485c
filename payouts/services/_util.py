"""Small helpers shared by the payouts services."""

from __future__ import annotations

import datetime as dt


def from_unix(value: int | None) -> dt.datetime | None:
    """Stripe's Unix timestamps as aware datetimes (UTC); None stays None."""
    if value is None:
        return None
    return dt.datetime.fromtimestamp(int(value), tz=dt.UTC)


def from_unix_required(value: int) -> dt.datetime:
    """A Unix timestamp Stripe always sends (``created``) as an aware datetime (UTC)."""
    return dt.datetime.fromtimestamp(int(value), tz=dt.UTC)
