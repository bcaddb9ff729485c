"""check_ledger finds every kind of breach. To break the ledger the tests must get past the database's own
guards first: they switch a trigger off inside the test transaction (rolled back afterwards), or write rows
the guards allow but the services never would."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction

from royalties.ledger.checks import ledger_check
from royalties.ledger.models import JournalEntry, Posting, RoyaltyProgramTerms
from royalties.ledger.services import (
    PostingLine,
    accrual_correct,
    accrual_post,
    hold_place,
    hold_release,
    journal_entry_post,
    journal_entry_reverse,
    period_close,
)
from royalties.ledger.services.accounts import account_get_or_create
from tests.royalties.ledger.factories import make_contributor, make_program, make_work

REPO = Path(__file__).resolve().parents[3]
DAY = dt.date(2024, 3, 1)


def build_ledger():
    """A small ledger with every kind of entry: accruals, a correction, a closed day, a hold and its release."""
    program = make_program()
    x, y = make_contributor(), make_contributor()
    a, b = make_work(), make_work()
    rows = [(x.pk, a.pk, 600, 2, 100), (y.pk, a.pk, 300, 2, 50), (y.pk, b.pk, 100, 0, 100)]
    accrual_post(program=program, period=DAY, allocations=rows, expense_total_micros=1_000)
    accrual_post(program=program, period=DAY + dt.timedelta(days=1), allocations=rows, expense_total_micros=1_000)
    period_close(day=DAY)
    accrual_correct(program=program, day=DAY, allocations=[(x.pk, a.pk, 700, 2, 100)], expense_total_micros=700,
                    reason="recomputed")
    hold = hold_place(contributor=x, currency="USD", amount_micros=500, reason="dispute", idempotency_key="h1",
                      period=DAY + dt.timedelta(days=1))
    hold_release(hold_entry=hold, reason="resolved", period=DAY + dt.timedelta(days=1))
    return program, x, y


def run_check() -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("check_ledger", stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), err.getvalue() + str(exc)
    return 0, out.getvalue(), err.getvalue()


@contextlib.contextmanager
def trigger_off(table: str, name: str):
    """Switch one guard trigger off inside the current transaction (the test's, rolled back afterwards)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # ALTER TABLE refuses to run while deferred foreign-key checks are pending: run them now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {name}")
            yield
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER {name}")
        else:
            cursor.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = %s", [name])
            (sql,) = cursor.fetchone()
            cursor.execute(f"DROP TRIGGER {name}")
            yield
            cursor.execute(sql)


def update_trigger(table: str) -> str:
    return f"{table}_immutable" if connection.vendor == "postgresql" else f"{table}_no_update"


@pytest.mark.django_db
def test_a_sound_ledger_passes():
    build_ledger()

    code, out, err = run_check()

    assert code == 0, err
    assert "ledger check passed" in out
    assert ledger_check().entries == JournalEntry.objects.count() == 6


@pytest.mark.django_db
def test_a_posting_changed_behind_the_services_back_is_caught_four_ways():
    build_ledger()
    posting = Posting.objects.filter(entry__kind="accrual", amount_micros__lt=0).order_by("id").first()

    with trigger_off("ledger_posting", update_trigger("ledger_posting")):
        with connection.cursor() as cursor:
            cursor.execute("UPDATE ledger_posting SET amount_micros = amount_micros - 1 WHERE id = %s", [posting.pk])
        code, _, err = run_check()

    assert code == 1
    assert f"[balanced] entry #{posting.entry_id} is off by -1 micros in USD" in err
    assert f"[content_hash] entry #{posting.entry_id}" in err
    assert f"[accrual] entry #{posting.entry_id}: detail gives contributor" in err
    assert "[triggers] database trigger" in err  # the guard itself was missing or disabled during the check


@pytest.mark.django_db
def test_accrual_detail_that_no_longer_explains_its_entry_is_caught():
    build_ledger()
    entry = JournalEntry.objects.filter(kind="accrual").order_by("id").last()

    with trigger_off("ledger_accrual", update_trigger("ledger_accrual")):
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE ledger_accrual SET amount_micros = amount_micros + 5, attributed_micros = attributed_micros + 5"
                " WHERE journal_entry_id = %s", [entry.pk],
            )
        result = ledger_check()

    messages = [str(b) for b in result.breaches if b.check != "triggers"]
    assert any(m.startswith(f"[accrual] entry #{entry.pk}: detail sums to") for m in messages)
    assert any(m.startswith(f"[content_hash] entry #{entry.pk}") for m in messages)


