"""Sign-up (creating the contributor profile and role), e-mail verification, login, logout, password reset,
all through allauth's real views and e-mails."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

from accounts.roles import CONTRIBUTOR, user_roles
from audit.models import AuditEvent
from contributors.models import Contributor

NEW_PASSWORD = "a much longer passphrase 2026"
RESET_PASSWORD = "brand new secret phrase 99"


def sign_up(client, email="new.person@example.org", **extra):
    return client.post(
        "/accounts/signup/",
        {"email": email, "display_name": "New Person", "legal_name": "Nova Person", "country": "NZ",
         "password1": NEW_PASSWORD, "password2": NEW_PASSWORD, **extra},
    )


def link_in(message) -> str:
    return re.search(r"https?://[^/\s]+(/\S+)", message.body).group(1)


def test_sign_up_creates_the_user_the_contributor_profile_and_the_role(client, db):
    response = sign_up(client)

    assert response.status_code == 302
    user = get_user_model().objects.get(email="new.person@example.org")
    contributor = Contributor.objects.get(user=user)
    profile = (contributor.display_name, contributor.legal_name, contributor.country)
    assert profile == ("New Person", "Nova Person", "NZ")
    assert user_roles(user) == {CONTRIBUTOR}
    assert not user.is_staff
    assert AuditEvent.objects.filter(action="contributor.create", object_id=str(contributor.pk)).exists()
    # Verification is optional in tests: they are signed in and the front door sends them to the portal.
    assert client.get("/")["Location"] == "/portal/"


def test_sign_up_refuses_bad_input_and_creates_nothing(client, db):
    response = sign_up(client, display_name="", country="XX", password2="something else entirely")

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert {"display_name", "country", "password2"} <= set(errors)
    assert get_user_model().objects.count() == 0
    assert Contributor.objects.count() == 0


def test_with_mandatory_verification_the_account_waits_for_the_emailed_link(
    client, settings, db, django_capture_on_commit_callbacks
):
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"

    with django_capture_on_commit_callbacks(execute=True):  # allauth sends its mail once the account commits
        signed_up = sign_up(client)

    assert signed_up["Location"] == "/accounts/confirm-email/"
    assert "_auth_user_id" not in client.session
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["new.person@example.org"]
    # logging in before confirming only leads back to "check your e-mail"
    blocked = client.post("/accounts/login/", {"login": "new.person@example.org", "password": NEW_PASSWORD})
    assert blocked["Location"] == "/accounts/confirm-email/"
    assert "_auth_user_id" not in client.session

    confirm_url = link_in(mail.outbox[0])
    assert client.post(confirm_url).status_code == 302

    logged_in = client.post("/accounts/login/", {"login": "new.person@example.org", "password": NEW_PASSWORD})
    assert logged_in.status_code == 302
    assert client.get("/portal/").status_code == 200


def test_password_reset_by_emailed_link_then_login_with_the_new_password(
    client, db, django_capture_on_commit_callbacks
):
    sign_up(client)
    client.post("/accounts/logout/")
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        client.post("/accounts/password/reset/", {"email": "new.person@example.org"})
    assert len(mail.outbox) == 1
    reset_link = client.get(link_in(mail.outbox[0]))  # allauth moves the key into the session, then redirects
    form_url = reset_link["Location"]
    changed = client.post(form_url, {"password1": RESET_PASSWORD, "password2": RESET_PASSWORD})

    assert changed.status_code == 302
    client.post("/accounts/logout/")
    old = client.post("/accounts/login/", {"login": "new.person@example.org", "password": NEW_PASSWORD})
    assert old.status_code == 200  # refused: the form again
    new = client.post("/accounts/login/", {"login": "new.person@example.org", "password": RESET_PASSWORD})
    assert new.status_code == 302


def test_logout_is_a_post(client, db):
    sign_up(client)

    assert client.get("/accounts/logout/").status_code == 200  # a confirmation page, not a logout
    assert "_auth_user_id" in client.session
    client.post("/accounts/logout/")
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("path", ["/accounts/login/", "/accounts/signup/", "/accounts/password/reset/"])
def test_account_pages_use_the_site_layout(client, db, path):
    page = client.get(path).content.decode()

    assert 'class="site-header"' in page
    assert 'href="/static/css/site.css"' in page
