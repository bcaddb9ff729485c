"""The catalog admin in a real browser, on the demo's data: signs in with the demo's printed TOTP secret, finds the
contributors, the works (the opt-out among them), the open dispute in the queue, both model versions with their
manifests (the opted-out work is in neither), and the model-service API keys the demo used. Finance A then looks
at the demo's run, its reconciliation and the ledger. Screenshots of each page."""

from __future__ import annotations

import pytest

from attribution.models import ApiKey, ModelVersion
from contributors.models import Dispute, Work
from demo.corpus import CATALOG, DEMO_PASSWORD, FINANCE_A, OPTED_OUT_TITLE, demo_totp_secret
from payouts.models import PayoutRun
from tests.accounts.totp import totp_code
from tests.browser.conftest import PHONE
from tests.browser.story import no_sideways_scroll, run_quick_demo, sign_in_demo_staff

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo(fake_stripe, settings):
    settings.PAYOUTS_EXECUTION_THREADS = 2
    return run_quick_demo()


def test_the_catalog_admin_finds_the_demo_catalog_models_and_keys(new_page, demo, screenshot):
    page = new_page()
    missing: list[str] = []
    page.on("response", lambda response: response.status == 404 and missing.append(response.url))
    page.on("requestfailed", lambda request: missing.append(request.url))
    page.on("console", lambda msg: msg.type == "error" and missing.append(f"{page.url}: {msg.location}"))
    # a signed-out visit to the catalog pages leads to the login, and back once signed in with a TOTP code
    page.goto("/catalog/")
    page.wait_for_url("**/accounts/login/?next=/catalog/")
    page.get_by_label("Email").fill(CATALOG)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.get_by_label("Code").fill(totp_code(demo_totp_secret(CATALOG)))
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_url("**/catalog/")
    page.goto("/admin/")
    screenshot(page, "story-catalog-admin-home-desktop")

    # contributors and works
    page.goto("/admin/contributors/contributor/")
    for name in ("Ada Lovelace", "Grace Hopper", "Katherine Johnson", "Hedy Lamarr"):
        assert page.get_by_role("link", name=name).count() >= 1, name
    screenshot(page, "story-catalog-contributors-desktop")
    page.goto("/admin/contributors/work/")
    assert f"{Work.objects.count()} works" in page.get_by_role("main").inner_text()
    screenshot(page, "story-catalog-works-desktop")
    page.goto("/admin/contributors/optout/")
    screenshot(page, "story-catalog-opt-outs-desktop")
    assert OPTED_OUT_TITLE in page.get_by_role("main").inner_text()

    # the dispute queue holds Grace's upload of Ada's essay
    dispute = Dispute.objects.get()
    page.goto("/admin/contributors/dispute/")
    page.get_by_role("link", name=str(dispute.pk), exact=True).click()
    assert dispute.claim_work.title in page.get_by_role("main").inner_text()
    screenshot(page, "story-catalog-dispute-desktop")

    # model versions and their training manifests: the opted-out work in neither
    page.goto("/catalog/")
    for version in ModelVersion.objects.select_related("ai_model"):
        assert page.get_by_role("link", name=version.ref).count() >= 1, version.ref
    screenshot(page, "story-catalog-model-versions-desktop")
    version = ModelVersion.objects.get(ai_model__name="storyteller")
    page.get_by_role("link", name=version.ref).first.click()
    manifest = page.get_by_role("heading", name=f"Training manifest ({version.manifest_entries.count()} works)")
    assert manifest.is_visible()
    assert OPTED_OUT_TITLE not in page.get_by_role("main").inner_text()
    screenshot(page, "story-catalog-model-version-desktop")

    # the keys the demo's model service used over HTTP, with when they were last used
    page.goto("/catalog/keys/")
    keys = page.get_by_role("table").inner_text()
    for key in ApiKey.objects.all():
        assert key.prefix in keys
        assert key.last_used_at.strftime("%Y-%m-%d") in keys
    screenshot(page, "story-catalog-api-keys-desktop")
    assert missing == []
    assert page.console_errors == []

    # the catalog's own pages on a phone: nothing wider than the screen
    # (the same session: a TOTP code is accepted once, and signing in again within its 30 seconds is refused)
    phone = new_page(viewport=PHONE, is_mobile=True, has_touch=True, storage_state=page.context.storage_state())
    for path, name in (("/catalog/", "story-catalog-model-versions-phone"),
                       (f"/catalog/versions/{version.pk}/", "story-catalog-model-version-phone"),
                       ("/catalog/keys/", "story-catalog-api-keys-phone")):
        phone.goto(path)
        screenshot(phone, name)
        assert no_sideways_scroll(phone, PHONE["width"]), path


def test_finance_reviews_the_demo_run_and_the_ledger(new_page, demo, screenshot):
    run = PayoutRun.objects.get()
    page = new_page()
    sign_in_demo_staff(page, FINANCE_A, landing="**/finance/")
    assert page.get_by_role("link", name=f"#{run.pk} {run.currency}").is_visible()
    screenshot(page, "story-finance-runs-desktop")

    page.get_by_role("link", name=f"#{run.pk} {run.currency}").click()
    assert "Completed" in page.locator(".page-head").inner_text()
    history = page.get_by_role("heading", name="History").locator("..").inner_text()
    assert f"approve by {run.approved_by.email}" in history
    screenshot(page, "story-finance-run-desktop")

    page.goto(f"/finance/reconciliation/{run.pk}/")
    assert "No mismatch" in page.get_by_role("main").inner_text()
    screenshot(page, "story-finance-reconciliation-desktop")
    page.goto("/finance/ledger/?kind=accrual")
    assert page.get_by_role("table").inner_text().count("accrual") >= 4  # two programs, two nights
    screenshot(page, "story-finance-ledger-desktop")
