"""The demo's people: they log in with the printed password under mandatory e-mail verification, staff with a
TOTP code from their fixed demo secret (which `manage.py demo_totp` prints), and creating them twice makes
nothing new. (Moved here from tests/accounts/test_demo.py with the command it tests.)"""

from __future__ import annotations

import io

import pytest
from allauth.mfa.totp.internal.auth import validate_totp_code
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.roles import user_roles
from audit.models import AuditEvent
from demo.corpus import ADA, CATALOG, DEMO_PASSWORD, DEMO_PEOPLE, FINANCE_A, demo_totp_secret
from demo.services.people import demo_people_ensure, demo_totp_secret_of

pytestmark = pytest.mark.django_db


def quietly() -> dict:
    return demo_people_ensure(say=lambda line: None)


def test_demo_people_can_log_in_with_mandatory_verification(client, settings):
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    quietly()

    response = client.post("/accounts/login/", {"login": ADA, "password": DEMO_PASSWORD})

    assert response["Location"] == "/"
    assert client.get("/portal/").status_code == 200


def test_staff_sign_in_with_a_code_from_the_printed_secret(client):
    quietly()

    response = client.post("/accounts/login/", {"login": FINANCE_A, "password": DEMO_PASSWORD})
    assert response["Location"].startswith("/accounts/2fa/authenticate/")
    out = io.StringIO()
    call_command("demo_totp", FINANCE_A, stdout=out)
    code = out.getvalue().split()[0]
    response = client.post("/accounts/2fa/authenticate/", {"code": code})

    assert response.status_code == 302
    assert client.get("/finance/").status_code == 200
    # the secret enrolled is the one the demo prints for this address
    assert validate_totp_code(demo_totp_secret(FINANCE_A), code)


def test_people_are_created_once_with_their_roles():
    users = quietly()
    events = AuditEvent.objects.count()
    again = quietly()

    assert {u.pk for u in users.values()} == {u.pk for u in again.values()}
    assert AuditEvent.objects.count() == events
    for person in DEMO_PEOPLE:
        assert user_roles(users[person.email]) == {person.role}
    assert demo_totp_secret_of(user=users[CATALOG]) == demo_totp_secret(CATALOG)
    assert demo_totp_secret_of(user=users[ADA]) is None  # contributors need no authenticator


def test_demo_totp_shows_only_demo_codes(make_role_user):
    quietly()
    outsider = make_role_user("finance")

    with pytest.raises(CommandError, match="not a demo address"):
        call_command("demo_totp", outsider.email, stdout=io.StringIO())
    with pytest.raises(CommandError, match="no authenticator enrolled"):
        call_command("demo_totp", ADA, stdout=io.StringIO())
