"""The finance pages: runs (create, approve by another person only, execute, progress, failures and retry, CSV),
reconciliation and the ledger explorer; finance users only, 404 for everyone else."""

from __future__ import annotations

import csv
import io

import pytest

from payouts import stripe_client
from payouts.models import PayoutRun
from payouts.services import payout_run_create, payout_run_submit
from royalties.ledger.models import Account, JournalEntry
from tests.conftest import login
from tests.payouts.conftest import DAY


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    monkeypatch.setattr(stripe_client, "_sleep", lambda seconds: None)


@pytest.fixture
def owed(accrue, make_ready_contributor, make_contributor):
    ada, bo = make_ready_contributor("Ada Lovelace"), make_ready_contributor("Bo Diddley")
    nobody = make_contributor("Cy Twombly")
    accrue({ada: 12_345_678, bo: 30_000_000, nobody: 40_000_000})
    return ada, bo, nobody


FINANCE_PAGES = ["/finance/", "/finance/runs/new/", "/finance/reconciliation/", "/finance/ledger/",
                 "/finance/ledger/accounts/", "/finance/ledger/export.csv"]


@pytest.mark.parametrize("path", FINANCE_PAGES)
@pytest.mark.parametrize("role", ["contributor", "catalog_admin", None])
def test_finance_pages_do_not_exist_for_anyone_else(client, make_role_user, path, role, db):
    login(client, make_role_user(role))

    assert client.get(path).status_code == 404


def test_run_pages_and_actions_of_a_real_run_are_404_for_a_contributor(client, owed, finance_user, contributor_user):
    run = payout_run_create(currency="USD", created_by=finance_user)
    login(client, contributor_user)
    for path in (f"/finance/runs/{run.pk}/", f"/finance/runs/{run.pk}/progress.json",
                 f"/finance/runs/{run.pk}/export.csv", f"/finance/reconciliation/{run.pk}/"):
        assert client.get(path).status_code == 404
    assert client.post(f"/finance/runs/{run.pk}/submit/").status_code == 404
    assert PayoutRun.objects.get().status == "draft"


