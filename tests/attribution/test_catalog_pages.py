"""Catalog admins' pages (/catalog/) and the admin site for the registry, keys and generations."""

from __future__ import annotations

import hashlib
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from attribution.models import AIModel, ApiKey, Generation, ManifestEntry, ModelVersion
from audit.models import AuditEvent
from tests.attribution.conftest import make_work

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["/catalog/", "/catalog/keys/", "/catalog/versions/new/"])
@pytest.mark.parametrize("role", ["finance", "contributor", None])
def test_catalog_pages_do_not_exist_for_others(login_as, make_role_user, model_version, url, role):
    client = login_as(make_role_user(role))

    assert client.get(url).status_code == 404
    assert client.get(f"/catalog/versions/{model_version.pk}/").status_code == 404


def test_version_list_and_detail_show_the_manifest(login_as, catalog_admin_user, model_version, api_key):
    works = [make_work(title=f"Poem {i}") for i in range(3)]
    for work in works:
        ManifestEntry.objects.create(model_version=model_version, work=work, sha256=work.sha256)
    client = login_as(catalog_admin_user)

    listing = client.get("/catalog/")
    detail = client.get(f"/catalog/versions/{model_version.pk}/")

    assert listing.status_code == 200
    assert "storyteller@v1" in listing.text
    assert detail.status_code == 200
    assert all(f"Poem {i}" in detail.text for i in range(3))
    assert api_key.api_key.prefix in detail.text
    assert api_key.secret not in detail.text


def test_register_a_version_with_a_manifest_from_the_page(login_as, catalog_admin_user, ai_model):
    work = make_work()
    client = login_as(catalog_admin_user)
    manifest = SimpleUploadedFile("m.csv", f"work_id\n{work.pk}\n".encode(), content_type="text/csv")

    response = client.post("/catalog/versions/new/", data={
        "ai_model": ai_model.pk, "label": "page-1", "adapter": "", "checkpoint_uri": "", "config": '{"a": 1}',
        "manifest": manifest,
    })

    version = ModelVersion.objects.get(label="page-1")
    assert response.status_code == 302
    assert response["Location"] == f"/catalog/versions/{version.pk}/"
    assert version.config == {"a": 1}
    assert list(version.manifest_entries.values_list("work_id", flat=True)) == [work.pk]


def test_a_bad_manifest_on_the_page_shows_lines_and_writes_nothing(login_as, catalog_admin_user, ai_model):
    client = login_as(catalog_admin_user)
    manifest = SimpleUploadedFile("m.csv", b"work_id\n777777\n", content_type="text/csv")

    response = client.post("/catalog/versions/new/", data={
        "ai_model": ai_model.pk, "label": "page-2", "config": "{}", "manifest": manifest,
    })

    assert response.status_code == 200
    assert "line 2: unknown work 777777" in response.text
    assert not ModelVersion.objects.filter(label="page-2").exists()


def test_manifest_dry_run_on_the_detail_page(login_as, catalog_admin_user, model_version):
    work = make_work()
    client = login_as(catalog_admin_user)
    manifest = SimpleUploadedFile("m.jsonl", f'{{"work_id": {work.pk}}}\n'.encode())

    response = client.post(f"/catalog/versions/{model_version.pk}/", data={"manifest": manifest, "dry_run": "on"})

    assert response.status_code == 200
    assert "dry run: nothing written" in response.text
    assert ManifestEntry.objects.count() == 0


def test_create_a_key_on_the_page_shows_it_once(login_as, catalog_admin_user, model_version, payload,
                                                post_generations):
    client = login_as(catalog_admin_user)

    created = client.post("/catalog/keys/", data={"name": "from the page", "scope": f"version:{model_version.pk}"})
    later = client.get("/catalog/keys/")

    key = ApiKey.objects.get()
    secret = re.search(rf"rk_{key.prefix}_[A-Za-z0-9_-]+", created.text).group(0)
    assert "no-cache" in created["Cache-Control"] or "no-store" in created["Cache-Control"]
    assert key.secret_sha256 == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in later.text  # shown once
    assert post_generations(secret, payload(model_version)).status_code == 201
    assert AuditEvent.objects.get(action="api_key.create").actor == catalog_admin_user


def test_revoke_a_key_from_the_page(login_as, catalog_admin_user, api_key, model_version, payload, post_generations):
    client = login_as(catalog_admin_user)

    response = client.post(f"/catalog/keys/{api_key.api_key.pk}/revoke/")

    assert response.status_code == 302
    assert ApiKey.objects.get().revoked_by == catalog_admin_user
    assert post_generations(api_key.secret, payload(model_version)).status_code == 401


# --- the admin site --------------------------------------------------------------------------------------


def test_admin_creates_a_key_and_shows_the_secret_once(login_as, catalog_admin_user, ai_model, payload,
                                                       model_version, post_generations):
    client = login_as(catalog_admin_user)

    response = client.post("/admin/attribution/apikey/add/", data={"name": "admin key", "ai_model": ai_model.pk},
                           follow=True)

    key = ApiKey.objects.get()
    message = next(str(m) for m in response.context["messages"])
    secret = message.split("The new API key is ")[1].split(" ")[0]
    assert secret.startswith(f"rk_{key.prefix}_")
    assert key.ai_model == ai_model
    assert post_generations(secret, payload(model_version)).status_code == 201
    assert secret not in client.get(f"/admin/attribution/apikey/{key.pk}/change/").text


def test_admin_key_needs_exactly_one_scope(login_as, catalog_admin_user, ai_model, model_version):
    client = login_as(catalog_admin_user)

    response = client.post("/admin/attribution/apikey/add/", data={
        "name": "both", "ai_model": ai_model.pk, "model_version": model_version.pk})

    assert response.status_code == 200
    assert "Choose exactly one scope" in response.text
    assert ApiKey.objects.count() == 0


def test_admin_revoke_action(login_as, catalog_admin_user, api_key):
    client = login_as(catalog_admin_user)

    client.post("/admin/attribution/apikey/", data={"action": "revoke", "_selected_action": [api_key.api_key.pk]})

    assert ApiKey.objects.get().revoked_at is not None
    assert AuditEvent.objects.filter(action="api_key.revoke").count() == 1


def test_admin_generation_log_is_read_only(login_as, catalog_admin_user, api_key, model_version, payload,
                                           post_generations):
    generation_id = post_generations(api_key.secret, payload(model_version)).json()["id"]
    client = login_as(catalog_admin_user)

    assert client.get("/admin/attribution/generation/").status_code == 200
    assert client.get("/admin/attribution/generation/add/").status_code == 403
    page = client.get(f"/admin/attribution/generation/{generation_id}/change/")
    assert page.status_code == 200
    assert 'name="_save"' not in page.text
    assert Generation.objects.count() == 1


def test_admin_model_changes_go_through_the_audited_service(login_as, catalog_admin_user, ai_model):
    client = login_as(catalog_admin_user)

    created = client.post("/admin/attribution/aimodel/add/", data={"name": "new-model", "modality": "image",
                                                                   "owner_team": "vision"})
    changed = client.post(f"/admin/attribution/aimodel/{ai_model.pk}/change/", data={"modality": "code",
                                                                                      "owner_team": "tools"})

    assert created.status_code == 302
    assert changed.status_code == 302
    assert AIModel.objects.get(name="new-model").modality == "image"
    assert AIModel.objects.get(pk=ai_model.pk).modality == "code"
    assert {"ai_model.create", "ai_model.update"} <= set(AuditEvent.objects.values_list("action", flat=True))
