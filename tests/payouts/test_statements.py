"""Statements: lines that add up to the transfer exactly, SHA-256 of the very bytes served, immutability,
chaining from one statement to the next, monthly statements of unpaid balances, and who may download."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from payouts import stripe_client
from payouts.errors import StatementError, StatementImmutableError
from payouts.models import Statement, StatementEntry
from payouts.services import (
    payout_run_create,
    statement_issue_for_payout,
    statement_issue_monthly,
    statements_issue_monthly,
)
from royalties.ledger.selectors import contributor_payable_balance
from royalties.ledger.services import hold_place, hold_release
from tests.conftest import login
from tests.payouts.conftest import DAY
from tests.royalties.ledger.factories import make_work


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    monkeypatch.setattr(stripe_client, "_sleep", lambda seconds: None)


def parse_csv(data: bytes) -> tuple[dict[str, str], list[dict[str, str]]]:
    head, _, table = data.decode().partition("\n\n")
    meta = dict(row for row in csv.reader(io.StringIO(head)))
    return meta, list(csv.DictReader(io.StringIO(table)))


def read(field) -> bytes:
    with field.storage.open(field.name, "rb") as handle:
        return handle.read()


@pytest.fixture
def pay(finance_user, approve, execute):
    def _pay():
        run = payout_run_create(currency="USD", created_by=finance_user)
        approve(run)
        return execute(run)

    return _pay


def test_a_payout_statement_explains_the_transfer_to_the_micro_unit(accrue, make_ready_contributor, pay):
    # given: two works earning on two days, one hold placed and released
    ada = make_ready_contributor("Ada")
    novel, poem = make_work(owner=ada, title="A novel"), make_work(owner=ada, title="A poem")
    accrue({ada: 10_000_001}, works={ada: novel})
    accrue({ada: 2_345_678}, day=DAY + dt.timedelta(days=1), works={ada: poem})
    hold = hold_place(contributor=ada, currency="USD", amount_micros=500_000, reason="check", idempotency_key="h",
                      period=DAY + dt.timedelta(days=1))
    hold_release(hold_entry=hold, reason="cleared", period=DAY + dt.timedelta(days=1))

    # when: a run pays her
    run = pay()

    # then: her statement's lines add up to the transfer, exactly
    payout = run.payouts.get()
    statement = payout.statement
    assert (payout.amount_minor, payout.remainder_micros) == (1_234, 5_679)
    assert statement.kind == "payout"
    assert (statement.opening_balance_micros, statement.accruals_micros, statement.other_movements_micros) == (
        0, 12_345_679, 0)
    assert statement.transfer_micros == 12_340_000
    assert statement.closing_balance_micros == 5_679 == contributor_payable_balance(contributor=ada, currency="USD")
    assert (statement.opening_balance_micros + statement.accruals_micros + statement.other_movements_micros
            - statement.closing_balance_micros) == statement.transfer_micros
    assert statement.period_start == DAY
    assert statement.period_end == run.as_of
    by_type = {}
    for line in statement.lines:
        by_type.setdefault(line["type"], []).append(line)
    assert [(w["label"], w["amount_micros"], w["generations"]) for w in by_type["accrual"]] == [
        ("A novel", 10_000_001, 1 + 10_000_001 % 7), ("A poem", 2_345_678, 1 + 2_345_678 % 7)]
    assert [h["amount_micros"] for h in by_type["hold"] + by_type["hold_release"]] == [-500_000, 500_000]
    assert by_type["transfer"][0]["stripe_transfer_id"] == payout.stripe_transfer_id
    assert sum(line["amount_micros"] for line in statement.lines if line["type"] != "closing") == (
        statement.closing_balance_micros)

    # the files: SHA-256 of exactly the stored bytes; the CSV says the same as the model
    pdf, csv_bytes = read(statement.pdf_file), read(statement.csv_file)
    assert pdf.startswith(b"%PDF")
    assert hashlib.sha256(pdf).hexdigest() == statement.pdf_sha256
    assert hashlib.sha256(csv_bytes).hexdigest() == statement.csv_sha256
    meta, rows = parse_csv(csv_bytes)
    assert (meta["statement"], meta["transfer_minor"], meta["stripe_transfer_id"]) == (
        statement.number, "1234", payout.stripe_transfer_id)
    movements = sum(int(r["amount_micros"]) for r in rows if r["line_type"] not in ("transfer", "closing"))
    closing = next(int(r["amount_micros"]) for r in rows if r["line_type"] == "closing")
    assert movements - closing == statement.transfer_micros == 12_340_000
    assert {r["amount"] for r in rows if r["line_type"] == "accrual"} == {"10.000001", "2.345678"}
    # every ledger entry it explains is recorded as covered by it
    assert StatementEntry.objects.filter(statement=statement).count() == 5  # 2 accruals, hold, release, payout


def test_the_next_statement_opens_with_the_last_closing_and_covers_only_what_is_new(
        accrue, make_ready_contributor, pay):
    ada = make_ready_contributor("Ada")
    accrue({ada: 12_345_678})
    first = pay().payouts.get().statement
    accrue({ada: 20_000_000}, day=DAY + dt.timedelta(days=3))

    second = pay().payouts.get().statement

    assert second.opening_balance_micros == first.closing_balance_micros == 5_678
    assert second.accruals_micros == 20_000_000
    assert second.transfer_micros == 20_000_000
    assert second.closing_balance_micros == 5_678
    assert second.lines[0]["label"] == f"Balance carried forward from statement {first.number}"
    # the new accrual is dated before the first statement's cut-off (today): the period starts with it
    assert (second.period_start, second.period_end) == (DAY + dt.timedelta(days=3), first.period_end)
    # no entry is covered twice
    assert StatementEntry.objects.count() == StatementEntry.objects.values("journal_entry").distinct().count()


def test_an_entry_booked_late_into_an_earlier_day_appears_on_the_next_statement(
        accrue, make_ready_contributor, pay, program):
    from tests.royalties.ledger.factories import make_program

    ada = make_ready_contributor("Ada")
    accrue({ada: 15_000_000})
    first = pay().payouts.get().statement
    # a second program's accrual for a day the first statement already covered, booked afterwards
    other = make_program(payout_threshold_minor=1_000)
    accrue({ada: 11_000_000}, day=DAY - dt.timedelta(days=10), target_program=other)

    second = pay().payouts.get().statement

    assert second.opening_balance_micros == first.closing_balance_micros == 0
    assert second.accruals_micros == 11_000_000 == second.transfer_micros


def test_statements_are_immutable(accrue, make_ready_contributor, pay):
    ada = make_ready_contributor()
    accrue({ada: 12_000_000})
    statement = pay().payouts.get().statement

    statement.closing_balance_micros = 0
    with pytest.raises(StatementImmutableError):
        statement.save()
    with pytest.raises(StatementImmutableError):
        statement.delete()
    with pytest.raises(StatementImmutableError):
        Statement.objects.filter(pk=statement.pk).update(closing_balance_micros=1)
    with pytest.raises(StatementImmutableError):
        Statement.objects.filter(pk=statement.pk).delete()
    # issuing again returns the same statement
    assert statement_issue_for_payout(payout=statement.payout_id).pk == statement.pk
    assert Statement.objects.get(pk=statement.pk).closing_balance_micros == 0


def test_a_contributor_not_paid_gets_a_monthly_statement_of_the_growing_balance(
        accrue, make_ready_contributor, finance_user, pay):
    small = make_ready_contributor("Small")  # below the 10.00 USD threshold
    paid = make_ready_contributor("Paid")
    accrue({small: 4_000_000, paid: 50_000_000}, day=dt.date(2024, 5, 10))
    accrue({small: 3_000_000}, day=dt.date(2024, 6, 3))

    may = statement_issue_monthly(contributor=small, currency="USD", month=dt.date(2024, 5, 1))
    june = statements_issue_monthly(month=dt.date(2024, 6, 1))

    assert (may.kind, may.period_start, may.period_end) == ("monthly", dt.date(2024, 5, 10), dt.date(2024, 5, 31))
    assert (may.opening_balance_micros, may.accruals_micros, may.closing_balance_micros) == (0, 4_000_000, 4_000_000)
    assert may.transfer_micros == 0
    june_small = Statement.objects.get(contributor=small, period_end=dt.date(2024, 6, 30))
    assert (june_small.opening_balance_micros, june_small.accruals_micros, june_small.closing_balance_micros) == (
        4_000_000, 3_000_000, 7_000_000)
    assert june["issued"] == 2  # Paid's May and June together: nobody has paid her yet either
    # idempotent: nothing new the second time
    assert statements_issue_monthly(month=dt.date(2024, 6, 1))["issued"] == 0
    with pytest.raises(StatementError, match="has not ended yet"):
        statement_issue_monthly(contributor=small, currency="USD", month=dt.date.today().replace(day=1))

    # a payout run later: the paid contributor's statement opens with her monthly closing; the small one is left out
    run = pay()
    statement = run.payouts.get().statement
    assert statement.opening_balance_micros == 50_000_000
    assert statement.accruals_micros == 0
    assert statement.transfer_micros == 50_000_000


def test_the_command_issues_monthly_statements_and_refuses_a_bad_month(accrue, make_ready_contributor):
    small = make_ready_contributor("Small")
    accrue({small: 4_000_000})
    out = io.StringIO()

    call_command("issue_statements", "--month", "2024-05", stdout=out)

    assert "1 issued" in out.getvalue()
    assert Statement.objects.filter(contributor=small, kind="monthly").count() == 1
    with pytest.raises(CommandError, match="YYYY-MM"):
        call_command("issue_statements", "--month", "May 2024")


def test_only_the_contributor_and_finance_can_download_a_statement(
        client, accrue, make_ready_contributor, make_contributor, pay, finance_user, catalog_admin_user):
    ada = make_ready_contributor()
    accrue({ada: 12_000_000})
    statement = pay().payouts.get().statement
    other = make_contributor("Someone else")

    login(client, ada.user)
    listing = client.get("/portal/statements/")
    assert listing.status_code == 200
    assert statement.number in listing.content.decode()
    response = client.get(f"/portal/statements/{statement.pk}/pdf/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert hashlib.sha256(response.content).hexdigest() == statement.pdf_sha256 == response["X-Content-SHA256"]
    csv_response = client.get(f"/portal/statements/{statement.pk}/csv/")
    assert hashlib.sha256(csv_response.content).hexdigest() == statement.csv_sha256
    assert client.get(f"/portal/statements/{statement.pk}/exe/").status_code == 404

    login(client, other.user)
    assert client.get(f"/portal/statements/{statement.pk}/pdf/").status_code == 404
    assert statement.number not in client.get("/portal/statements/").content.decode()
    assert client.get(f"/portal/statements/{statement.pk + 1000}/pdf/").status_code == 404

    login(client, catalog_admin_user)
    assert client.get(f"/finance/statements/{statement.pk}/pdf/").status_code == 404
    login(client, finance_user)
    assert client.get(f"/finance/statements/{statement.pk}/csv/").status_code == 200


def test_a_tampered_file_is_withheld(client, accrue, make_ready_contributor, pay):
    ada = make_ready_contributor()
    accrue({ada: 12_000_000})
    statement = pay().payouts.get().statement
    path = statement.pdf_file.storage.path(statement.pdf_file.name)
    with open(path, "ab") as handle:
        handle.write(b"%% edited")
    login(client, ada.user)

    response = client.get(f"/portal/statements/{statement.pk}/pdf/")

    assert response.status_code == 409
    assert b"%PDF" not in response.content


def test_the_database_refuses_to_change_an_issued_statement_whatever_the_client(accrue, make_ready_contributor, pay):
    from django.db import DatabaseError, connection, transaction

    ada = make_ready_contributor()
    accrue({ada: 12_000_000})
    statement = pay().payouts.get().statement

    for sql in ("UPDATE payouts_statement SET closing_balance_micros = 0 WHERE id = %s",
                "UPDATE payouts_statemententry SET owed_micros = 0 WHERE statement_id = %s"):
        # a savepoint, so the refused statement does not poison the test's transaction on PostgreSQL
        with pytest.raises(DatabaseError, match="never changes"), transaction.atomic(), connection.cursor() as cur:
            cur.execute(sql, [statement.pk])
    assert Statement.objects.get(pk=statement.pk).closing_balance_micros == statement.closing_balance_micros
