"""The permission matrix: contributor A, contributor B, finance, catalog admin and a visitor on every
catalog view and API. Another person's work answers exactly like a work that does not exist (404)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from contributors.models import Dispute, OptOut, Work
from tests.conftest import login, make_user
from tests.contributors.conftest import PROSE, png_bytes

LOGIN = "/accounts/login/"
A_TITLE = "Ada's secret manuscript"


@pytest.fixture
def world(db, ada, bob, register):
    """Ada owns a work (with an image file) and has a dispute against Bob's later copy of a poem."""
    a_work = register(ada, A_TITLE, data=png_bytes(), name="a.png").work
    poem = f"poem\n{PROSE}".encode()
    a_poem = register(ada, "Ada's poem", data=poem).work
    b_claim = register(bob, "Bob's poem", data=poem)
    return {
        "A": ada.user, "B": bob.user, "finance": make_user("finance"), "catalog_admin": make_user("catalog_admin"),
        "anon": None, "a_work": a_work, "a_poem": a_poem, "b_claim": b_claim.work, "dispute": b_claim.dispute,
    }


def as_(client, world, who: str):
    client.logout()
    if world[who] is not None:
        login(client, world[who])
    return client


A_ONLY = {"A": 200, "B": 404, "finance": 404, "catalog_admin": 404, "anon": 302}
CONTRIBUTORS = {"A": 200, "B": 200, "finance": 404, "catalog_admin": 404, "anon": 302}

PORTAL_GETS = [
    ("dashboard", lambda w: reverse("contributors:dashboard"), CONTRIBUTORS),
    ("works", lambda w: reverse("contributors:work_list"), CONTRIBUTORS),
    ("add", lambda w: reverse("contributors:work_add"), CONTRIBUTORS),
    ("detail", lambda w: reverse("contributors:work_detail", args=[w["a_work"].pk]), A_ONLY),
    ("edit", lambda w: reverse("contributors:work_edit", args=[w["a_work"].pk]), A_ONLY),
    ("content", lambda w: reverse("contributors:work_content", args=[w["a_work"].pk]), A_ONLY),
    ("profile", lambda w: reverse("contributors:profile"), {**CONTRIBUTORS, "finance": 200, "catalog_admin": 200}),
    ("api-works", lambda w: "/api/v1/works/", {**CONTRIBUTORS, "anon": 403}),
    ("api-detail", lambda w: f"/api/v1/works/{w['a_work'].pk}/", {**A_ONLY, "anon": 403}),
    ("api-opt-outs", lambda w: "/api/v1/opt-outs/",
     {"A": 404, "B": 404, "finance": 404, "catalog_admin": 200, "anon": 401}),
]
PEOPLE = ["A", "B", "finance", "catalog_admin", "anon"]


@pytest.mark.parametrize(("name", "url", "expected"), PORTAL_GETS, ids=[p[0] for p in PORTAL_GETS])
def test_portal_and_api_pages(client, world, name, url, expected):
    for who in PEOPLE:
        response = as_(client, world, who).get(url(world))

        assert response.status_code == expected[who], f"{who} on {name}"
        if response.status_code == 302:
            assert response["Location"].startswith(LOGIN)  # visitors are asked to log in, nothing more
        if who != "A" and response.status_code in (200, 404):
            body = b"".join(response.streaming_content) if response.streaming else response.content
            assert A_TITLE.encode() not in body, f"{who} saw A's data on {name}"


def test_another_persons_work_answers_exactly_like_a_missing_one(client, world):
    as_(client, world, "B")
    missing = Work.objects.order_by("-pk").first().pk + 1000

    theirs = client.get(reverse("contributors:work_detail", args=[world["a_work"].pk]))
    nothing = client.get(reverse("contributors:work_detail", args=[missing]))

    assert theirs.status_code == nothing.status_code == 404
    assert theirs.content == nothing.content


