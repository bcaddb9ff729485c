"""Training manifests: CSV and JSON Lines, by id or hash, all-or-nothing, problems reported by line."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from attribution.models import ManifestEntry, ModelVersion
from attribution.services.errors import InvalidInput
from attribution.services.registry import manifest_import, model_version_register
from audit.models import AuditEvent
from contributors.services import work_opt_out, work_opt_out_withdraw
from tests.attribution.conftest import make_work

pytestmark = pytest.mark.django_db


def _csv(rows: list[dict], header=("work_id", "sha256")) -> bytes:
    lines = [",".join(header)] + [",".join(str(r.get(h, "")) for h in header) for r in rows]
    return ("\n".join(lines) + "\n").encode()


def _jsonl(rows: list[dict]) -> bytes:
    return ("\n".join(json.dumps(r) for r in rows) + "\n").encode()


def test_csv_manifest_by_id_and_by_hash_registers_the_version(ai_model):
    a, b, c = make_work(), make_work(), make_work()
    content = _csv([{"work_id": a.pk}, {"sha256": b.sha256}, {"work_id": c.pk, "sha256": c.sha256}])

    version, report = model_version_register(
        ai_model=ai_model, label="v7", adapter="attribution.adapters.x.Y", checkpoint_uri="file:///ckpt",
        config={"layers": 2}, manifest=content, manifest_filename="manifest.csv", actor_label="test",
    )

    assert version is not None
    assert (report.format, report.lines, report.added, report.errors) == ("csv", 3, 3, [])
    entries = ManifestEntry.objects.filter(model_version=version).order_by("pk")
    assert [(e.work_id, e.sha256) for e in entries] == [(w.pk, w.sha256) for w in (a, b, c)]
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"model_version.create", "manifest.import"} <= actions


def test_jsonl_manifest_is_detected_by_content(model_version):
    a, b = make_work(), make_work()

    report = manifest_import(model_version=model_version, content=_jsonl([{"work_id": a.pk}, {"sha256": b.sha256}]),
                             filename="upload")

    assert (report.format, report.added) == ("jsonl", 2)
    assert ManifestEntry.objects.filter(model_version=model_version).count() == 2


def test_unknown_works_are_reported_by_line_and_nothing_is_written(ai_model):
    a = make_work()
    content = _csv([{"work_id": a.pk}, {"work_id": 999_999}, {"sha256": "ab" * 32}, {"work_id": "x"}])

    with pytest.raises(InvalidInput) as refused:
        model_version_register(ai_model=ai_model, label="v9", manifest=content, manifest_filename="m.csv")

    assert [(e.line, e.field, e.message) for e in refused.value.errors] == [
        (3, "work_id", "unknown work 999999"),
        (4, "sha256", f"no registered work has content hash {'ab' * 32}"),
        (5, "work_id", "must be a positive integer (got 'x')"),
    ]
    # All-or-nothing: neither the version nor any entry exists.
    assert not ModelVersion.objects.filter(label="v9").exists()
    assert ManifestEntry.objects.count() == 0


def test_jsonl_errors_name_their_physical_line(model_version):
    a = make_work()
    content = b'{"work_id": %d}\n\nnot json\n[1]\n{"sha256": 5}\n{}\n' % a.pk

    with pytest.raises(InvalidInput) as refused:
        manifest_import(model_version=model_version, content=content, filename="m.jsonl")

    assert [(e.line, e.field) for e in refused.value.errors] == [(3, None), (4, None), (5, "sha256"), (6, "work_id")]


def test_works_opted_out_before_the_version_are_refused_by_line(ai_model, contributor_user):
    kept, opted = make_work(), make_work()
    work_opt_out(work=opted, actor=contributor_user, requested_by=None, reason="no training")

    with pytest.raises(InvalidInput) as refused:
        model_version_register(ai_model=ai_model, label="v2", manifest=_csv([{"work_id": kept.pk},
                                                                             {"sha256": opted.sha256}]))

    (error,) = refused.value.errors
    assert (error.line, error.field) == (3, "sha256")
    assert f"work {opted.pk} was opted out of training on" in error.message
    assert ManifestEntry.objects.count() == 0


def test_an_opt_out_after_the_version_was_created_does_not_block_its_manifest(model_version, contributor_user):
    work = make_work()
    work_opt_out(work=work, actor=contributor_user, requested_by=None)  # after model_version was created

    report = manifest_import(model_version=model_version, content=_csv([{"work_id": work.pk}]))

    assert report.added == 1  # the version was trained before the opt-out: its provenance stands


def test_an_opt_out_in_force_at_creation_still_counts_after_it_was_withdrawn(ai_model, contributor_user):
    work = make_work()
    work_opt_out(work=work, actor=contributor_user, requested_by=None)
    version, _ = model_version_register(ai_model=ai_model, label="trained-while-out")
    work_opt_out_withdraw(work=work, actor=contributor_user, requested_by=None)

    with pytest.raises(InvalidInput) as refused:
        manifest_import(model_version=version, content=_csv([{"work_id": work.pk}]))

    assert "was opted out of training" in refused.value.errors[0].message


def test_repeated_and_ambiguous_works_are_refused(model_version):
    a = make_work()
    twin_1, twin_2 = make_work(content=b"same bytes"), make_work(content=b"same bytes")
    content = _csv([{"work_id": a.pk}, {"sha256": a.sha256}, {"sha256": twin_1.sha256},
                    {"work_id": twin_2.pk, "sha256": a.sha256}])

    with pytest.raises(InvalidInput) as refused:
        manifest_import(model_version=model_version, content=content)

    messages = [(e.line, e.message) for e in refused.value.errors]
    assert messages == [
        (3, f"work {a.pk} is already listed on line 2"),
        (4, f"matches 2 works ({twin_1.pk}, {twin_2.pk}); name one by work_id"),
        (5, f"does not match work {twin_2.pk}'s content hash {twin_2.sha256}"),
    ]


def test_reimporting_the_same_manifest_adds_nothing(model_version):
    content = _csv([{"work_id": make_work().pk}, {"work_id": make_work().pk}])
    manifest_import(model_version=model_version, content=content)

    report = manifest_import(model_version=model_version, content=content)

    assert (report.added, report.already_present) == (0, 2)
    assert ManifestEntry.objects.count() == 2


def test_dry_run_reports_and_writes_nothing(ai_model):
    good = make_work()
    content = _csv([{"work_id": good.pk}, {"work_id": 424242}])

    version, report = model_version_register(ai_model=ai_model, label="v3", manifest=content, dry_run=True)

    assert version is None
    assert (report.added, [e.line for e in report.errors], report.dry_run) == (1, [3], True)
    assert not ModelVersion.objects.filter(label="v3").exists()
    assert not AuditEvent.objects.filter(action="model_version.create").exists()


@pytest.mark.parametrize(
    ("content", "words"),
    [(b"title\nfoo\n", "header row"), (b"\xff\xfe\x00", "not UTF-8"), (b"work_id\n\x00\n", "NUL")],
)
def test_unreadable_manifests_are_refused_whole(model_version, content, words):
    with pytest.raises(InvalidInput, match=words):
        manifest_import(model_version=model_version, content=content, filename="m.csv")


def test_version_registration_checks_label_adapter_and_config(ai_model, model_version):
    with pytest.raises(InvalidInput) as refused:
        model_version_register(ai_model=ai_model, label="v1", adapter="not a path", config=[1])

    assert {e.field for e in refused.value.errors} == {"label", "adapter", "config"}


# --- the command ------------------------------------------------------------------------------------------


def test_register_model_version_command(tmp_path, db):
    works = [make_work() for _ in range(3)]
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_bytes(_jsonl([{"work_id": w.pk} for w in works]))
    out = StringIO()

    call_command(
        "register_model_version", "--model", "poet", "--modality", "text", "--label", "2026-01",
        "--adapter", "attribution.adapters.hf.Adapter", "--checkpoint", "s3://models/poet", "--config", '{"k": 1}',
        "--manifest", str(manifest), stdout=out,
    )

    version = ModelVersion.objects.get(ai_model__name="poet", label="2026-01")
    assert version.config == {"k": 1}
    assert version.manifest_entries.count() == 3
    assert "registered poet@2026-01" in out.getvalue()
    assert AuditEvent.objects.filter(action="model_version.create", actor_label="command:register_model_version")


def test_register_model_version_command_fails_on_a_bad_line_and_writes_nothing(tmp_path, ai_model):
    manifest = tmp_path / "manifest.csv"
    manifest.write_bytes(_csv([{"work_id": make_work().pk}, {"work_id": 31337}]))
    err = StringIO()

    with pytest.raises(CommandError, match="1 problem line"):
        call_command("register_model_version", "--model", "storyteller", "--label", "bad", "--manifest",
                     str(manifest), stdout=StringIO(), stderr=err)

    assert "line 3: work_id: unknown work 31337" in err.getvalue()
    assert not ModelVersion.objects.filter(label="bad").exists()


# --- the admin API ----------------------------------------------------------------------------------------


def test_catalog_admin_registers_a_version_over_the_api(login_as, catalog_admin_user, ai_model):
    works = [make_work(), make_work()]
    client = login_as(catalog_admin_user)
    upload = SimpleUploadedFile("m.csv", _csv([{"work_id": w.pk} for w in works]), content_type="text/csv")

    response = client.post("/api/v1/model-versions/", data={
        "model": "storyteller", "label": "api-1", "adapter": "attribution.adapters.a.B", "config": '{"x": 1}',
        "manifest": upload,
    })

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["model_version"]["ref"] == "storyteller@api-1"
    assert body["model_version"]["manifest_size"] == 2
    assert body["manifest"]["added"] == 2
    assert AuditEvent.objects.get(action="model_version.create").actor == catalog_admin_user


def test_api_registration_reports_bad_lines_with_400(login_as, catalog_admin_user, ai_model):
    client = login_as(catalog_admin_user)
    upload = SimpleUploadedFile("m.csv", _csv([{"work_id": 5555}]), content_type="text/csv")

    response = client.post("/api/v1/model-versions/", data={"model": "storyteller", "label": "api-2",
                                                             "manifest": upload})

    assert response.status_code == 400
    assert response.json()["errors"] == [{"index": None, "line": 2, "field": "work_id",
                                          "message": "unknown work 5555"}]
    assert not ModelVersion.objects.filter(label="api-2").exists()


def test_api_dry_run_answers_200_with_the_report(login_as, catalog_admin_user, ai_model):
    client = login_as(catalog_admin_user)
    upload = SimpleUploadedFile("m.csv", _csv([{"work_id": 5555}]), content_type="text/csv")

    response = client.post("/api/v1/model-versions/", data={"model": "storyteller", "label": "dry", "dry_run": "true",
                                                             "manifest": upload})

    assert response.status_code == 200
    assert response.json()["model_version"] is None
    assert response.json()["manifest"]["valid"] is False
    assert not ModelVersion.objects.filter(label="dry").exists()


def test_manifest_import_endpoint_appends_works(login_as, catalog_admin_user, model_version):
    client = login_as(catalog_admin_user)
    work = make_work()
    upload = SimpleUploadedFile("m.jsonl", _jsonl([{"sha256": work.sha256}]))

    response = client.post(f"/api/v1/model-versions/{model_version.pk}/manifest/", data={"manifest": upload})
    listing = client.get(f"/api/v1/model-versions/{model_version.pk}/manifest/")

    assert response.status_code == 201, response.content
    assert response.json()["added"] == 1
    assert [e["work"] for e in listing.json()["results"]] == [work.pk]


@pytest.mark.parametrize("role", ["finance", "contributor"])
def test_only_catalog_admins_change_the_registry(login_as, make_role_user, ai_model, model_version, role):
    client = login_as(make_role_user(role))
    upload = SimpleUploadedFile("m.csv", _csv([{"work_id": make_work().pk}]))

    created = client.post("/api/v1/model-versions/", data={"model": "storyteller", "label": "nope"})
    imported = client.post(f"/api/v1/model-versions/{model_version.pk}/manifest/", data={"manifest": upload})

    assert created.status_code == 403
    assert imported.status_code in (403, 404)
    assert not ModelVersion.objects.filter(label="nope").exists()
    assert ManifestEntry.objects.count() == 0
