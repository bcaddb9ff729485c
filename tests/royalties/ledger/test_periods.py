"""Periods are UTC days: closed in order, only once over, and never reopened."""

from __future__ import annotations

import datetime as dt

import pytest

from audit.models import AuditEvent
from royalties.ledger.errors import LedgerValidationError
from royalties.ledger.models import Period
from royalties.ledger.services import period_close, period_get_or_create
from royalties.ledger.services.common import utc_today

pytestmark = pytest.mark.django_db


def test_closing_records_who_and_when_and_is_idempotent(finance_user):
    day = dt.date(2024, 1, 1)

    period = period_close(day=day, closed_by=finance_user)

    assert period.is_closed
    assert period.closed_by == finance_user
    assert period.closed_at is not None
    assert period_close(day=day).closed_at == period.closed_at
    assert AuditEvent.objects.filter(action="ledger.period.close", object_id=str(period.pk)).count() == 1


def test_periods_close_in_order():
    period_get_or_create(day=dt.date(2024, 1, 1))

    with pytest.raises(LedgerValidationError, match="period 2024-01-01 is still open; close periods in order"):
        period_close(day=dt.date(2024, 1, 2))
    period_close(day=dt.date(2024, 1, 1))
    assert period_close(day=dt.date(2024, 1, 2)).is_closed


def test_a_day_that_has_not_ended_cannot_be_closed():
    with pytest.raises(LedgerValidationError, match="has not ended yet") as exc:
        period_close(day=utc_today())
    assert exc.value.field == "day"
    assert not Period.objects.filter(status=Period.Status.CLOSED).exists()


def test_a_datetime_is_not_a_day():
    with pytest.raises(LedgerValidationError, match="must be a date"):
        period_get_or_create(day=dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
