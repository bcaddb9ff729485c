"""The payout-run API: the same services as the pages, the same maker-checker, finance sessions with MFA only."""

from __future__ import annotations

import pytest

from payouts import stripe_client
from payouts.models import PayoutRun
from tests.conftest import login


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    monkeypatch.setattr(stripe_client, "_sleep", lambda seconds: None)


@pytest.fixture
def owed(accrue, make_ready_contributor):
    ada, bo = make_ready_contributor("Ada"), make_ready_contributor("Bo")
    accrue({ada: 12_345_678, bo: 5_000_000})
    return ada, bo


def test_the_whole_lifecycle_through_the_api(client, finance_user, finance_user_b, owed, fake_stripe,
                                             django_capture_on_commit_callbacks):
    login(client, finance_user)
    created = client.post("/api/v1/payout-runs/create/", {"currency": "usd", "note": "API run"},
                          content_type="application/json")
    assert created.status_code == 201
    body = created.json()
    run_id = body["id"]
    assert (body["status"], body["payout_count"], body["total_minor"], body["excluded_count"]) == (
        "draft", 1, 1_234, 1)
    assert body["transfer_group"] == f"payout-run-{run_id}"
    assert body["progress"]["counts"]["pending"] == 1

    assert client.post(f"/api/v1/payout-runs/{run_id}/submit/").json()["status"] == "pending_approval"
    refused = client.post(f"/api/v1/payout-runs/{run_id}/approve/")
    assert refused.status_code == 403
    assert refused.json() == {"actor": [f"run #{run_id} was created by you; another finance user must approve it"]}
    assert PayoutRun.objects.get(pk=run_id).status == "pending_approval"

    login(client, finance_user_b)
    approved = client.post(f"/api/v1/payout-runs/{run_id}/approve/")
    assert approved.status_code == 200
    assert approved.json()["approved_by"] == finance_user_b.email
    fake_stripe.add_fault("decline")
    with django_capture_on_commit_callbacks(execute=True):
        executed = client.post(f"/api/v1/payout-runs/{run_id}/execute/")
    assert executed.status_code == 200
    detail = client.get(f"/api/v1/payout-runs/{run_id}/").json()
    assert detail["status"] == "completed_with_failures"
    failed = client.get(f"/api/v1/payout-runs/{run_id}/payouts/", {"status": "failed"}).json()
    assert failed["count"] == 1
    assert failed["results"][0]["failure_code"] == "transfers_not_allowed"

    with django_capture_on_commit_callbacks(execute=True):
        retried = client.post(f"/api/v1/payout-runs/{run_id}/retry/")
    assert retried.status_code == 200
    detail = client.get(f"/api/v1/payout-runs/{run_id}/").json()
    assert detail["status"] == "completed"
    assert detail["progress"]["paid_minor"] == 1_234
    payout = client.get(f"/api/v1/payout-runs/{run_id}/payouts/").json()["results"][0]
    assert (payout["status"], payout["attempt"], payout["remainder_micros"]) == ("paid", 2, 5_678)
    listing = client.get("/api/v1/payout-runs/", {"status": "completed"}).json()
    assert [r["id"] for r in listing["results"]] == [run_id]


def test_state_and_input_errors_keep_the_services_words(client, finance_user, owed):
    login(client, finance_user)

    bad = client.post("/api/v1/payout-runs/create/", {"currency": "US"}, content_type="application/json")
    assert bad.status_code == 400
    assert "currency" in bad.json()
    future = client.post("/api/v1/payout-runs/create/", {"currency": "USD", "as_of": "2999-01-01"},
                         content_type="application/json")
    assert future.status_code == 400
    assert list(future.json()) == ["as_of"]
    assert not PayoutRun.objects.exists()

    created = client.post("/api/v1/payout-runs/create/", {"currency": "USD"}, content_type="application/json")
    run_id = created.json()["id"]
    out_of_order = client.post(f"/api/v1/payout-runs/{run_id}/execute/")
    assert out_of_order.status_code == 409
    assert "only a run that is approved can be executed" in out_of_order.json()["status"][0]
    no_reason = client.post(f"/api/v1/payout-runs/{run_id}/cancel/", {}, content_type="application/json")
    assert no_reason.status_code == 400
    assert "reason" in no_reason.json()
    cancelled = client.post(f"/api/v1/payout-runs/{run_id}/cancel/", {"reason": "test"},
                            content_type="application/json")
    assert cancelled.json()["status"] == "cancelled"
    assert client.get("/api/v1/payout-runs/999999/").status_code == 404


@pytest.mark.parametrize("role", ["contributor", "catalog_admin"])
def test_other_roles_get_404(client, make_role_user, role, owed, finance_user):
    from payouts.services import payout_run_create

    run = payout_run_create(currency="USD", created_by=finance_user)
    login(client, make_role_user(role))

    assert client.get("/api/v1/payout-runs/").status_code == 404
    assert client.get(f"/api/v1/payout-runs/{run.pk}/").status_code == 404
    assert client.post(f"/api/v1/payout-runs/{run.pk}/submit/").status_code == 404
    assert client.post("/api/v1/payout-runs/create/", {"currency": "USD"},
                       content_type="application/json").status_code == 404
    assert PayoutRun.objects.get().status == "draft"


def test_a_finance_session_without_the_second_factor_is_refused(client, finance_user, db):
    client.force_login(finance_user)  # password only

    response = client.get("/api/v1/payout-runs/")

    assert response.status_code == 403
    assert "two-factor" in response.json()["detail"]