def test_list_and_api_show_only_your_own_works(client, world):
    as_(client, world, "B")

    page = client.get(reverse("contributors:work_list"))
    api = client.get("/api/v1/works/").json()

    assert [w.title for w in page.context["works"]] == ["Bob's poem"]
    assert [w["title"] for w in api["results"]] == ["Bob's poem"]


@pytest.mark.parametrize("who", ["B", "finance", "catalog_admin"])
def test_nobody_else_changes_a_work_through_the_portal(client, world, who):
    work = world["a_work"]
    as_(client, world, who)

    responses = [
        client.post(reverse("contributors:work_opt_out", args=[work.pk])),
        client.post(reverse("contributors:work_edit", args=[work.pk]), {"title": "stolen", "description": ""}),
    ]

    assert [r.status_code for r in responses] == [404, 404]
    work.refresh_from_db()
    assert work.title == A_TITLE
    assert work.opted_out_at is None
    assert OptOut.objects.count() == 0


def test_the_owner_changes_their_work(client, world):
    work = world["a_work"]
    as_(client, world, "A")

    assert client.post(reverse("contributors:work_opt_out", args=[work.pk])).status_code == 302
    assert client.post(
        reverse("contributors:work_edit", args=[work.pk]), {"title": "Renamed", "description": ""}
    ).status_code == 302
    work.refresh_from_db()
    assert (work.title, work.opted_out_at is not None) == ("Renamed", True)


ADMIN_GETS = [
    ("admin-index", lambda w: "/admin/", {"finance": 200, "catalog_admin": 200}),
    ("work-list", lambda w: reverse("admin:contributors_work_changelist"), {"finance": 200, "catalog_admin": 200}),
    ("work-change", lambda w: reverse("admin:contributors_work_change", args=[w["a_work"].pk]),
     {"finance": 200, "catalog_admin": 200}),
    ("disputes", lambda w: reverse("admin:contributors_dispute_changelist"), {"finance": 200, "catalog_admin": 200}),
    ("import", lambda w: reverse("admin:contributors_work_import"), {"finance": 404, "catalog_admin": 200}),
    ("contributors", lambda w: reverse("admin:contributors_contributor_changelist"),
     {"finance": 200, "catalog_admin": 200}),
    ("opt-outs", lambda w: reverse("admin:contributors_optout_changelist"), {"finance": 200, "catalog_admin": 200}),
    ("users", lambda w: reverse("admin:auth_user_changelist"), {"finance": 403, "catalog_admin": 403}),
]


@pytest.mark.parametrize(("name", "url", "expected"), ADMIN_GETS, ids=[p[0] for p in ADMIN_GETS])
def test_admin_pages(client, world, name, url, expected):
    for who in ("A", "B"):
        # Contributors are not staff: the admin does not exist for them.
        assert as_(client, world, who).get(url(world), follow=True).status_code == 404, f"{who} on {name}"
    for who, status in expected.items():
        assert as_(client, world, who).get(url(world)).status_code == status, f"{who} on {name}"
    anon = as_(client, world, "anon").get(url(world), follow=True)
    assert anon.redirect_chain[-1][0].startswith(LOGIN)


def test_only_catalog_admins_resolve_disputes(client, world):
    url = reverse("admin:contributors_dispute_resolve", args=[world["dispute"].pk])
    form = {"outcome": "rejected", "note": "original came first"}

    assert as_(client, world, "finance").post(url, form).status_code == 404
    assert as_(client, world, "B").post(url, form, follow=True).status_code == 404
    assert Dispute.objects.get().status == "open"

    assert as_(client, world, "catalog_admin").post(url, form).status_code == 302
    assert Dispute.objects.get().status == "rejected"


def test_finance_sees_works_in_the_admin_but_cannot_change_them(client, world):
    work = world["a_work"]
    as_(client, world, "finance")

    response = client.post(
        reverse("admin:contributors_work_change", args=[work.pk]), {"title": "finance was here", "description": ""}
    )

    assert response.status_code == 403
    work.refresh_from_db()
    assert work.title == A_TITLE
