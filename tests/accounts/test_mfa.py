"""Staff must use TOTP: real logins through the allauth forms, with codes computed from the secret."""

from __future__ import annotations

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

from tests.accounts.totp import totp_code
from tests.conftest import PASSWORD, make_user

LOGIN = "/accounts/login/"
MFA_STEP = "/accounts/2fa/authenticate/"
ACTIVATE = "/accounts/2fa/totp/activate/"


def password_login(client, user, next_url: str = "/admin/"):
    return client.post(f"{LOGIN}?next={next_url}", {"login": user.email, "password": PASSWORD})


@pytest.fixture
def staff_with_totp(db):
    user = make_user("catalog_admin", mfa=False)
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    return user, secret


def test_staff_login_needs_the_password_then_a_valid_totp_code(client, staff_with_totp):
    user, secret = staff_with_totp

    # the password alone only reaches the second step
    first = password_login(client, user)
    assert first.status_code == 302
    assert first["Location"].startswith(MFA_STEP)
    assert "_auth_user_id" not in client.session  # not signed in yet
    # the admin sends them back to the pending second step, not in
    assert client.get("/admin/", follow=True).redirect_chain[-1][0].startswith(MFA_STEP)

    # a wrong code is refused
    wrong = client.post(MFA_STEP, {"code": "000000" if totp_code(secret) != "000000" else "111111"})
    assert wrong.status_code == 200
    assert "Incorrect code" in wrong.content.decode()

    # the right code completes the login and opens the admin
    right = client.post(MFA_STEP, {"code": totp_code(secret)})
    assert right.status_code == 302
    assert right["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_a_staff_session_that_skipped_mfa_is_logged_out(client, staff_with_totp):
    user, _ = staff_with_totp
    client.force_login(user)  # a session made around the login flow (no second factor recorded)

    response = client.get("/admin/")

    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)
    assert "_auth_user_id" not in client.session


def test_staff_without_an_authenticator_must_enrol_then_sign_in_again_with_it(client, settings, db):
    settings.MFA_TOTP_TOLERANCE = 1  # the second login uses the next period's code (a code works only once)
    user = make_user("finance", mfa=False)

    # the password login succeeds (there is no second factor yet), but every page leads to enrolment
    assert password_login(client, user, "/finance/").status_code == 302
    blocked = client.get("/finance/")
    assert blocked.status_code == 302
    assert blocked["Location"].startswith(ACTIVATE)

    # enrolling is a sensitive action: allauth asks for the password again first
    confirm = client.get(ACTIVATE)
    assert confirm["Location"].startswith("/accounts/reauthenticate/")
    assert client.post(confirm["Location"], {"password": PASSWORD})["Location"] == ACTIVATE

    # enrol with a code computed from the secret the activation page shows
    page = client.get(ACTIVATE)
    assert page.status_code == 200
    secret = client.session["mfa.totp.secret"]
    activated = client.post(ACTIVATE, {"code": totp_code(secret)})
    assert activated.status_code == 302
    assert user.authenticator_set.filter(type="totp").exists()

    # this session never used the factor: it is ended, and the next login asks for the code
    assert client.get("/finance/")["Location"].startswith(LOGIN)
    assert password_login(client, user, "/finance/")["Location"].startswith(MFA_STEP)
    done = client.post(MFA_STEP, {"code": totp_code(secret, steps_ahead=1)})
    assert done["Location"] == "/finance/"


def test_contributors_are_not_asked_for_a_second_factor(client, db):
    from contributors.services import contributor_register

    user = make_user(mfa=False)
    contributor_register(user=user, display_name="Ada")

    response = password_login(client, user, "/portal/")

    assert response["Location"] == "/portal/"
    assert client.get("/portal/").status_code == 200


def test_the_admin_login_page_is_the_sites_mfa_login(client, db):
    response = client.get("/admin/login/?next=/admin/contributors/")

    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)
    assert "next=/admin/contributors/" in response["Location"]
