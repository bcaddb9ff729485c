"""Opt-outs: timestamped, shown in the portal, withdrawn (never deleted), exported to model teams."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from attribution.models import AIModel
from attribution.services.api_keys import api_key_create
from audit.models import AuditEvent
from contributors.models import OptOut
from contributors.services import ownership_set, work_opt_out, work_opt_out_withdraw
from tests.conftest import login, make_user

EXPORT = "/api/v1/opt-outs/"


def test_opting_out_in_the_portal_is_timestamped_and_shown(client, ada, register):
    work = register(ada, "Essay").work
    login(client, ada.user)
    before = timezone.now()

    response = client.post(reverse("contributors:work_opt_out", args=[work.pk]), {"reason": "no training please"})

    work.refresh_from_db()
    assert response.status_code == 302
    assert before <= work.opted_out_at <= timezone.now()
    opt_out = OptOut.objects.get()
    assert (opt_out.requested_by, opt_out.reason) == (ada, "no training please")
    assert opt_out.opted_out_at == work.opted_out_at
    page = client.get(reverse("contributors:work_detail", args=[work.pk])).content.decode()
    assert "Opted out" in page
    assert work.opted_out_at.strftime("%Y-%m-%d %H:%M") in page
    assert AuditEvent.objects.filter(action="work.opt_out", object_id=str(work.pk)).exists()


def test_withdrawing_keeps_the_opt_out_row_with_both_times(client, ada, register):
    work = register(ada, "Essay").work
    opt_out = work_opt_out(work=work, actor=ada.user, requested_by=ada)
    login(client, ada.user)

    response = client.post(reverse("contributors:work_opt_out_withdraw", args=[work.pk]))

    work.refresh_from_db()
    opt_out.refresh_from_db()
    assert response.status_code == 302
    assert work.opted_out_at is None
    assert opt_out.withdrawn_at is not None
    assert opt_out.withdrawn_by == ada.user
    assert OptOut.objects.count() == 1  # history is kept, not deleted
    # Opting out again is a new event; the first stays as it was.
    work_opt_out(work=work, actor=ada.user, requested_by=ada)
    assert OptOut.objects.count() == 2
    assert OptOut.objects.filter(withdrawn_at__isnull=True).count() == 1


def test_opting_out_twice_is_refused(ada, register):
    work = register(ada, "Essay").work
    work_opt_out(work=work, actor=ada.user, requested_by=ada)

    with pytest.raises(Exception, match="has been opted out since"):
        work_opt_out(work=work, actor=ada.user, requested_by=ada)


def test_a_co_owner_cannot_withdraw_someone_elses_opt_out_but_a_catalog_admin_can(ada, bob, register):
    work = register(ada, "Duet").work
    ownership_set(work=work, shares={ada: 5000, bob: 5000}, actor=ada.user)
    work_opt_out(work=work, actor=ada.user, requested_by=ada)

    with pytest.raises(Exception, match="Ada opted this work out; only they or a catalog admin"):
        work_opt_out_withdraw(work=work, actor=bob.user, requested_by=bob)

    admin = make_user("catalog_admin")
    work_opt_out_withdraw(work=work, actor=admin, requested_by=None)
    work.refresh_from_db()
    assert work.opted_out_at is None


# --- the export -----------------------------------------------------------------------------------------


@pytest.fixture
def opt_outs(ada, bob, register):
    """Three opt-out events: one in force, one withdrawn, one in force made later."""
    first = register(ada, "One").work
    second = register(ada, "Two").work
    third = register(bob, "Three").work
    work_opt_out(work=first, actor=ada.user, requested_by=ada)
    work_opt_out(work=second, actor=ada.user, requested_by=ada)
    work_opt_out_withdraw(work=second, actor=ada.user, requested_by=ada)
    work_opt_out(work=third, actor=bob.user, requested_by=bob)
    return first, second, third


def test_catalog_admins_export_every_opt_out_event_oldest_first(client, opt_outs):
    first, second, third = opt_outs
    login(client, make_user("catalog_admin"))

    response = client.get(EXPORT)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    rows = body["results"]
    assert [r["work_id"] for r in rows] == [first.pk, second.pk, third.pk]
    assert [r["in_force"] for r in rows] == [True, False, True]
    assert rows[0]["sha256"] == first.sha256
    assert rows[1]["withdrawn_at"] is not None


def test_the_export_filters_by_time_and_by_in_force(client, opt_outs):
    first, second, third = opt_outs
    login(client, make_user("catalog_admin"))
    OptOut.objects.filter(work=first).update(opted_out_at=timezone.now() - dt.timedelta(days=10))

    recent = client.get(EXPORT, {"since": (timezone.now() - dt.timedelta(days=1)).isoformat()}).json()
    in_force = client.get(EXPORT, {"in_force": "true"}).json()
    bad = client.get(EXPORT, {"since": "last tuesday"})

    assert [r["work_id"] for r in recent["results"]] == [second.pk, third.pk]
    assert [r["work_id"] for r in in_force["results"]] == [first.pk, third.pk]
    assert bad.status_code == 400
    assert "since" in bad.json()


def test_model_services_read_the_export_with_their_api_key(client, opt_outs, db):
    model = AIModel.objects.create(name="storyteller", modality="text")
    key = api_key_create(name="storyteller training", ai_model=model)

    response = client.get(EXPORT, HTTP_AUTHORIZATION=f"Bearer {key.secret}")

    assert response.status_code == 200
    assert response.json()["count"] == 3


def test_the_export_is_closed_to_everyone_else(client, opt_outs, ada):
    assert client.get(EXPORT).status_code == 401  # no credentials: told which scheme to use
    assert client.get(EXPORT, HTTP_AUTHORIZATION="Bearer rk_nope_nope").status_code == 401
    login(client, ada.user)
    assert client.get(EXPORT).status_code == 404  # contributors: it does not exist for them
    login(client, make_user("finance"))
    assert client.get(EXPORT).status_code == 404


def test_a_catalog_admin_session_without_mfa_is_refused(client, opt_outs):
    admin = make_user("catalog_admin")
    client.force_login(admin)  # a session that never passed the second factor

    response = client.get(EXPORT)

    assert response.status_code == 403


def test_the_admin_csv_export_lists_the_opt_outs_in_force(client, opt_outs):
    first, _, third = opt_outs
    login(client, make_user("catalog_admin"))

    response = client.get(reverse("admin:contributors_optout_export") + "?in_force=1")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0] == "opt_out_id,work_id,sha256,kind,mime_type,opted_out_at,withdrawn_at,in_force"
    assert [int(line.split(",")[1]) for line in lines[1:]] == [first.pk, third.pk]
    assert all(line.endswith(",true") for line in lines[1:])
