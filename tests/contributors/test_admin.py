"""The catalog admin: search and filters, owner splits edited inline (checked as a whole, saved through the
service), bulk actions, the dispute queue, and the audit history on each page."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from audit.models import AuditEvent
from contributors.models import Dispute, Ownership, Work
from tests.conftest import login, make_user
from tests.contributors.conftest import PROSE, owners_of


@pytest.fixture
def admin_client(client, db):
    user = make_user("catalog_admin")
    login(client, user)
    client.user = user
    return client


def owner_form(work, rows: list[tuple[object, int, bool]]) -> dict:
    """The change form's POST data with the owners inline set to ``rows`` of (contributor, bps, delete)."""
    existing = {o.contributor_id: o for o in Ownership.objects.filter(work=work)}
    data = {
        "title": work.title, "description": work.description,
        "ownerships-TOTAL_FORMS": str(len(rows)), "ownerships-INITIAL_FORMS": str(len(existing)),
        "ownerships-MIN_NUM_FORMS": "0", "ownerships-MAX_NUM_FORMS": "1000",
    }
    # Existing rows first, in the order the formset lists them.
    ordered = sorted(rows, key=lambda r: (r[0].pk not in existing, r[0].pk))
    for i, (contributor, bps, delete) in enumerate(ordered):
        data[f"ownerships-{i}-work"] = str(work.pk)
        data[f"ownerships-{i}-contributor"] = str(contributor.pk)
        data[f"ownerships-{i}-bps"] = str(bps)
        if contributor.pk in existing:
            data[f"ownerships-{i}-id"] = str(existing[contributor.pk].pk)
        if delete:
            data[f"ownerships-{i}-DELETE"] = "on"
    return data




def test_splits_edited_inline_are_saved_through_the_service(admin_client, ada, bob, register):
    work = register(ada, "Duet").work
    url = reverse("admin:contributors_work_change", args=[work.pk])

    response = admin_client.post(url, owner_form(work, [(ada, 6000, False), (bob, 4000, False)]))

    assert response.status_code == 302
    assert owners_of(work) == {"Ada": 6000, "Bob": 4000}
    event = AuditEvent.objects.filter(action="ownership.set").first()
    assert event.actor == admin_client.user
    assert event.reason == "edited in the admin"


def test_inline_splits_not_summing_to_10000_are_refused_and_nothing_changes(admin_client, ada, bob, register):
    work = register(ada, "Duet").work
    url = reverse("admin:contributors_work_change", args=[work.pk])

    response = admin_client.post(url, owner_form(work, [(ada, 6000, False), (bob, 3000, False)]))

    assert response.status_code == 200  # the form again, with the error
    assert "sum to 9,000 basis points; they must sum to exactly 10,000" in response.content.decode()
    assert owners_of(work) == {"Ada": 10_000}


def test_removing_an_owner_inline_replaces_the_set(admin_client, ada, bob, register):
    work = register(ada, "Duet").work
    admin_client.post(
        reverse("admin:contributors_work_change", args=[work.pk]),
        owner_form(work, [(ada, 5000, False), (bob, 5000, False)]),
    )

    response = admin_client.post(
        reverse("admin:contributors_work_change", args=[work.pk]),
        owner_form(work, [(ada, 5000, True), (bob, 10_000, False)]),
    )

    assert response.status_code == 302
    assert owners_of(work) == {"Bob": 10_000}


def test_search_and_filters(admin_client, ada, bob, register):
    register(ada, "Blue whales", data=f"whales\n{PROSE}".encode())
    register(bob, "Red foxes", data=f"foxes\n{PROSE}".encode())
    url = reverse("admin:contributors_work_changelist")

    by_owner = admin_client.get(url, {"q": bob.user.email})
    by_kind = admin_client.get(url, {"kind__exact": "image"})
    by_title = admin_client.get(url, {"q": "whales"})

    assert [w.title for w in by_owner.context["cl"].result_list] == ["Red foxes"]
    assert list(by_kind.context["cl"].result_list) == []
    assert [w.title for w in by_title.context["cl"].result_list] == ["Blue whales"]


def test_bulk_opt_out_and_removal(admin_client, ada, register):
    one = register(ada, "One", data=b"one\n" + PROSE.encode()).work
    two = register(ada, "Two", data=b"two\n" + PROSE.encode()).work
    url = reverse("admin:contributors_work_changelist")

    admin_client.post(url, {"action": "opt_out_selected", ACTION_CHECKBOX_NAME: [one.pk, two.pk]})
    admin_client.post(url, {"action": "remove_selected", ACTION_CHECKBOX_NAME: [two.pk]})

    one.refresh_from_db()
    two.refresh_from_db()
    assert one.opted_out_at is not None
    assert two.opted_out_at is not None
    assert (one.status, two.status) == (Work.Status.ACTIVE, Work.Status.REMOVED)
    assert AuditEvent.objects.filter(action="work.opt_out", actor=admin_client.user).count() == 2


