"""Contributor onboarding: the portal page, the round trip through (fake) Stripe's hosted form, and the
state transitions none -> onboarding -> active -> restricted, each kept on the contributor and audited."""

from __future__ import annotations

import pytest
import requests
import stripe

from audit.models import AuditEvent
from contributors.models import Contributor
from payouts.models import ConnectedAccount
from payouts.services import connected_account_get_or_create, connected_account_sync
from payouts.views import requirement_labels
from tests.conftest import make_user

PAGE = "/portal/payout-account/"


def finish_on_stripe(link_url: str, action: str = "complete") -> str:
    """What the contributor's browser does on Stripe's hosted page; returns where Stripe sends it back."""
    page = requests.get(link_url, timeout=5)
    assert page.status_code == 200, page.text
    session = page.text.split('name="session" value="')[1].split('"')[0]
    done = requests.post(link_url, data={"session": session, "action": action}, allow_redirects=False, timeout=5)
    assert done.status_code == 303
    return done.headers["Location"]


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


@pytest.fixture
def portal(login_as, contributor):
    return login_as(contributor.user)


def test_the_page_offers_setup_when_nothing_is_started(portal, fake_stripe):
    response = portal.get(PAGE)

    assert response.status_code == 200
    assert "Not started" in response.content.decode()
    assert "Set up payouts with Stripe" in response.content.decode()
    assert fake_stripe.request_log == []  # looking at the page calls nobody


def test_the_full_onboarding_round_trip(portal, fake_stripe, contributor, settings):
    settings.SITE_URL = "http://testserver"

    # given: the contributor presses "Set up payouts with Stripe"
    start = portal.post(f"{PAGE}start/")

    # then: an Express account exists on Stripe and here, and the browser goes to Stripe's hosted form
    assert start.status_code == 302
    account = ConnectedAccount.objects.get(contributor=contributor)
    assert start["Location"].startswith(f"{fake_stripe.url}/setup/e/{account.stripe_account_id}/")
    contributor.refresh_from_db()
    assert contributor.payout_status == Contributor.PayoutStatus.ONBOARDING
    assert account.transfers_capability == "inactive"
    assert "external_account" in account.requirements_due
    created = AuditEvent.objects.get(action="payout_account.create")
    assert created.actor == contributor.user
    assert created.after["stripe_account_id"] == account.stripe_account_id
    link_request = next(r for r in fake_stripe.request_log if r["path"] == "/v1/account_links")
    assert link_request["idempotency_key"].startswith(f"account-link:{account.pk}:")

    # when: the contributor completes the form and Stripe sends them back
    back = finish_on_stripe(start["Location"])
    assert back == "http://testserver/portal/payout-account/return/"
    returned = portal.get(path_of(back))

    # then: the return re-read the account from Stripe; the contributor can be paid
    assert returned.status_code == 302
    assert returned["Location"] == PAGE
    account.refresh_from_db()
    contributor.refresh_from_db()
    assert account.transfers_capability == "active"
    assert account.payouts_enabled
    assert account.details_submitted
    assert contributor.payout_status == Contributor.PayoutStatus.ACTIVE
    page = portal.get(PAGE).content.decode()
    assert "Can receive payouts" in page
    assert "ready" in page
    change = AuditEvent.objects.filter(action="contributor.payout_status_change").order_by("id").last()
    assert (change.before, change.after, change.actor) == (
        {"payout_status": "onboarding"}, {"payout_status": "active"}, contributor.user)


def test_returning_without_finishing_keeps_onboarding_and_shows_what_is_missing(portal, fake_stripe, contributor):
    start = portal.post(f"{PAGE}start/")

    back = finish_on_stripe(start["Location"], action="leave")
    portal.get(path_of(back))

    contributor.refresh_from_db()
    assert contributor.payout_status == "onboarding"
    page = portal.get(PAGE).content.decode()
    assert "A bank account for payouts" in page
    assert "Continue setting up payouts" in page


def test_pending_verification_is_still_onboarding_until_stripe_activates(portal, fake_stripe, contributor):
    start = portal.post(f"{PAGE}start/")
    portal.get(path_of(finish_on_stripe(start["Location"], action="pending")))

    account = ConnectedAccount.objects.get(contributor=contributor)
    contributor.refresh_from_db()
    assert account.transfers_capability == "pending"
    assert account.details_submitted
    assert contributor.payout_status == "onboarding"
    assert "Stripe is checking what you submitted" in portal.get(PAGE).content.decode()

    fake_stripe.activate_account(account.stripe_account_id)
    connected_account_sync(connected_account=account)
    contributor.refresh_from_db()
    assert contributor.payout_status == "active"


def test_a_restricted_account_shows_the_reason_and_the_requirements(portal, fake_stripe, contributor):
    start = portal.post(f"{PAGE}start/")
    portal.get(path_of(finish_on_stripe(start["Location"])))
    account = ConnectedAccount.objects.get(contributor=contributor)

    fake_stripe.restrict_account(account.stripe_account_id, disabled_reason="requirements.past_due",
                                 currently_due=["individual.verification.document", "individual.dob.day"])
    connected_account_sync(connected_account=account)

    contributor.refresh_from_db()
    account.refresh_from_db()
    assert contributor.payout_status == Contributor.PayoutStatus.RESTRICTED
    assert account.disabled_reason == "requirements.past_due"
    page = portal.get(PAGE).content.decode()
    assert "Restricted by Stripe" in page
    assert "Stripe needs more information before it can pay you." in page
    assert "An identity document" in page
    assert "Your date of birth" in page
    assert "Provide the missing details" in page
    # Stripe rejecting the account outright is restricted too, whatever else it says.
    fake_stripe.restrict_account(account.stripe_account_id, disabled_reason="rejected.fraud", currently_due=[])
    connected_account_sync(connected_account=account)
    contributor.refresh_from_db()
    assert contributor.payout_status == "restricted"


