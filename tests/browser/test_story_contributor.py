"""A contributor in a real browser, on the demo's data (``manage.py demo --quick``): earnings equal to the ledger,
the generations that drew on a work beside it, a statement whose total is the transfer, the Stripe onboarding
status; another contributor cannot reach that statement by URL. Screenshots of each page, desktop and phone."""

from __future__ import annotations

import hashlib

import pytest
from django.db.models import Sum

from attribution.models import Attribution, Generation
from contributors.models import Contributor
from demo.corpus import ADA, GRACE, HEDY
from payouts.models import Payout, Statement
from payouts.money import format_micros, format_minor
from royalties.ledger.models import Accrual
from royalties.ledger.selectors import contributor_payable_balance
from tests.browser.conftest import PHONE
from tests.browser.story import no_sideways_scroll, run_quick_demo, sign_in, statement_csv_header

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo(fake_stripe, settings):
    settings.PAYOUTS_EXECUTION_THREADS = 2
    return run_quick_demo()


def copied_work_of(contributor: Contributor) -> tuple[int, Generation]:
    """One of the contributor's works that a near-copy generation drew on, and that generation."""
    for generation in Generation.objects.filter(metadata__has_key="near_copy_of_work").order_by("id"):
        work_id = generation.metadata["near_copy_of_work"]
        credited = Attribution.objects.filter(generation=generation, work_id=work_id, settled__amount_micros__gt=0)
        if credited.exists() and contributor.ownerships.filter(work_id=work_id).exists():
            return work_id, generation
    raise AssertionError(f"no near-copy of a work of {contributor} was credited")


def test_a_contributor_follows_their_money_from_generations_to_a_statement(new_page, demo, screenshot, tmp_path):
    ada = Contributor.objects.get(user__email=ADA)
    currency = "USD"
    page = new_page()
    sign_in(page, ADA, landing="**/portal/")
    balance = contributor_payable_balance(contributor=ada, currency=currency)
    earned = Accrual.objects.filter(contributor=ada).aggregate(total=Sum("amount_micros"))["total"]
    assert earned > 0

    # the dashboard: the balance owed now and what the last 30 days earned, with the chart, from the ledger
    money = page.get_by_role("heading", name="Earnings", exact=True).locator("..")
    assert format_micros(balance, currency) in money.inner_text()
    assert format_micros(earned, currency) in money.inner_text()
    assert money.get_by_role("img").first.is_visible()  # the chart (an SVG with role img)
    screenshot(page, "story-contributor-dashboard-desktop")

    # earnings: the balance and the total earned are the ledger's figures, to the micro-unit
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Earnings").click()
    page.wait_for_url("**/portal/earnings/")
    stats = page.locator(".stats").first.inner_text()
    assert format_micros(balance, currency) in stats
    assert format_micros(earned, currency) in stats
    # what was paid plus what is still owed is everything earned: nothing lost to rounding
    paid = Payout.objects.filter(contributor=ada, status="paid").aggregate(total=Sum("amount_micros"))["total"]
    assert paid + balance == earned
    assert page.locator("svg").first.is_visible()  # the earnings chart
    screenshot(page, "story-contributor-earnings-desktop")

    # a work's generations: the generated output beside the work, with its share; the near-copy is flagged
    work_id, generation = copied_work_of(ada)
    page.goto(f"/portal/earnings/works/{work_id}/")
    heading = page.get_by_role("heading", name="The generations that drew on it most")
    listing = heading.locator("..")
    assert listing.locator("li.generation").count() >= 1
    assert "share" in listing.inner_text()
    assert "copied your work" in listing.inner_text()
    if generation.output_media:
        image = listing.locator("img").first
        image.wait_for()
        assert page.evaluate("img => img.complete && img.naturalWidth > 0", image.element_handle())
    else:
        assert listing.locator("mark").count() >= 1  # the copied passage is marked
    assert page.get_by_role("heading", name="The work").is_visible()
    screenshot(page, "story-contributor-work-generations-desktop")

    # statements: the list, and a download whose total is the transfer Stripe made
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Statements").click()
    statement = Statement.objects.get(contributor=ada)
    payout = statement.payout
    row = page.get_by_role("row").filter(has_text=statement.number)
    assert format_minor(payout.amount_minor, currency) in row.inner_text()
    screenshot(page, "story-contributor-statements-desktop")
    with page.expect_download() as csv_download:
        row.get_by_role("link", name=f"Statement {statement.number} as CSV").click()
    data = (tmp_path / "statement.csv")
    csv_download.value.save_as(data)
    header = statement_csv_header(data.read_bytes())
    assert int(header["transfer_micros"]) == payout.amount_micros
    assert int(header["transfer_minor"]) == payout.amount_minor
    opening, accruals, other, closing = (int(header[k]) for k in (
        "opening_balance_micros", "accruals_micros", "other_movements_micros", "closing_balance_micros"))
    assert opening + accruals + other - closing == payout.amount_micros
    with page.expect_download() as pdf_download:
        row.get_by_role("link", name=f"Statement {statement.number} as PDF").click()
    pdf = tmp_path / "statement.pdf"
    pdf_download.value.save_as(pdf)
    assert hashlib.sha256(pdf.read_bytes()).hexdigest() == statement.pdf_sha256

    # the Stripe onboarding status (done in the demo) and the link to manage it
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Payout account").click()
    assert "Can receive payouts" in page.get_by_role("main").inner_text()
    screenshot(page, "story-contributor-payout-account-desktop")
    assert page.console_errors == []

    # the same pages on a phone: nothing scrolls sideways
    phone = new_page(viewport=PHONE, is_mobile=True, has_touch=True)
    sign_in(phone, ADA, landing="**/portal/")
    for path, name in (("/portal/", "story-contributor-dashboard-phone"),
                       ("/portal/earnings/", "story-contributor-earnings-phone"),
                       (f"/portal/earnings/works/{work_id}/", "story-contributor-work-generations-phone"),
                       ("/portal/statements/", "story-contributor-statements-phone")):
        phone.goto(path)
        screenshot(phone, name)
        assert no_sideways_scroll(phone, PHONE["width"]), path

    # Hedy has not onboarded: her page offers to start, and the run left her out
    hedy = new_page()
    sign_in(hedy, HEDY, landing="**/portal/")
    hedy.goto("/portal/payout-account/")
    assert hedy.get_by_role("button").filter(has_text="Stripe").count() >= 1
    screenshot(hedy, "story-contributor-payout-account-not-onboarded-desktop")


def test_a_contributor_cannot_reach_another_contributors_statement_by_url(new_page, demo):
    statement = Statement.objects.get(contributor__user__email=ADA)
    grace = Contributor.objects.get(user__email=GRACE)
    adas_own = Accrual.objects.filter(contributor=statement.contributor).exclude(
        work__ownerships__contributor=grace).values_list("work_id", flat=True).first()
    page = new_page()
    sign_in(page, GRACE, landing="**/portal/")

    for fmt in ("pdf", "csv"):
        response = page.goto(f"/portal/statements/{statement.pk}/{fmt}/")
        assert response.status == 404, fmt
    # nor through the finance download, nor Ada's earnings from one of her works
    assert page.goto(f"/finance/statements/{statement.pk}/pdf/").status == 404
    assert page.goto(f"/portal/earnings/works/{adas_own}/").status == 404
    # and her own statement list does not show it
    page.goto("/portal/statements/")
    assert statement.number not in page.get_by_role("main").inner_text()
