"""Adding works through the portal: real multipart uploads, the kind from the content, clear refusals,
and nothing half-saved (no row, no file) when anything fails."""

from __future__ import annotations

import hashlib

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadhandler import MemoryFileUploadHandler
from django.urls import reverse

from audit.models import AuditEvent
from contributors.models import Ownership, Work
from tests.conftest import login
from tests.contributors.conftest import (
    PROSE,
    PYTHON_SOURCE,
    elf_bytes,
    jpeg_bytes,
    media_files,
    png_bytes,
    upload,
    wav_bytes,
    zip_bytes,
)

ADD_URL = reverse("contributors:work_add")


@pytest.fixture
def ada_client(client, ada):
    login(client, ada.user)
    return client


def post_work(client, *, title="My work", data: bytes | None = None, name="work.bin", text: str = ""):
    payload = {"title": title, "description": "", "text_body": text}
    if data is not None:
        payload["file"] = upload(data, name)
    return client.post(ADD_URL, payload)


@pytest.mark.parametrize(
    ("data", "name", "kind", "mime"),
    [
        (PROSE.encode(), "story.txt", "text", "text/plain"),
        (PYTHON_SOURCE.encode(), "circle.py", "code", "text/x-python"),
        (png_bytes(), "picture.png", "image", "image/png"),
        (wav_bytes(), "tone.wav", "audio", "audio/x-wav"),
        # The name lies; the bytes decide.
        (jpeg_bytes(), "notes.txt", "image", "image/jpeg"),
        (PROSE.encode(), "photo.png", "text", "text/plain"),
    ],
    ids=["text", "code", "png", "wav", "jpeg-named-txt", "text-named-png"],
)
def test_upload_registers_the_work_with_the_kind_sniffed_from_its_bytes(
    ada_client, ada, settings, data, name, kind, mime
):
    response = post_work(ada_client, data=data, name=name)

    work = Work.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("contributors:work_detail", args=[work.pk])
    assert (work.kind, work.mime_type, work.size_bytes) == (kind, mime, len(data))
    assert work.sha256 == hashlib.sha256(data).hexdigest()
    assert work.file.read() == data  # the stored file is exactly what was uploaded
    assert list(Ownership.objects.values_list("contributor_id", "bps")) == [(ada.pk, 10_000)]
    assert work.created_by == ada
    assert work.status == Work.Status.ACTIVE
    # The audit trail records who registered it and what (the catalog's history starts here).
    event = AuditEvent.objects.get(action="work.create")
    assert event.actor == ada.user
    assert event.after["sha256"] == work.sha256


def test_pasted_text_is_a_work_without_a_file(ada_client):
    response = post_work(ada_client, text="Line one\r\nLine two\r\n")

    work = Work.objects.get()
    assert response.status_code == 302
    assert work.kind == "text"
    assert not work.file
    # CRLF from the browser is normalised, so the same text hashes the same however it arrives.
    assert work.text_body == "Line one\nLine two\n"
    assert work.sha256 == hashlib.sha256(b"Line one\nLine two\n").hexdigest()


@pytest.mark.parametrize(
    ("data", "name", "field_message"),
    [
        (b"", "empty.txt", "The submitted file is empty."),  # Django's own check, before ours
        (zip_bytes(), "archive.zip", "ZIP files (application/zip) are not accepted"),
        (elf_bytes(), "program", "ELF files (application/x-executable) are not accepted"),
        ("Déjà vu".encode("latin-1"), "old.txt", "neither a recognised media file nor UTF-8 text"),
    ],
    ids=["empty", "zip", "executable", "latin-1"],
)
def test_bad_uploads_are_refused_with_a_clear_message_and_nothing_is_saved(
    ada_client, settings, data, name, field_message
):
    response = post_work(ada_client, data=data, name=name)

    assert response.status_code == 400
    assert field_message in response.content.decode()
    assert response.context["form"].errors["file"]  # the message is on the file field
    assert Work.objects.count() == 0
    assert Ownership.objects.count() == 0
    assert media_files(settings) == []
    assert not AuditEvent.objects.filter(action__startswith="work.").exists()


class CountingUploadHandler(MemoryFileUploadHandler):
    """Stands in for Django's storing handlers and counts what reaches them (a test seam, not a mock)."""

    largest_offset = 0

    def receive_data_chunk(self, raw_data, start):
        CountingUploadHandler.largest_offset = max(CountingUploadHandler.largest_offset, start + len(raw_data))
        return super().receive_data_chunk(raw_data, start)


def test_oversized_upload_is_cut_off_at_the_limit_and_refused_with_the_limit_in_the_message(ada_client, settings):
    settings.ROYALTIES_MAX_UPLOAD_BYTES = 100_000
    settings.FILE_UPLOAD_HANDLERS = [f"{__name__}.CountingUploadHandler"]
    CountingUploadHandler.largest_offset = 0
    big = (PROSE * 20_000).encode()  # about 5 MB

    response = post_work(ada_client, data=big, name="big.txt")

    assert response.status_code == 400
    message = response.context["form"].errors["file"][0]
    assert message == "The file is too large; the limit is 97.7\xa0KB (100000 bytes)."
    assert Work.objects.count() == 0
    assert media_files(settings) == []
    # The storing handlers never received a byte past the limit, let alone the 5 MB.
    assert 0 < CountingUploadHandler.largest_offset <= 100_000