def test_pressing_setup_twice_makes_one_account_with_fresh_links(portal, fake_stripe, contributor):
    first = portal.post(f"{PAGE}start/")
    second = portal.post(f"{PAGE}start/")

    assert ConnectedAccount.objects.filter(contributor=contributor).count() == 1
    assert len(stripe.StripeClient(fake_stripe.api_key, base_addresses={"api": fake_stripe.url})
               .v1.accounts.list().data) == 1
    assert first["Location"] != second["Location"]  # each visit gets its own single-use link
    assert AuditEvent.objects.filter(action="payout_account.create").count() == 1


def test_an_expired_or_used_link_goes_to_refresh_which_makes_a_new_one(portal, fake_stripe, contributor, settings):
    settings.SITE_URL = "http://testserver"
    start = portal.post(f"{PAGE}start/")
    requests.get(start["Location"], timeout=5)  # visited once: used up

    again = requests.get(start["Location"], allow_redirects=False, timeout=5)
    assert again.status_code == 303
    assert again.headers["Location"] == "http://testserver/portal/payout-account/refresh/"
    refreshed = portal.get(path_of(again.headers["Location"]))

    assert refreshed.status_code == 302
    assert refreshed["Location"] != start["Location"]
    assert requests.get(refreshed["Location"], timeout=5).status_code == 200


def test_concurrent_creation_keeps_one_row_because_the_key_is_the_contributor(fake_stripe, contributor):
    # Two requests racing past the "no account yet" check both call Stripe with the same key.
    first = connected_account_get_or_create(contributor=contributor)
    ConnectedAccount.objects.filter(pk=first.pk).delete()  # as if the second request had not seen the row
    second = connected_account_get_or_create(contributor=contributor)

    assert second.stripe_account_id == first.stripe_account_id
    keys = [r["idempotency_key"] for r in fake_stripe.request_log if r["path"] == "/v1/accounts"]
    assert keys == [f"account-create:{contributor.pk}"] * 2
    assert [r["replayed"] for r in fake_stripe.request_log if r["path"] == "/v1/accounts"] == [False, True]


def test_stripe_down_shows_an_error_and_creates_nothing(portal, fake_stripe, contributor, monkeypatch):
    from payouts import stripe_client

    monkeypatch.setattr(stripe_client, "_sleep", lambda seconds: None)
    fake_stripe.add_fault("server_error", count=100, method="POST", path="/v1/accounts")

    response = portal.post(f"{PAGE}start/", follow=True)

    assert response.status_code == 200
    assert "could not reach Stripe" in response.content.decode()
    assert not ConnectedAccount.objects.exists()
    contributor.refresh_from_db()
    assert contributor.payout_status == "none"


@pytest.mark.parametrize("path", ["", "start/", "refresh/", "return/"])
def test_people_without_the_contributor_role_get_404(client, login_as, path, finance_user, db):
    login_as(finance_user)
    method = client.post if path == "start/" else client.get

    assert method(f"{PAGE}{path}").status_code == 404


def test_anonymous_visitors_are_sent_to_log_in(client, db):
    response = client.get(PAGE)

    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_a_contributor_sees_only_their_own_account(login_as, make_contributor, fake_stripe):
    mine = make_contributor(display_name="Me")
    theirs = make_contributor(display_name="Them")
    their_account = connected_account_get_or_create(contributor=theirs)

    page = login_as(mine.user).get(PAGE).content.decode()

    assert their_account.stripe_account_id not in page
    assert "Not started" in page
    # The return URL acts on the signed-in contributor only: it never touches someone else's account.
    login_as(mine.user).get(f"{PAGE}return/")
    assert [r for r in fake_stripe.request_log if their_account.stripe_account_id in r["path"]] == []


def test_a_contributor_role_without_a_profile_gets_404(login_as, db):
    user = make_user("contributor")

    assert login_as(user).get(PAGE).status_code == 404


def test_setup_needs_post(portal):
    assert portal.get(f"{PAGE}start/").status_code == 405


def test_requirement_labels_are_readable_and_deduplicated():
    labels = requirement_labels(["individual.dob.day", "individual.dob.month", "external_account",
                                 "something.new"])

    assert labels == ["Your date of birth", "A bank account for payouts", "something.new"]


def test_stripe_refusing_shows_a_message_for_people_not_stripes(portal, fake_stripe, contributor):
    fake_stripe.add_fault("decline", method="POST", path="/v1/accounts", status=400, code="country_unsupported",
                          message="Connected accounts in XX are not supported by platform acct_1 (param: country).")

    response = portal.post(f"{PAGE}start/", follow=True)

    page = response.content.decode()
    assert "Stripe could not set up your payout account just now" in page
    assert "param: country" not in page
    assert not ConnectedAccount.objects.exists()
