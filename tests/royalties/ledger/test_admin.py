"""The ledger admin shows everything and edits nothing; new programs and terms go through the services."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from royalties.ledger.models import Account, JournalEntry, Period, RoyaltyProgram, RoyaltyProgramTerms
from royalties.ledger.services import accrual_post
from tests.conftest import make_user
from tests.royalties.ledger.factories import make_ai_model, make_work

pytestmark = pytest.mark.django_db

DAY = dt.date(2024, 3, 1)


@pytest.fixture
def superuser_client(login_as):
    user = make_user(mfa=True)
    user.is_staff = user.is_superuser = True
    user.save()
    return login_as(user), user


@pytest.fixture
def entry(program, contributors):
    return accrual_post(program=program, period=DAY, allocations=[(contributors[0].pk, make_work().pk, 9, 1, 0)],
                        expense_total_micros=9)


@pytest.mark.parametrize("model", ["period", "account", "journalentry", "posting", "accrual"])
def test_ledger_rows_are_listed_and_shown_but_cannot_be_added_changed_or_deleted(superuser_client, entry, model):
    client, _ = superuser_client
    obj = {"period": entry.period, "account": Account.objects.first(), "journalentry": entry,
           "posting": entry.postings.first(), "accrual": entry.accruals.first()}[model]

    assert client.get(reverse(f"admin:ledger_{model}_changelist")).status_code == 200
    page = client.get(reverse(f"admin:ledger_{model}_change", args=[obj.pk]))
    assert page.status_code == 200
    assert b'name="_save"' not in page.content  # read-only: no save button
    assert client.get(reverse(f"admin:ledger_{model}_add")).status_code == 403
    assert client.post(reverse(f"admin:ledger_{model}_delete", args=[obj.pk]), {"post": "yes"}).status_code == 403
    assert JournalEntry.objects.count() == 1


def test_an_entry_page_shows_its_postings_inline(superuser_client, entry):
    client, _ = superuser_client
    page = client.get(reverse("admin:ledger_journalentry_change", args=[entry.pk]))
    assert b"Postings (first 200; all in the posting list)" in page.content
    assert b"+9 on account" in page.content
    assert b"2 postings" in page.content
    assert b"1 rows" in page.content


def test_new_terms_are_added_as_a_new_version_through_the_service(superuser_client, program):
    client, user = superuser_client
    form = {"program": program.pk, "effective_from": "2025-01-01", "currency": "USD", "pool_bps": "1500",
            "pool_fixed_micros": "", "baseline_bps": "500", "top_k": "5", "min_share": "0.01",
            "payout_threshold_minor": "500", "note": "lower pool from 2025"}

    response = client.post(reverse("admin:ledger_royaltyprogramterms_add"), form)

    assert response.status_code == 302, response.content
    terms = RoyaltyProgramTerms.objects.get(program=program, version=2)
    assert (terms.pool_bps, terms.top_k, terms.created_by) == (1500, 5, user)
    assert AuditEvent.objects.filter(action="ledger.terms.create", object_id=str(terms.pk)).exists()
    # Existing versions cannot be edited.
    assert client.post(reverse("admin:ledger_royaltyprogramterms_change", args=[terms.pk]), form).status_code == 403


def test_bad_terms_in_the_admin_show_the_error_beside_the_field(superuser_client, program, entry):
    client, _ = superuser_client
    form = {"program": program.pk, "effective_from": "2024-03-01", "currency": "USD", "pool_bps": "1500",
            "pool_fixed_micros": "", "baseline_bps": "500", "top_k": "5", "min_share": "0",
            "payout_threshold_minor": "0"}

    response = client.post(reverse("admin:ledger_royaltyprogramterms_add"), form)

    assert response.status_code == 200
    assert "last day already accrued" in response.context["adminform"].form.errors["effective_from"][0]
    assert RoyaltyProgramTerms.objects.filter(program=program).count() == 1


def test_a_program_is_created_with_its_first_terms(superuser_client):
    client, _ = superuser_client
    model = make_ai_model()
    form = {"ai_model": model.pk, "name": "Painter fund", "effective_from": "2024-01-01", "currency": "EUR",
            "pool_fixed_micros": "1000000", "baseline_bps": "0", "top_k": "3", "min_share": "0",
            "payout_threshold_minor": "100", "terms-TOTAL_FORMS": "0", "terms-INITIAL_FORMS": "0"}

    response = client.post(reverse("admin:ledger_royaltyprogram_add"), form)

    assert response.status_code == 302, response.content
    program = RoyaltyProgram.objects.get(ai_model=model)
    assert program.terms.get().pool_fixed_micros == 1_000_000


def test_a_finance_user_can_view_but_not_add_terms(login_as, finance_user, program):
    client = login_as(finance_user)
    assert client.get(reverse("admin:ledger_journalentry_changelist")).status_code == 200
    assert client.get(reverse("admin:ledger_royaltyprogramterms_add")).status_code == 403
    assert Period.objects.count() == 0