def test_anonymous_visitors_are_sent_to_log_in(client, db):
    response = client.get("/finance/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_creating_a_run_shows_who_is_paid_and_who_is_left_out_with_the_reason(login_as, finance_user, owed):
    client = login_as(finance_user)

    page = client.get("/finance/runs/new/")
    assert page.status_code == 200
    response = client.post("/finance/runs/new/", {"currency": "usd", "as_of": "", "note": "May"})

    run = PayoutRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/finance/runs/{run.pk}/"
    detail = client.get(response["Location"]).content.decode()
    assert "Ada Lovelace" in detail
    assert "Bo Diddley" in detail
    assert "42.34 USD" in detail  # 12.34 + 30.00
    assert "Cy Twombly" in detail
    assert "No Stripe payout account" in detail
    assert "0.005678 USD" in detail  # Ada's sub-cent remainder, kept
    assert "Submit for approval" in detail


def test_a_bad_create_form_names_the_field_and_drafts_nothing(login_as, finance_user, owed):
    client = login_as(finance_user)

    response = client.post("/finance/runs/new/", {"currency": "dollars", "as_of": "2999-01-01"})

    assert response.status_code == 400
    body = response.content.decode()
    assert "Enter a three-letter currency code" in body
    assert not PayoutRun.objects.exists()
    response = client.post("/finance/runs/new/", {"currency": "USD", "as_of": "2999-01-01"})
    assert response.status_code == 400
    assert "is in the future" in response.content.decode()
    assert not PayoutRun.objects.exists()


def test_the_creator_sees_no_approve_button_and_a_posted_approval_is_refused(
        client, finance_user, finance_user_b, owed):
    run = payout_run_create(currency="USD", created_by=finance_user)
    payout_run_submit(run=run, actor=finance_user)
    login(client, finance_user)

    page = client.get(f"/finance/runs/{run.pk}/").content.decode()
    assert "Approve " not in page
    assert "another finance user must approve it" in page

    response = client.post(f"/finance/runs/{run.pk}/approve/", follow=True)
    assert "was created by you; another finance user must approve it" in response.content.decode()
    run.refresh_from_db()
    assert run.status == "pending_approval"

    login(client, finance_user_b)
    assert "Approve 42.34 USD to 2 contributors" in client.get(f"/finance/runs/{run.pk}/").content.decode()
    client.post(f"/finance/runs/{run.pk}/approve/")
    run.refresh_from_db()
    assert (run.status, run.approved_by) == ("approved", finance_user_b)


def test_execute_progress_failures_retry_and_export_through_the_pages(
        client, finance_user, finance_user_b, owed, fake_stripe, django_capture_on_commit_callbacks):
    ada, _bo, _ = owed
    run = payout_run_create(currency="USD", created_by=finance_user)
    payout_run_submit(run=run, actor=finance_user)
    login(client, finance_user_b)
    client.post(f"/finance/runs/{run.pk}/approve/")
    fake_stripe.add_fault("decline", message="Bank said no.")

    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/finance/runs/{run.pk}/execute/")

    progress = client.get(f"/finance/runs/{run.pk}/progress.json").json()
    assert progress["status"] == "completed_with_failures"
    assert (progress["done"], progress["total"], progress["percent"]) == (2, 2, 100)
    assert (progress["counts"]["paid"], progress["counts"]["failed"]) == (1, 1)
    assert progress["finished"] is True
    page = client.get(f"/finance/runs/{run.pk}/").content.decode()
    assert "Bank said no." in page
    assert "Retry failed payouts" in page

    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/finance/runs/{run.pk}/retry/")

    run.refresh_from_db()
    assert run.status == "completed"
    export = client.get(f"/finance/runs/{run.pk}/export.csv")
    assert export["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.content.decode())))
    payouts = {r["contributor"]: r for r in rows if r["row"] == "payout"}
    assert payouts["Ada Lovelace"]["amount_minor"] == "1234"
    assert payouts["Ada Lovelace"]["remainder_micros"] == "5678"
    assert {r["status_or_reason"] for r in payouts.values()} == {"paid"}
    assert [r["status_or_reason"] for r in rows if r["row"] == "excluded"] == ["no_account"]
    # the run page links each statement, which finance may download
    page = client.get(f"/finance/runs/{run.pk}/").content.decode()
    statement = run.payouts.get(contributor=ada).statement
    assert f"/finance/statements/{statement.pk}/pdf/" in page
    assert client.get(f"/finance/statements/{statement.pk}/pdf/")["Content-Type"] == "application/pdf"


def test_cancel_needs_a_reason(login_as, finance_user, owed):
    run = payout_run_create(currency="USD", created_by=finance_user)
    client = login_as(finance_user)

    response = client.post(f"/finance/runs/{run.pk}/cancel/", {"reason": ""}, follow=True)
    assert "reason must say why" in response.content.decode()
    client.post(f"/finance/runs/{run.pk}/cancel/", {"reason": "duplicate"})
    run.refresh_from_db()
    assert (run.status, run.cancel_reason) == ("cancelled", "duplicate")


def test_actions_need_post(login_as, finance_user, owed):
    run = payout_run_create(currency="USD", created_by=finance_user)
    assert login_as(finance_user).get(f"/finance/runs/{run.pk}/submit/").status_code == 405


def test_reconciliation_pages_list_runs_and_reconcile_on_demand(
        login_as, finance_user, finance_user_b, owed, approve, execute):
    run = payout_run_create(currency="USD", created_by=finance_user)
    approve(run)
    execute(run)
    client = login_as(finance_user)

    listing = client.get("/finance/reconciliation/").content.decode()
    assert f"#{run.pk} USD" in listing
    assert "never" in listing
    response = client.post(f"/finance/reconciliation/{run.pk}/", follow=True)

    body = response.content.decode()
    assert "no mismatch" in body.lower()
    assert "2 payouts, 2 Stripe transfers, 2 balance transactions" in body
    assert run.reconciliations.get().mismatch_count == 0


def test_the_ledger_explorer_filters_entries_shows_postings_and_exports(login_as, finance_user, owed):
    ada, _bo, _ = owed
    client = login_as(finance_user)

    page = client.get("/finance/ledger/", {"kind": "accrual"})
    assert page.status_code == 200
    entry = JournalEntry.objects.get(kind="accrual")
    assert f"/finance/ledger/entries/{entry.pk}/" in page.content.decode()
    assert "1 entry" in page.content.decode()
    assert "0 entries" in client.get("/finance/ledger/", {"kind": "payout"}).content.decode()
    assert "1 entry" in client.get("/finance/ledger/", {"contributor": ada.pk, "day_from": DAY.isoformat(),
                                                        "day_to": DAY.isoformat()}).content.decode()
    bad = client.get("/finance/ledger/", {"day_from": "2024-05-02", "day_to": "2024-05-01"})
    assert bad.status_code == 400
    assert "The last day comes before the first." in bad.content.decode()

    detail = client.get(f"/finance/ledger/entries/{entry.pk}/").content.decode()
    assert "Ada Lovelace" in detail
    assert "12.345678 USD" in detail
    assert "82.345678 USD" in detail  # the expense debit: the three accruals together
    assert "Ada Lovelace&#x27;s work" in detail  # accrual detail names the work

    accounts = client.get("/finance/ledger/accounts/", {"kind": "contributor_payable"}).content.decode()
    assert "30.000000 USD" in accounts
    assert "Bo Diddley" in accounts

    export = client.get("/finance/ledger/export.csv", {"kind": "accrual"})
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert len(rows) == 4  # one expense debit, three payable credits
    assert sum(int(r["amount_micros"]) for r in rows) == 0  # the entry balances
    payable = Account.objects.get(kind="contributor_payable", contributor=ada)
    assert {r["amount"] for r in rows if r["account_id"] == str(payable.pk)} == {"-12.345678"}
    assert client.get("/finance/ledger/entries/999999/").status_code == 404
