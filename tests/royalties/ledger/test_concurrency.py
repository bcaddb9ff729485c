"""Concurrent posters on PostgreSQL: one key, one entry; a close and a post take turns."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection

from royalties.ledger.errors import IdempotencyConflictError, PeriodClosedError
from royalties.ledger.models import JournalEntry, Period, Posting
from royalties.ledger.services import PostingLine, account_get_or_create, journal_entry_post, period_close
from tests.royalties.ledger.factories import make_contributor, make_program

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

DAY = dt.date(2024, 3, 1)


def run_together(n: int, fn) -> list:
    """Start ``n`` threads that call ``fn(i)`` at the same moment; return each result or exception."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def worker(i: int) -> None:
        try:
            barrier.wait()
            results[i] = fn(i)
        except Exception as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


@pytest.fixture
def accounts():
    program = make_program()
    expense = account_get_or_create(kind="royalty_expense", currency="USD", program=program)
    payable = account_get_or_create(kind="contributor_payable", currency="USD", contributor=make_contributor())
    return expense, payable


def test_racing_posters_with_one_key_write_one_entry(accounts):
    expense, payable = accounts

    results = run_together(4, lambda i: journal_entry_post(
        kind="adjustment", period=DAY, idempotency_key="race", memo=f"poster {i}",
        lines=[PostingLine(expense, 50), PostingLine(payable, -50)],
    ))

    assert all(isinstance(r, JournalEntry) for r in results), results
    assert len({r.pk for r in results}) == 1
    assert JournalEntry.objects.count() == 1
    assert Posting.objects.count() == 2


def test_racing_posters_with_one_key_and_different_amounts_one_wins_the_rest_conflict(accounts):
    expense, payable = accounts

    results = run_together(3, lambda i: journal_entry_post(
        kind="adjustment", period=DAY, idempotency_key="race", memo="",
        lines=[PostingLine(expense, 50 + i), PostingLine(payable, -50 - i)],
    ))

    assert sum(isinstance(r, JournalEntry) for r in results) == 1
    assert sum(isinstance(r, IdempotencyConflictError) for r in results) == 2
    assert Posting.objects.count() == 2


def test_a_post_racing_a_close_either_lands_before_the_close_or_is_refused(accounts):
    expense, payable = accounts
    journal_entry_post(kind="adjustment", period=DAY, idempotency_key="first", memo="",
                       lines=[PostingLine(expense, 1), PostingLine(payable, -1)])

    def act(i: int):
        if i == 0:
            return period_close(day=DAY)
        return journal_entry_post(kind="adjustment", period=DAY, idempotency_key=f"p{i}", memo="",
                                  lines=[PostingLine(expense, 1), PostingLine(payable, -1)])

    results = run_together(3, act)

    assert not any(isinstance(r, Exception) and not isinstance(r, PeriodClosedError) for r in results), results
    closed_at = Period.objects.get(day=DAY).closed_at
    # Whatever the order, nothing in the period was created after it closed.
    assert not JournalEntry.objects.filter(period__day=DAY, created_at__gt=closed_at).exists()
