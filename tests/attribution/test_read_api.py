"""Staff read endpoints (generations, models, versions, manifests): filters, pagination, roles, key scope."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from attribution.models import Generation, ManifestEntry
from tests.attribution.conftest import make_generation_payload, make_work

pytestmark = pytest.mark.django_db


def _log(post_generations, key, version, n, **overrides):
    items = [make_generation_payload(version, **overrides) for _ in range(n)]
    response = post_generations(key.secret, {"generations": items})
    assert response.status_code == 201, response.content
    return [r["id"] for r in response.json()["generations"]]


@pytest.fixture
def logged(model_key, model_version, model_version_b, post_generations):
    """5 generations on v1 (2 of them attributed), 3 on v2, at known times."""
    base = timezone.now().replace(microsecond=0) - dt.timedelta(days=3)
    v1 = [
        _log(post_generations, model_key, model_version, 1, generated_at=(base + dt.timedelta(hours=h)).isoformat())[0]
        for h in range(5)
    ]
    v2 = _log(post_generations, model_key, model_version_b, 3, generated_at=base.isoformat())
    Generation.objects.filter(pk__in=v1[:2]).update(attributed_at=timezone.now())
    return {"v1": v1, "v2": v2, "base": base}


def test_finance_lists_generations_newest_first_with_cursor_pages(login_as, finance_user, logged):
    client = login_as(finance_user)

    first = client.get("/api/v1/generations/", {"limit": 3})
    second = client.get(first.json()["next"])

    assert first.status_code == 200
    ids = [g["id"] for g in first.json()["results"]] + [g["id"] for g in second.json()["results"]]
    assert ids == sorted(logged["v1"] + logged["v2"], reverse=True)[:6]
    assert first.json()["previous"] is None


def test_generation_filters(login_as, catalog_admin_user, logged, model_version):
    client = login_as(catalog_admin_user)
    base = logged["base"]

    def ids(**params):
        response = client.get("/api/v1/generations/", params)
        assert response.status_code == 200, response.content
        return sorted(g["id"] for g in response.json()["results"])

    assert ids(model_version=model_version.pk) == sorted(logged["v1"])
    assert ids(model_version=model_version.pk, attributed="true") == sorted(logged["v1"][:2])
    assert ids(model_version=model_version.pk, attributed="false") == sorted(logged["v1"][2:])
    window = {"generated_after": (base + dt.timedelta(hours=1)).isoformat(),
              "generated_before": (base + dt.timedelta(hours=3)).isoformat()}
    assert ids(model_version=model_version.pk, **window) == sorted(logged["v1"][1:3])
    assert ids(text_purged="true") == []


def test_bad_filters_are_400_naming_the_parameter(login_as, finance_user, db):
    response = login_as(finance_user).get("/api/v1/generations/", {"generated_after": "soon", "model_version": "x"})

    assert response.status_code == 400
    assert {e["field"] for e in response.json()["errors"]} == {"generated_after", "model_version"}


def test_generation_detail_shows_revenue_exactly(login_as, finance_user, logged):
    Generation.objects.filter(pk=logged["v2"][0]).update(revenue_micros=1_234_567)

    response = login_as(finance_user).get(f"/api/v1/generations/{logged['v2'][0]}/")

    assert response.status_code == 200
    assert (response.json()["revenue"], response.json()["revenue_micros"]) == ("1.234567", 1_234_567)
    assert response.json()["model_version_ref"] == "storyteller@v2"


def test_a_contributor_cannot_read_staff_endpoints(login_as, contributor_user, logged):
    client = login_as(contributor_user)

    for url in ["/api/v1/generations/", f"/api/v1/generations/{logged['v1'][0]}/", "/api/v1/model-versions/",
                "/api/v1/models/"]:
        assert client.get(url).status_code == 403, url


def test_staff_session_without_the_second_factor_is_refused(finance_user, logged):
    client = Client()
    client.force_login(finance_user)  # password only: the session never passed MFA

    response = client.get("/api/v1/generations/")

    assert response.status_code == 403


def test_anonymous_reads_are_401(client, db):
    response = client.get("/api/v1/generations/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_a_key_reads_only_its_own_scope(api_key, logged, client, model_version, model_version_b):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {api_key.secret}"}

    listed = client.get("/api/v1/generations/", **auth)
    foreign = client.get(f"/api/v1/generations/{logged['v2'][0]}/", **auth)
    versions = client.get("/api/v1/model-versions/", **auth)
    sibling = client.get(f"/api/v1/model-versions/{model_version_b.pk}/", **auth)

    assert sorted(g["id"] for g in listed.json()["results"]) == sorted(logged["v1"])
    assert foreign.status_code == 404  # not 403: a key learns nothing about what lies outside its scope
    assert [v["id"] for v in versions.json()["results"]] == [model_version.pk]
    assert sibling.status_code == 404


def test_model_versions_and_manifests_for_staff(login_as, finance_user, model_version, model_version_b):
    works = [make_work(), make_work()]
    for work in works:
        ManifestEntry.objects.create(model_version=model_version, work=work, sha256=work.sha256)
    client = login_as(finance_user)

    versions = client.get("/api/v1/model-versions/", {"model": "storyteller"}).json()
    manifest = client.get(f"/api/v1/model-versions/{model_version.pk}/manifest/", {"limit": 1}).json()
    models = client.get("/api/v1/models/").json()

    sizes = {v["label"]: v["manifest_size"] for v in versions["results"]}
    assert sizes == {"v1": 2, "v2": 0}
    assert manifest["count"] == 2
    assert [e["work"] for e in manifest["results"]] == [works[0].pk]
    assert manifest["results"][0]["sha256"] == works[0].sha256
    assert models["results"][0]["version_count"] == 2


def test_unknown_version_is_404_in_the_error_shape(login_as, finance_user, db):
    response = login_as(finance_user).get("/api/v1/model-versions/999999/manifest/")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found", "errors": []}
