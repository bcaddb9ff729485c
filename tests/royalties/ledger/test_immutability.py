"""History cannot be rewritten: not through the ORM, and not with raw SQL at the database either."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import DatabaseError, connection, transaction

from royalties.ledger.errors import ImmutableRecordError
from royalties.ledger.models import Account, Accrual, JournalEntry, Period, Posting, RoyaltyProgramTerms
from royalties.ledger.services import PostingLine, account_get_or_create, journal_entry_post, period_close

pytestmark = pytest.mark.django_db

DAY = dt.date(2024, 3, 1)


@pytest.fixture
def entry(program, contributors):
    expense = account_get_or_create(kind="royalty_expense", currency="USD", program=program)
    payable = account_get_or_create(kind="contributor_payable", currency="USD", contributor=contributors[0])
    return journal_entry_post(kind="adjustment", period=DAY, idempotency_key="imm", memo="m",
                              lines=[PostingLine(expense, 10), PostingLine(payable, -10)])


def _raw(sql: str, params=()) -> None:
    # A savepoint, so the refused statement does not poison the test's transaction on PostgreSQL.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_the_orm_refuses_to_change_or_delete_entries_postings_and_accounts(entry):
    posting = entry.postings.first()

    entry.memo = "rewritten"
    with pytest.raises(ImmutableRecordError):
        entry.save()
    posting.amount_micros = 11
    with pytest.raises(ImmutableRecordError):
        posting.save()
    with pytest.raises(ImmutableRecordError):
        Posting.objects.filter(entry=entry).update(amount_micros=0)
    with pytest.raises(ImmutableRecordError):
        Posting.objects.filter(entry=entry).delete()
    with pytest.raises(ImmutableRecordError):
        JournalEntry.objects.all().delete()
    with pytest.raises(ImmutableRecordError):
        entry.delete()
    with pytest.raises(ImmutableRecordError):
        Posting.objects.bulk_update([posting], ["amount_micros"])
    with pytest.raises(ImmutableRecordError):
        Account.objects.update(currency="EUR")
    with pytest.raises(ImmutableRecordError):
        RoyaltyProgramTerms.objects.update(top_k=1)

    assert sorted(Posting.objects.values_list("amount_micros", flat=True)) == [-10, 10]


@pytest.mark.parametrize(
    ("table", "column", "value"),
    [
        ("ledger_posting", "amount_micros", 11),
        ("ledger_journalentry", "memo", "rewritten"),
        ("ledger_account", "currency", "EUR"),
        ("ledger_royaltyprogramterms", "top_k", 1),
    ],
)
def test_the_database_refuses_a_raw_sql_update(entry, table, column, value):
    with pytest.raises(DatabaseError, match="append-only"):
        _raw(f"UPDATE {table} SET {column} = %s", [value])  # noqa: S608 - test-controlled names

    assert Posting.objects.get(entry=entry, amount_micros__gt=0).amount_micros == 10
    assert JournalEntry.objects.get(pk=entry.pk).memo == "m"


def test_the_database_refuses_a_raw_update_of_accrual_detail(program, contributors):
    from royalties.ledger.services import accrual_post
    from tests.royalties.ledger.factories import make_work

    work = make_work()
    accrual_post(program=program, period=DAY, allocations=[(contributors[0].pk, work.pk, 5, 1, 0)],
                 expense_total_micros=5)
    with pytest.raises(DatabaseError, match="append-only"):
        _raw("UPDATE ledger_accrual SET amount_micros = 6, attributed_micros = 6")
    if connection.vendor == "postgresql":
        with pytest.raises(DatabaseError, match="DELETE on ledger_accrual refused"):
            _raw("DELETE FROM ledger_accrual")
    assert Accrual.objects.get().amount_micros == 5


@pytest.mark.postgres
@pytest.mark.parametrize("table", ["ledger_posting", "ledger_journalentry", "ledger_account"])
def test_postgresql_refuses_a_raw_sql_delete(entry, table):
    with pytest.raises(DatabaseError, match=r"DELETE on .* refused"):
        _raw(f"DELETE FROM {table}")  # noqa: S608
    assert Posting.objects.filter(entry=entry).count() == 2


def test_a_closed_period_is_final_at_the_database(entry):
    period_close(day=DAY)

    with pytest.raises(DatabaseError, match="closed"):
        _raw("UPDATE ledger_period SET status = 'open', closed_at = NULL WHERE day = %s", [DAY])
    assert Period.objects.get(day=DAY).is_closed


def test_the_database_refuses_rows_slipped_into_a_closed_period(entry):
    period_close(day=DAY)
    period_id = Period.objects.get(day=DAY).pk
    account_id = entry.postings.first().account_id

    # Straight past the service: an entry row, then a posting into the existing (now closed) entry.
    with pytest.raises(DatabaseError, match="closed"):
        _raw(
            "INSERT INTO ledger_journalentry (kind, period_id, idempotency_key, content_hash, memo, created_at, "
            "created_by_label, metadata) VALUES ('adjustment', %s, 'sneaky', '', '', %s, '', '{}')",
            [period_id, dt.datetime(2024, 3, 2, tzinfo=dt.UTC)],
        )
    with pytest.raises(DatabaseError, match="closed"):
        _raw("INSERT INTO ledger_posting (entry_id, account_id, amount_micros) VALUES (%s, %s, 5)",
             [entry.pk, account_id])
    assert JournalEntry.objects.count() == 1
    assert Posting.objects.count() == 2


def test_an_open_period_can_still_be_closed_by_the_service(entry):
    # The closed-period trigger fires only on closed rows: closing itself is an update of an open one.
    period = period_close(day=DAY)
    assert period.is_closed