def test_content_over_the_limit_is_refused_by_the_service_too(ada, settings):
    from contributors.services import Content, content_check

    settings.ROYALTIES_MAX_UPLOAD_BYTES = 1000

    with pytest.raises(ValidationError) as excinfo:
        content_check(content=Content(data=b"x" * 1001 + b"\n", field="file", file_name="big.txt"))

    assert excinfo.value.message_dict["file"] == [
        "The content is 1002\xa0bytes (1002 bytes); the limit is 1000\xa0bytes (1000 bytes)."
    ]


def test_empty_content_is_refused_by_the_service(ada):
    from contributors.services import Content, content_check

    with pytest.raises(ValidationError, match="empty"):
        content_check(content=Content(data=b"", field="text_body"))


def test_uploads_still_need_a_csrf_token(ada, settings):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    login(browser, ada.user)

    response = browser.post(ADD_URL, {"title": "t", "file": upload(PROSE.encode(), "a.txt")})

    assert response.status_code == 403
    assert Work.objects.count() == 0


def test_a_file_at_exactly_the_limit_is_accepted(ada_client, settings):
    settings.ROYALTIES_MAX_UPLOAD_BYTES = 1000
    data = (PROSE * 10).encode()[:999] + b"\n"

    response = post_work(ada_client, data=data, name="fits.txt")

    assert response.status_code == 302
    assert Work.objects.get().size_bytes == 1000


def test_missing_title_or_content_names_the_field(ada_client):
    response = ada_client.post(ADD_URL, {"title": "", "description": "", "text_body": ""})

    assert response.status_code == 400
    errors = response.context["form"].errors
    assert set(errors) == {"title", "file"}
    assert Work.objects.count() == 0


def test_file_and_text_together_are_refused(ada_client):
    response = post_work(ada_client, data=PROSE.encode(), name="a.txt", text="other text")

    assert response.status_code == 400
    assert "either a file or a text" in response.content.decode()
    assert Work.objects.count() == 0


def test_a_failure_after_the_file_was_stored_leaves_neither_row_nor_file(ada_client, settings, monkeypatch):
    # given: the audit write (the last step of registering) fails after the file has been written
    import contributors.services.works as works

    def broken_audit(**kwargs):
        if kwargs["action"] == "work.create":
            raise RuntimeError("audit store down")
        return original(**kwargs)

    original = works.audit_record
    monkeypatch.setattr(works, "audit_record", broken_audit)

    # when
    with pytest.raises(RuntimeError, match="audit store down"):
        post_work(ada_client, data=png_bytes(), name="p.png")

    # then: the transaction rolled back and the stored file was deleted with it
    assert Work.objects.count() == 0
    assert Ownership.objects.count() == 0
    assert media_files(settings) == []


def test_registering_the_same_content_twice_yourself_is_refused(ada_client, ada, register):
    first = register(ada, "Original", data=PROSE.encode()).work

    response = post_work(ada_client, data=PROSE.encode(), name="again.txt")

    assert response.status_code == 400
    assert f"already registered as “Original” (work #{first.pk})" in response.context["form"].errors["file"][0]
    assert Work.objects.count() == 1


def test_edit_replaces_content_and_keeps_the_old_file(ada_client, ada, register, settings):
    work = register(ada, "Draft", data=PROSE.encode(), name="draft.txt").work
    old_name = work.file.name

    response = ada_client.post(
        reverse("contributors:work_edit", args=[work.pk]),
        {"title": "Final", "description": "now with code", "file": upload(PYTHON_SOURCE.encode(), "final.txt")},
    )

    work.refresh_from_db()
    assert response.status_code == 302
    assert (work.title, work.kind, work.sha256) == ("Final", "code", hashlib.sha256(PYTHON_SOURCE.encode()).hexdigest())
    # History is never deleted: the replaced file stays in storage and the audit names it.
    assert {p.name for p in media_files(settings)} == {old_name.rsplit("/", 1)[-1], work.file.name.rsplit("/", 1)[-1]}
    event = AuditEvent.objects.get(action="work.update")
    assert event.before["file"] == old_name
    assert event.after["kind"] == "code"


def test_edit_of_metadata_only_keeps_the_content(ada_client, ada, register):
    work = register(ada, "Draft").work
    sha = work.sha256

    response = ada_client.post(
        reverse("contributors:work_edit", args=[work.pk]), {"title": "Renamed", "description": "d", "text_body": ""}
    )

    work.refresh_from_db()
    assert response.status_code == 302
    assert (work.title, work.description, work.sha256) == ("Renamed", "d", sha)


def test_owner_downloads_the_content_but_it_never_renders_as_a_page(ada_client, ada, register):
    work = register(ada, "Pic", data=png_bytes(), name="p.png").work

    response = ada_client.get(reverse("contributors:work_content", args=[work.pk]))

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == png_bytes()
    assert response["Content-Type"] == "image/png"
    assert "attachment" in response["Content-Disposition"]
    assert response["Content-Security-Policy"].startswith("sandbox")
