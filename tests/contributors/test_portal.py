"""Portal pages and the works API: search, filters, pagination, the detail's owners/opt-out/dispute."""

from __future__ import annotations

import pytest
from django.urls import reverse

from contributors.services import ownership_set, work_opt_out
from contributors.views import WORKS_PER_PAGE
from tests.conftest import login
from tests.contributors.conftest import PROSE, PYTHON_SOURCE, png_bytes


@pytest.fixture
def ada_client(client, ada):
    login(client, ada.user)
    return client


@pytest.fixture
def catalog(ada, register):
    works = {
        "poem": register(ada, "Winter poem", data=f"winter\n{PROSE}".encode()).work,
        "code": register(ada, "Circle maths", data=PYTHON_SOURCE.encode(), name="c.py").work,
        "picture": register(ada, "Red square", data=png_bytes(), name="r.png").work,
    }
    work_opt_out(work=works["picture"], actor=ada.user, requested_by=ada)
    return works


def titles(response) -> list[str]:
    return [w.title for w in response.context["works"]]


def test_the_list_searches_and_filters(ada_client, catalog):
    url = reverse("contributors:work_list")

    assert titles(ada_client.get(url)) == ["Red square", "Circle maths", "Winter poem"]
    assert titles(ada_client.get(url, {"q": "winter"})) == ["Winter poem"]
    assert titles(ada_client.get(url, {"kind": "code"})) == ["Circle maths"]
    assert titles(ada_client.get(url, {"opted_out": "yes"})) == ["Red square"]
    assert titles(ada_client.get(url, {"opted_out": "no", "status": "active"})) == ["Circle maths", "Winter poem"]
    assert titles(ada_client.get(url, {"q": catalog["code"].sha256})) == ["Circle maths"]
    assert titles(ada_client.get(url, {"status": "removed"})) == []


def test_the_list_paginates_and_keeps_the_filters_in_page_links(ada_client, ada, register):
    for i in range(WORKS_PER_PAGE + 3):
        register(ada, f"Note {i:02d}", data=f"note {i}\n{PROSE}".encode())
    url = reverse("contributors:work_list")

    first = ada_client.get(url, {"kind": "text"})
    second = ada_client.get(url, {"kind": "text", "page": 2})

    assert len(first.context["works"]) == WORKS_PER_PAGE
    assert len(second.context["works"]) == 3
    assert "?kind=text&amp;page=2" in first.content.decode()
    assert set(titles(first)).isdisjoint(titles(second))


def test_the_detail_shows_owners_splits_opt_out_and_dispute(ada_client, ada, bob, register, catalog):
    poem = catalog["poem"]
    ownership_set(work=poem, shares={ada: 6667, bob: 3333}, actor=ada.user)
    copy = register(bob, "Bob's copy", data=f"mine\n{PROSE}".encode())  # different content: no dispute
    assert copy.dispute is None

    page = ada_client.get(reverse("contributors:work_detail", args=[poem.pk])).content.decode()

    assert "66.67%" in page
    assert "33.33%" in page
    assert "Bob" in page
    assert "may be used to train future model versions" in page
    assert "No disputes." in page


def test_the_detail_of_a_disputed_work_says_so_without_naming_the_other_party(
    client, ada, make_contributor, register
):
    mallory = make_contributor("Mallory Secretname")
    same = f"same\n{PROSE}".encode()
    original = register(ada, "Mine first", data=same).work
    register(mallory, "Their copy title", data=same)
    login(client, ada.user)

    page = client.get(reverse("contributors:work_detail", args=[original.pk])).content.decode()

    assert "Dispute #" in page
    assert "a catalog admin will decide" in page
    assert "Mallory" not in page
    assert "Their copy title" not in page


def test_the_dashboard_counts(ada_client, catalog):
    summary = ada_client.get(reverse("contributors:dashboard")).context["summary"]

    assert summary == {"total": 3, "active": 3, "disputed": 0, "removed": 0, "opted_out": 1, "open_disputes": 0}


