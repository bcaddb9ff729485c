"""Bulk import (CSV and JSON Lines): a dry run reports every bad line by number and field; the import is
all-or-nothing, files included; the command and the admin both drive it."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from audit.models import AuditEvent
from contributors.models import Dispute, OptOut, Ownership, Work
from contributors.services import catalog_import
from tests.conftest import login, make_user
from tests.contributors.conftest import PROSE, PYTHON_SOURCE, media_files, png_bytes, upload, zip_bytes


def issues_of(report) -> list[tuple[int, str]]:
    return [(i.line, i.field) for i in report.issues]


@pytest.fixture
def files(tmp_path):
    """A folder of real files an import can name."""
    folder = tmp_path / "incoming"
    folder.mkdir()
    (folder / "poem.txt").write_text(PROSE)
    (folder / "circle.py").write_text(PYTHON_SOURCE)
    (folder / "red.png").write_bytes(png_bytes())
    (folder / "bundle.zip").write_bytes(zip_bytes())
    (folder / "empty.txt").write_bytes(b"")
    return folder


@pytest.fixture
def people(ada, bob):
    return {"ada": ada.user.email, "bob": bob.user.email}


def csv_data(people, rows: list[str]) -> bytes:
    header = "title,owners,file,text,kind,sha256,opted_out,description"
    return ("\n".join([header, *rows]) + "\n").format(**people).encode()


def test_dry_run_reports_every_bad_line_by_number_and_field(files, people, settings):
    data = csv_data(people, [
        "Poem,{ada},poem.txt,,text,,,",                      # line 2: fine
        ",{ada},circle.py,,,,,",                               # line 3: no title
        "Pic,{ada}:6000;{bob}:3000,red.png,,,,,",              # line 4: shares sum to 9,000
        "Zip,{ada},bundle.zip,,,,,",                           # line 5: unsupported content
        "Empty,{bob},empty.txt,,,,,",                          # line 6: empty file
        "Ghost,nobody@example.org,poem.txt,,,,,",              # line 7: unknown owner
        "Both,{ada},poem.txt,some text,,,,",                   # line 8: file and text
        "Escape,{ada},../../etc/passwd,,,,,",                  # line 9: path outside the folder
        "Wrong kind,{bob},red.png,,text,,,",                   # line 10: kind check fails
        'Bad hash,{bob},,"a text",,deadbeef,maybe,',           # line 11: malformed sha256 and opted_out
    ])

    report = catalog_import(data=data, fmt="csv", base_dir=files, actor="test", dry_run=True, source_name="c.csv")

    assert issues_of(report) == [
        (3, "title"), (4, "owners"), (5, "file"), (6, "file"), (7, "owners"), (8, "text"), (9, "file"),
        (10, "kind"), (11, "opted_out"), (11, "sha256"),
    ]
    messages = {(i.line, i.field): i.message for i in report.issues}
    assert "sum to 9,000 basis points" in messages[(4, "owners")]
    assert "ZIP files (application/zip) are not accepted" in messages[(5, "file")]
    assert "empty" in messages[(6, "file")]
    assert "no contributor with e-mail nobody@example.org" in messages[(7, "owners")]
    assert "inside the import directory" in messages[(9, "file")]
    assert messages[(10, "kind")] == "the content is image, not text"
    assert Work.objects.count() == 0
    assert media_files(settings) == []


def test_jsonl_lines_are_numbered_and_each_problem_named(files, people):
    lines = [
        json.dumps({"title": "Poem", "owners": people["ada"], "file": "poem.txt"}),
        "",
        "{not json",
        json.dumps(["a", "list"]),
        json.dumps({"title": "Split", "owners": [{"email": people["ada"], "bps": 5000}, {"email": people["bob"]}],
                    "text": "hello there, a text"}),
        json.dumps({"title": "T", "owners": {people["ada"]: 10_000}, "text": "x", "colour": "blue"}),
    ]

    report = catalog_import(
        data="\n".join(lines).encode(), fmt="jsonl", base_dir=files, actor="test", dry_run=True
    )

    assert issues_of(report) == [(3, "line"), (4, "line"), (5, "owners"), (6, "colour")]
    assert Work.objects.count() == 0


def test_a_clean_file_imports_every_line_with_files_owners_opt_outs_and_audit(files, people, settings):
    data = csv_data({**people, "sha": hashlib.sha256(png_bytes()).hexdigest()}, [
        "Poem,{ada},poem.txt,,text,,,first",
        "Circle,{ada}:7000;{bob}:3000,circle.py,,code,,yes,",
        "Pic,{bob},red.png,,,{sha},,",
        'Note,{bob},,"A short note, pasted.",,,no,',
    ])

    report = catalog_import(data=data, fmt="csv", base_dir=files, actor="command:import_catalog", dry_run=False,
                            source_name="catalog.csv")

    assert report.issues == []
    works = {w.title: w for w in Work.objects.all()}
    assert sorted(works) == ["Circle", "Note", "Pic", "Poem"]
    assert report.created == [works[t].pk for t in ("Poem", "Circle", "Pic", "Note")]
    assert (works["Circle"].kind, works["Pic"].kind, works["Note"].kind) == ("code", "image", "text")
    assert {o.contributor.display_name: o.bps for o in works["Circle"].ownerships.select_related("contributor")} == {
        "Ada": 7000, "Bob": 3000,
    }
    assert works["Circle"].opted_out_at is not None
    assert OptOut.objects.count() == 1
    assert works["Pic"].file.read() == png_bytes()
    assert len(media_files(settings)) == 3  # three files; the pasted note has none
    create_events = AuditEvent.objects.filter(action="work.create")
    assert create_events.count() == 4
    assert {e.actor_label for e in create_events} == {"command:import_catalog"}
    assert create_events.filter(reason="imported from catalog.csv line 3").exists()
    assert AuditEvent.objects.filter(action="catalog.import").count() == 1


def test_one_bad_line_means_nothing_is_imported(files, people, settings):
    data = csv_data(people, ["Poem,{ada},poem.txt,,,,,", "Pic,{bob},red.png,,,,,", "Bad,{ada}:10,poem.txt,,,,,"])

    report = catalog_import(data=data, fmt="csv", base_dir=files, actor="test", dry_run=False)

    assert issues_of(report) == [(4, "owners")]
    assert report.created == []
    assert Work.objects.count() == 0
    assert Ownership.objects.count() == 0
    assert media_files(settings) == []


def test_a_failure_in_the_middle_of_the_import_rolls_back_every_line_and_file(files, people, settings, monkeypatch):
    # given: registering the third line fails after two works (and their files) were written
    import contributors.services.imports as imports

    calls = []
    real = imports.work_create

    def failing_work_create(**kwargs):
        calls.append(kwargs["title"])
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return real(**kwargs)

    monkeypatch.setattr(imports, "work_create", failing_work_create)
    data = csv_data(people, ["Poem,{ada},poem.txt,,,,,", "Pic,{bob},red.png,,,,,", "Circle,{ada},circle.py,,,,,"])

    # when
    with pytest.raises(RuntimeError, match="disk full"):
        catalog_import(data=data, fmt="csv", base_dir=files, actor="test", dry_run=False)

    # then: one transaction, so the first two works are gone too, and so are their files
    assert calls == ["Poem", "Pic", "Circle"]
    assert Work.objects.count() == 0
    assert media_files(settings) == []
    assert not AuditEvent.objects.filter(action__in=["work.create", "catalog.import"]).exists()


def test_content_already_registered_by_the_same_owner_is_a_line_error(files, people, ada, register):
    existing = register(ada, "Poem", data=PROSE.encode()).work
    data = csv_data(people, ["Poem again,{ada},poem.txt,,,,,", "Twice in file,{bob},red.png,,,,,",
                             "Twice in file,{bob},red.png,,,,,"])

    report = catalog_import(data=data, fmt="csv", base_dir=files, actor="test", dry_run=True)

    messages = {(i.line, i.field): i.message for i in report.issues}
    assert f"(work #{existing.pk})" in messages[(2, "file")]
    assert messages[(4, "file")] == "same content as line 3"


def test_content_registered_by_someone_else_is_imported_and_opens_a_dispute(files, people, ada, register):
    original = register(ada, "Poem", data=PROSE.encode()).work
    data = csv_data(people, ["Bob's poem,{bob},poem.txt,,,,,"])

    dry = catalog_import(data=data, fmt="csv", base_dir=files, actor="test", dry_run=True)
    real = catalog_import(data=data, fmt="csv", base_dir=files, actor="test", dry_run=False)

    assert dry.planned[0].dispute_with == original.pk
    assert len(real.disputes) == 1
    dispute = Dispute.objects.get()
    assert (dispute.work, dispute.claim_work.title) == (original, "Bob's poem")


def test_the_command_prints_the_report_and_fails_on_bad_lines(files, people, capsys):
    bad = files / "bad.csv"
    bad.write_bytes(csv_data(people, ["Poem,{ada},poem.txt,,,,,", "Nope,{ada},missing.txt,,,,,"]))
    good = files / "good.jsonl"
    good.write_text(json.dumps({"title": "Poem", "owners": people["ada"], "file": "poem.txt"}) + "\n")

    with pytest.raises(CommandError, match="1 problem"):
        call_command("import_catalog", str(bad))
    err = capsys.readouterr().err
    assert "bad.csv: line 3, file: no such file: missing.txt" in err

    call_command("import_catalog", str(good), "--dry-run")
    assert "all valid; nothing imported" in capsys.readouterr().out
    assert Work.objects.count() == 0

    call_command("import_catalog", str(good), "--json")
    out = json.loads(capsys.readouterr().out)
    assert out["created"] == [Work.objects.get().pk]


def test_the_admin_import_checks_then_imports_on_confirmation(client, people, settings):
    admin = make_user("catalog_admin")
    login(client, admin)
    (settings.ROYALTIES_IMPORT_DIR / "poem.txt").write_text(PROSE)
    url = reverse("admin:contributors_work_import")
    data = csv_data(people, ["Poem,{ada},poem.txt,,,,,", 'Note,{bob},,"Pasted text.",,,,'])

    checked = client.post(url, {"file": upload(data, "batch.csv"), "format": ""})

    assert checked.status_code == 200
    assert checked.context["report"].ok
    assert Work.objects.count() == 0  # the dry run wrote nothing
    token = checked.context["token"]

    confirmed = client.post(url, {"token": token, "confirm": "Import"})

    assert confirmed.status_code == 302
    assert sorted(Work.objects.values_list("title", flat=True)) == ["Note", "Poem"]
    assert AuditEvent.objects.filter(action="catalog.import", actor=admin).exists()
    # The pending file is consumed: confirming twice imports nothing more.
    client.post(url, {"token": token, "confirm": "Import"})
    assert Work.objects.count() == 2


def test_the_admin_import_shows_line_errors_and_offers_no_confirmation(client, people):
    login(client, make_user("catalog_admin"))
    data = csv_data(people, ["Poem,{ada},nowhere.txt,,,,,"])

    response = client.post(reverse("admin:contributors_work_import"), {"file": upload(data, "b.csv"), "format": ""})

    page = response.content.decode()
    assert response.status_code == 200
    assert "no such file: nowhere.txt" in page
    assert 'name="confirm"' not in page
    assert response.context["token"] == ""


def test_the_admin_import_is_not_there_for_finance(client, db):
    login(client, make_user("finance"))

    assert client.get(reverse("admin:contributors_work_import")).status_code == 404
