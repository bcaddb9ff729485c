"""A catalog admin in a real browser: password, then a TOTP code from the secret, then the dispute queue."""

from __future__ import annotations

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

from contributors.models import Dispute
from tests.accounts.totp import totp_code
from tests.conftest import PASSWORD, make_user
from tests.contributors.conftest import PROSE, owners_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_catalog_admin_signs_in_with_totp_and_splits_a_dispute(new_page, screenshot):
    from contributors.services import Content, contributor_register, work_create

    admin = make_user("catalog_admin", username="cat.admin", mfa=False)
    secret = generate_totp_secret()
    TOTP.activate(admin, secret)
    ada = contributor_register(user=make_user(username="ada.b"), display_name="Ada")
    bob = contributor_register(user=make_user(username="bob.b"), display_name="Bob")
    same = f"same\n{PROSE}".encode()
    original = work_create(
        created_by=ada, title="Harbour song", actor=ada.user,
        content=Content(data=same, field="file", file_name="a.txt"),
    ).work
    work_create(
        created_by=bob, title="Harbour song (Bob)", actor=bob.user,
        content=Content(data=same, field="file", file_name="b.txt"),
    )

    page = new_page()
    page.goto("/admin/")  # the admin's login is the site's login
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_url("**/accounts/2fa/authenticate/**")
    screenshot(page, "mfa-code-desktop")
    page.get_by_label("Code").fill(totp_code(secret))
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_url("**/admin/")

    page.goto("/admin/contributors/dispute/")
    page.get_by_role("link", name=str(Dispute.objects.get().pk), exact=True).click()
    page.get_by_label("Split: the claimant's owners get a share").check()
    page.get_by_label("Claimant's share (basis points, for a split)").fill("4000")
    page.get_by_label("Resolution note (kept with the decision)").fill("Both wrote it on the same boat.")
    screenshot(page, "admin-dispute-resolve-desktop")
    page.get_by_role("button", name="Resolve").click()
    page.wait_for_url("**/admin/contributors/dispute/")

    assert "Dispute #" in page.locator(".messagelist").inner_text()
    assert Dispute.objects.get().status == "split"
    assert owners_of(original) == {"Ada": 6000, "Bob": 4000}


def test_new_finance_staff_enrol_an_authenticator_before_anything_else(new_page, screenshot):
    user = make_user("finance", username="fin.new", mfa=False)
    page = new_page()

    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    # Signed in with the password only: every page leads to enrolment, which first re-asks the password.
    page.goto("/finance/")
    page.wait_for_url("**/accounts/reauthenticate/**")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url("**/accounts/2fa/totp/activate/**")
    screenshot(page, "mfa-activate-desktop")

    secret = page.get_by_label("Authenticator secret").input_value()
    page.get_by_label("Authenticator code").fill(totp_code(secret))
    page.get_by_role("button", name="Activate").click()
    page.wait_for_url("**/accounts/2fa/recovery-codes/**")
    assert user.authenticator_set.filter(type="totp").exists()

    # The session that enrolled never used the factor: the next page asks to sign in again, with a code.
    page.goto("/finance/")
    page.wait_for_url("**/accounts/login/**")
    assert "authenticator code" in page.locator(".messages").inner_text()
