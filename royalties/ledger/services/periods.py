"""Ledger periods: one per UTC calendar day, opened on first use, closed once and for good."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils import timezone

from royalties.ledger.errors import LedgerValidationError, PeriodClosedError
from royalties.ledger.models import Period
from royalties.ledger.services.common import actor_label, as_day, as_user, audit, utc_today


def period_get_or_create(*, day: dt.date) -> Period:
    """The period of ``day``, created open if it does not exist yet."""
    day = as_day(day, "day")
    period, _ = Period.objects.get_or_create(day=day)
    return period


def period_resolve(period: Period | dt.date, *, field: str = "period") -> Period:
    """Accept a Period or a day (creating its period); used by every posting service."""
    if isinstance(period, Period):
        if period.pk is None:
            raise LedgerValidationError(f"{field} must be a saved period", field=field)
        return period
    if isinstance(period, dt.date) and not isinstance(period, dt.datetime):
        return period_get_or_create(day=period)
    raise LedgerValidationError(f"{field} must be a Period or a date, got {period!r}", field=field)


def period_lock_open(period: Period, *, field: str = "period") -> Period:
    """Lock the period row for the rest of the transaction and refuse if it is closed.

    The lock makes posting and closing take turns: a close waits for postings in flight to commit and then
    sees them, and a posting that waited for a close sees the period closed and is refused.
    """
    locked = Period.objects.select_for_update().get(pk=period.pk)
    if locked.is_closed:
        raise PeriodClosedError(
            f"period {locked.day} was closed at {locked.closed_at:%Y-%m-%d %H:%M:%S} UTC; post to an open "
            "period (a correction of a closed day is booked in the current period)",
            field=field,
        )
    return locked


@transaction.atomic
def period_close(*, day: dt.date, closed_by: Any = None, closed_by_label: str = "") -> Period:
    """Close the period of ``day`` (idempotent). Days close in order, and only once they have ended."""
    day = as_day(day, "day")
    closed_by = as_user(closed_by, "closed_by")
    if day >= utc_today():
        raise LedgerValidationError(
            f"day {day} has not ended yet (UTC); a period can be closed only after its day is over", field="day"
        )
    period = period_get_or_create(day=day)
    period = Period.objects.select_for_update().get(pk=period.pk)
    if period.is_closed:
        return period
    earlier_open = Period.objects.filter(day__lt=day, status=Period.Status.OPEN).order_by("day").first()
    if earlier_open is not None:
        raise LedgerValidationError(
            f"period {earlier_open.day} is still open; close periods in order (it comes before {day})", field="day"
        )
    period.status = Period.Status.CLOSED
    period.closed_at = timezone.now()
    period.closed_by = closed_by
    period.closed_by_label = actor_label(closed_by, closed_by_label)
    period.save(update_fields=["status", "closed_at", "closed_by", "closed_by_label"])
    audit(
        action="ledger.period.close", obj=period, actor=closed_by, actor_label=period.closed_by_label,
        before={"status": Period.Status.OPEN}, after={"status": period.status, "closed_at": period.closed_at},
    )
    return period