@pytest.mark.django_db
def test_a_deleted_posting_is_caught_even_where_sqlite_does_not_trap_the_delete():
    build_ledger()
    posting = Posting.objects.filter(entry__kind="hold").first()

    guard = contextlib.nullcontext() if connection.vendor == "sqlite" else trigger_off(
        "ledger_posting", "ledger_posting_immutable")
    with guard:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM ledger_posting WHERE id = %s", [posting.pk])
        messages = [str(b) for b in ledger_check().breaches]

    assert f"[content_hash] entry #{posting.entry_id}: its rows no longer match" in " ".join(messages)
    assert any(f"entry #{posting.entry_id} is off by" in m for m in messages)
    # The release of that hold no longer negates it exactly.
    assert any(m.startswith("[reversal]") and "does not exactly negate the postings" in m for m in messages)


@pytest.mark.django_db
def test_a_posting_slipped_into_a_closed_period_is_caught():
    build_ledger()
    closed = JournalEntry.objects.filter(period__day=DAY).order_by("id").first()

    trigger = "ledger_journalentry_open_period"
    with trigger_off("ledger_journalentry", trigger):
        late = JournalEntry.objects.create(kind="adjustment", period=closed.period, idempotency_key="late",
                                           content_hash="", memo="after close")
        result = ledger_check()

    assert f"[closed_period] entry #{late.pk} was posted to {DAY} after the period closed" in map(str, result.breaches)


@pytest.mark.django_db
def test_a_reversal_that_does_not_negate_and_terms_changed_retroactively_are_caught():
    program, x, _ = build_ledger()
    expense = account_get_or_create(kind="royalty_expense", currency="USD", program=program)
    payable = account_get_or_create(kind="contributor_payable", currency="USD", contributor=x)
    day = DAY + dt.timedelta(days=2)
    entry = journal_entry_post(kind="adjustment", period=day, idempotency_key="adj", memo="",
                               lines=[PostingLine(expense, 10), PostingLine(payable, -10)])
    # Rows the database accepts but no service would write: a "reversal" for a different amount...
    bogus = JournalEntry.objects.create(kind="reversal", period=entry.period, idempotency_key="bogus",
                                        content_hash="", reverses=entry)
    Posting.objects.create(entry=bogus, account=expense, amount_micros=-9)
    Posting.objects.create(entry=bogus, account=payable, amount_micros=9)
    # ...and terms inserted straight into the table, back-dated under days already accrued.
    RoyaltyProgramTerms.objects.create(program=program, version=9, effective_from=DAY, currency="USD",
                                       pool_kind="revenue_share", pool_bps=1, top_k=1)

    messages = [str(b) for b in ledger_check().breaches]

    assert f"[reversal] entry #{bogus.pk} does not exactly negate the postings of #{entry.pk}" in messages
    assert any(m.startswith("[terms] accrual entry #") and "are now recorded as in force" in m for m in messages)


@pytest.mark.django_db
def test_reversing_an_entry_twice_is_impossible_even_past_the_service():
    build_ledger()
    original = JournalEntry.objects.filter(kind="accrual", reversed_by=None).order_by("id").last()
    journal_entry_reverse(entry=original, period=DAY + dt.timedelta(days=3))

    with pytest.raises(IntegrityError), transaction.atomic():
        JournalEntry.objects.create(kind="reversal", period=original.period, idempotency_key="second",
                                    content_hash="", reverses=original)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_command_exit_code_from_a_real_process():
    build_ledger()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "royalties.settings_test",
        "ROYALTIES_TEST_DB_NAME": str(connection.settings_dict["NAME"]),
        "ROYALTIES_DATA_DIR": str(settings.DATA_DIR),
        "PYTHONPATH": str(REPO),
    }

    def run():
        return subprocess.run([sys.executable, "manage.py", "check_ledger"], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=120)

    clean = run()
    assert clean.returncode == 0, clean.stderr
    assert "ledger check passed: 6 entries" in clean.stdout

    entry = JournalEntry.objects.filter(kind="hold").first()
    bogus = JournalEntry.objects.create(kind="reversal", period=entry.period, idempotency_key="bogus",
                                        content_hash="",
                                        reverses=JournalEntry.objects.filter(kind="accrual", reversed_by=None).first())
    Posting.objects.create(entry=bogus, account=entry.postings.first().account, amount_micros=1)

    broken = run()
    assert broken.returncode == 1
    assert f"entry #{bogus.pk} is off by +1 micros in USD" in broken.stderr
    assert "ledger check FAILED" in broken.stderr