def test_the_dispute_queue_lists_open_disputes_and_resolves_with_a_split(admin_client, ada, bob, register):
    same = f"same\n{PROSE}".encode()
    original = register(ada, "Original", data=same).work
    claim = register(bob, "Copy", data=same)

    queue = admin_client.get(reverse("admin:contributors_dispute_changelist"))
    page = admin_client.get(reverse("admin:contributors_dispute_change", args=[claim.dispute.pk]))
    response = admin_client.post(
        reverse("admin:contributors_dispute_resolve", args=[claim.dispute.pk]),
        {"outcome": "split", "claimant_bps": "3000", "note": "both wrote it"},
    )

    assert [d.pk for d in queue.context["cl"].result_list] == [claim.dispute.pk]
    assert 'action="/admin/contributors/dispute/' in page.content.decode()  # the resolve form is on the page
    assert response.status_code == 302
    assert owners_of(original) == {"Ada": 7000, "Bob": 3000}
    assert Dispute.objects.get().status == "split"
    # Resolved disputes leave the queue (the default filter) but stay under "all".
    assert list(admin_client.get(reverse("admin:contributors_dispute_changelist")).context["cl"].result_list) == []
    everything = admin_client.get(reverse("admin:contributors_dispute_changelist"), {"queue": "all"})
    assert len(everything.context["cl"].result_list) == 1


def test_a_bad_split_in_the_admin_is_reported_and_changes_nothing(admin_client, ada, bob, register):
    same = f"same\n{PROSE}".encode()
    register(ada, "Original", data=same)
    claim = register(bob, "Copy", data=same)

    response = admin_client.post(
        reverse("admin:contributors_dispute_resolve", args=[claim.dispute.pk]),
        {"outcome": "split", "note": "forgot the share"}, follow=True,
    )

    assert "A split gives the claim 1 to 9,999 basis points" in response.content.decode()
    assert Dispute.objects.get().status == "open"


def test_bulk_reject_asks_for_a_note_then_resolves(admin_client, ada, bob, register):
    same = f"same\n{PROSE}".encode()
    register(ada, "Original", data=same)
    claim = register(bob, "Copy", data=same)
    url = reverse("admin:contributors_dispute_changelist")
    selection = {"action": "reject_selected", ACTION_CHECKBOX_NAME: [claim.dispute.pk]}

    asked = admin_client.post(url, selection)
    assert asked.status_code == 200
    assert "Resolution note" in asked.content.decode()
    assert Dispute.objects.get().status == "open"

    admin_client.post(url, {**selection, "apply": "1", "note": "first registration wins"})

    dispute = Dispute.objects.get()
    assert (dispute.status, dispute.resolution_note) == ("rejected", "first registration wins")


def test_the_work_page_shows_its_audit_history(admin_client, ada, register):
    work = register(ada, "Tracked").work

    page = admin_client.get(reverse("admin:contributors_work_change", args=[work.pk])).content.decode()

    assert "work.create" in page
    assert "ownership.set" in page
    assert ada.user.email in page  # who did it


def test_works_cannot_be_added_or_deleted_in_the_admin(admin_client, ada, register):
    work = register(ada, "Kept").work

    assert admin_client.get(reverse("admin:contributors_work_add")).status_code == 403
    deleted = admin_client.post(reverse("admin:contributors_work_delete", args=[work.pk]), {"post": "yes"})
    assert deleted.status_code == 403
    assert Work.objects.filter(pk=work.pk).exists()


def test_staff_download_a_works_content_through_the_admin_not_the_media_folder(client, admin_client, ada, register):
    from tests.contributors.conftest import png_bytes

    work = register(ada, "Pic", data=png_bytes(), name="p.png").work
    page = admin_client.get(reverse("admin:contributors_work_change", args=[work.pk])).content.decode()
    url = reverse("admin:contributors_work_content", args=[work.pk])

    response = admin_client.get(url)

    assert url in page
    assert "/media/" not in page
    assert b"".join(response.streaming_content) == png_bytes()
    assert response["Content-Security-Policy"].startswith("sandbox")
    login(client, ada.user)  # the owner, but not staff: the admin's copy does not exist for them
    assert client.get(url, follow=True).status_code == 404