def test_profile_edits_go_through_the_service_and_refuse_bad_countries(ada_client, ada):
    url = reverse("contributors:profile")

    bad = ada_client.post(url, {"display_name": "Ada L.", "legal_name": "", "country": "XX"})
    good = ada_client.post(url, {"display_name": "Ada L.", "legal_name": "Ada Lovelace", "country": "GB"})

    assert bad.status_code == 400
    assert "country" in bad.context["form"].errors
    assert good.status_code == 302
    ada.refresh_from_db()
    assert (ada.display_name, ada.legal_name, ada.country) == ("Ada L.", "Ada Lovelace", "GB")


def test_a_contributor_made_by_grant_role_gets_a_profile_on_first_visit(client, db):
    from tests.conftest import make_user

    user = make_user("contributor")
    login(client, user)

    response = client.get(reverse("contributors:dashboard"))

    assert response.status_code == 200
    assert user.contributor.display_name == user.email.split("@")[0]


# --- API ------------------------------------------------------------------------------------------------


def test_api_lists_filters_and_paginates(ada_client, catalog):
    everything = ada_client.get("/api/v1/works/").json()
    code = ada_client.get("/api/v1/works/", {"kind": "code"}).json()
    opted = ada_client.get("/api/v1/works/", {"opted_out": "true"}).json()
    paged = ada_client.get("/api/v1/works/", {"limit": 2, "offset": 2}).json()
    bad = ada_client.get("/api/v1/works/", {"kind": "sculpture"})

    assert everything["count"] == 3
    assert everything["results"][0] | {"created_at": None} == {
        "id": catalog["picture"].pk, "title": "Red square", "kind": "image", "status": "active",
        "mime_type": "image/png", "size_bytes": len(png_bytes()), "sha256": catalog["picture"].sha256,
        "opted_out_at": everything["results"][0]["opted_out_at"], "created_at": None, "my_bps": 10_000,
    }
    assert [w["title"] for w in code["results"]] == ["Circle maths"]
    assert [w["title"] for w in opted["results"]] == ["Red square"]
    assert [w["title"] for w in paged["results"]] == ["Winter poem"]
    assert paged["previous"] is not None
    assert bad.status_code == 400
    assert "kind" in bad.json()


def test_api_detail_has_owners_opt_outs_and_disputes(ada_client, ada, bob, catalog):
    ownership_set(work=catalog["picture"], shares={ada: 2500, bob: 7500}, actor=ada.user)

    detail = ada_client.get(f"/api/v1/works/{catalog['picture'].pk}/").json()

    assert detail["my_bps"] == 2500
    assert detail["owners"] == [
        {"display_name": "Bob", "bps": 7500, "is_you": False}, {"display_name": "Ada", "bps": 2500, "is_you": True},
    ]
    assert len(detail["opt_outs"]) == 1
    assert detail["opt_outs"][0]["withdrawn_at"] is None
    assert detail["disputes"] == []


def test_the_schema_describes_the_catalog_endpoints(client, db):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()

    assert {"/api/v1/works/", "/api/v1/works/{id}/", "/api/v1/opt-outs/"} <= set(schema["paths"])
    works = schema["paths"]["/api/v1/works/"]["get"]
    assert {p["name"] for p in works["parameters"]} >= {"q", "kind", "status", "opted_out", "limit", "offset"}
    page = schema["components"]["schemas"]["WorkListPage"]
    assert set(page["properties"]) == {"count", "next", "previous", "results"}
    assert "my_bps" in schema["components"]["schemas"]["Work"]["properties"]
    assert "in_force" in schema["components"]["schemas"]["OptOutEvent"]["properties"]


def test_a_co_owned_work_is_listed_once_with_each_owners_own_share(client, ada, bob, register):
    work = register(ada, "Duet").work
    ownership_set(work=work, shares={ada: 2500, bob: 7500}, actor=ada.user)

    login(client, ada.user)
    for_ada = client.get("/api/v1/works/").json()["results"]
    login(client, bob.user)
    for_bob = client.get("/api/v1/works/").json()["results"]

    assert [(w["title"], w["my_bps"]) for w in for_ada] == [("Duet", 2500)]
    assert [(w["title"], w["my_bps"]) for w in for_bob] == [("Duet", 7500)]
