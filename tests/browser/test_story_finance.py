"""Finance in a real browser: A drafts a run and cannot approve it, B approves and executes it against the fake
Stripe server; a declined transfer shows as a failure and goes through on retry; the run reconciles, the ledger
explorer shows the payout entries, the CSV exports add up. Screenshots of every page on the way."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

from payouts.models import PayoutRun
from tests.browser.conftest import PHONE
from tests.browser.story import no_sideways_scroll, sign_in
from tests.conftest import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

YESTERDAY = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)


def finance_person(username: str) -> tuple:
    user = make_user("finance", username=username, mfa=False)
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    return user, secret


@pytest.fixture
def owed(fake_stripe, settings):
    """Three contributors owed royalties (accrued through the ledger service); two can receive transfers."""
    from contributors.services import contributor_register
    from payouts.services import connected_account_get_or_create, connected_account_sync
    from royalties.ledger.services import accrual_post
    from tests.royalties.ledger.factories import make_program, make_work

    settings.PAYOUTS_EXECUTION_THREADS = 2
    program = make_program(payout_threshold_minor=500)
    people = {}
    for name, micros, ready in (("Ada Lovelace", 12_345_678, True), ("Bo Diddley", 20_000_000, True),
                                ("Cleo Laine", 9_000_000, False)):
        contributor = contributor_register(user=make_user(username=name.split()[0].lower()), display_name=name,
                                           country="US")
        if ready:
            account = connected_account_get_or_create(contributor=contributor)
            fake_stripe.complete_onboarding(account.stripe_account_id)
            connected_account_sync(connected_account=account)
        people[name] = (contributor, make_work(owner=contributor, title=f"{name}'s song"), micros)
    rows = [(c.pk, w.pk, micros, 3, 0) for c, w, micros in people.values()]
    accrual_post(program=program, period=YESTERDAY, allocations=rows,
                 expense_total_micros=sum(r[2] for r in rows))
    return people


def test_a_run_made_by_a_is_approved_by_b_and_executed(new_page, owed, fake_stripe, screenshot):
    finance_a, secret_a = finance_person("fin.a")
    finance_b, secret_b = finance_person("fin.b")

    # given: finance A drafts the run of yesterday's balances
    page_a = new_page()
    sign_in(page_a, finance_a.email, password=PASSWORD, totp_secret=secret_a)
    page_a.goto("/finance/")
    page_a.locator(".page-head").get_by_role("link", name="New run").click()
    page_a.get_by_label("Balances as of").fill(YESTERDAY.isoformat())
    page_a.get_by_label("Note").fill("Yesterday's royalties")
    screenshot(page_a, "finance-run-new-desktop")
    page_a.get_by_role("button", name="Draft the run").click()
    page_a.wait_for_url("**/finance/runs/*/")
    run = PayoutRun.objects.get()
    # the totals and lines a reviewer checks: two payouts (floored to cents), Cleo left out without an account
    stats = page_a.locator(".stats").inner_text()
    assert "2\npayouts" in stats
    assert "32.34 USD\ntotal to transfer" in stats
    assert run.total_minor == 1_234 + 2_000
    lines = page_a.get_by_role("table").first.inner_text()
    assert "Ada Lovelace" in lines
    assert "Bo Diddley" in lines
    assert "Cleo Laine" in page_a.get_by_role("main").inner_text()
    screenshot(page_a, "finance-run-draft-desktop")

    # when: A submits it, A cannot approve it: no button, and a forged approval is refused
    page_a.get_by_role("button", name="Submit for approval").click()
    page_a.wait_for_load_state()
    assert page_a.get_by_text("another finance user must approve it").first.is_visible()
    assert page_a.get_by_role("button", name="Approve").count() == 0
    token = next(c["value"] for c in page_a.context.cookies() if c["name"] == "csrftoken")
    forged = page_a.request.post(f"/finance/runs/{run.pk}/approve/", form={"csrfmiddlewaretoken": token})
    assert forged.ok  # the page answers with the run and the refusal
    assert "was created by you" in forged.text()
    run.refresh_from_db()
    assert run.status == PayoutRun.Status.PENDING_APPROVAL
    screenshot(page_a, "finance-run-pending-own-desktop")

    # then: B approves and executes; one transfer is declined by the bank
    page_b = new_page()
    sign_in(page_b, finance_b.email, password=PASSWORD, totp_secret=secret_b)
    page_b.goto(f"/finance/runs/{run.pk}/")
    screenshot(page_b, "finance-run-pending-approval-desktop")
    page_b.get_by_role("button", name="Approve").click()
    page_b.wait_for_load_state()
    assert "Approved" in page_b.locator(".messages").inner_text()
    fake_stripe.add_fault("decline", count=1, message="The destination bank refused the transfer.")
    page_b.get_by_role("button", name="Execute: send the transfers").click()
    page_b.wait_for_load_state()
    page_b.get_by_text("Completed with failures").first.wait_for()
    assert "The destination bank refused the transfer." in page_b.get_by_role("main").inner_text()
    screenshot(page_b, "finance-run-failures-desktop")

    # the failure is retried with a new attempt and the run completes
    page_b.get_by_role("button", name="Retry failed payouts").click()
    page_b.wait_for_load_state()
    page_b.locator(".page-head").get_by_text("Completed", exact=True).wait_for()
    run.refresh_from_db()
    assert (run.status, run.created_by, run.approved_by) == ("completed", finance_a, finance_b)
    assert sorted(run.payouts.values_list("status", flat=True)) == ["paid", "paid"]
    assert "2 of 2 payouts settled (100%)" in page_b.locator("#progress-text").inner_text()
    screenshot(page_b, "finance-run-completed-desktop")

    # the run reconciles with Stripe
    page_b.locator(".button-group").get_by_role("link", name="Reconciliation").click()
    page_b.get_by_role("button", name="Reconcile now").click()
    page_b.get_by_text("No mismatch").first.wait_for()
    screenshot(page_b, "finance-reconciliation-desktop")

    # the ledger explorer shows the payout entries; the balances page the accounts
    page_b.goto("/finance/ledger/")
    page_b.get_by_label("Kind").select_option("payout")
    page_b.get_by_role("button", name="Filter").click()
    entries = page_b.get_by_role("table").inner_text()
    assert entries.count("payout") >= 2
    screenshot(page_b, "finance-ledger-entries-desktop")
    page_b.get_by_role("table").get_by_role("link").first.click()
    screenshot(page_b, "finance-ledger-entry-desktop")
    page_b.goto("/finance/ledger/accounts/")
    screenshot(page_b, "finance-ledger-accounts-desktop")

    # the CSV exports add up to the run and the ledger
    export = page_b.request.get(f"/finance/runs/{run.pk}/export.csv")
    rows = list(csv.DictReader(io.StringIO(export.text())))
    assert sum(int(r["amount_minor"]) for r in rows if r["row"] == "payout") == run.total_minor
    assert {r["status_or_reason"] for r in rows if r["row"] == "excluded"} == {"no_account"}
    ledger = page_b.request.get("/finance/ledger/export.csv")
    assert ledger.ok
    assert ledger.headers["content-type"].startswith("text/csv")
    assert page_a.console_errors == []
    assert page_b.console_errors == []


def test_finance_pages_on_a_phone(new_page, owed, screenshot):
    from payouts.services import payout_run_create

    finance_a, secret_a = finance_person("fin.phone")
    run = payout_run_create(currency="USD", created_by=finance_a, as_of=YESTERDAY)
    page = new_page(viewport=PHONE, is_mobile=True, has_touch=True)
    sign_in(page, finance_a.email, password=PASSWORD, totp_secret=secret_a)

    for path, name in ((f"/finance/runs/{run.pk}/", "finance-run-draft-phone"), ("/finance/", "finance-runs-phone"),
                       ("/finance/ledger/", "finance-ledger-entries-phone")):
        page.goto(path)
        screenshot(page, name)
        assert no_sideways_scroll(page, PHONE["width"]), path

    # a draft can be cancelled, with a reason kept in the run's history; its balances carry forward
    page.goto(f"/finance/runs/{run.pk}/")
    page.get_by_text("Cancel this run").click()
    page.get_by_label("Why is it cancelled?").fill("Drafted on the wrong day")
    page.get_by_role("button", name="Cancel the run").click()
    page.wait_for_load_state()
    assert "Cancelled" in page.locator(".page-head").inner_text()
    assert "Drafted on the wrong day" in page.get_by_role("heading", name="History").locator("..").inner_text()
    run.refresh_from_db()
    assert (run.status, run.cancelled_by) == ("cancelled", finance_a)
    screenshot(page, "finance-run-cancelled-phone")
