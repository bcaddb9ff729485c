"""Reading a work's content (an upload or a pasted text), checking it, and storing files with clean-up.

Nothing here writes to the database. ``content_check`` refuses empty, oversized and unsupported content
with a ValidationError naming the form field the content came from; ``stored_files_guard`` deletes files
that were written to storage when the database transaction around them fails, so a failed upload or
import leaves neither rows nor files behind.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.template.defaultfilters import filesizeformat

from contributors.sniffing import Sniffed, UnsupportedContent, content_sniff

_READ_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Content:
    """The bytes of a work and where they came from (``field`` is what error messages name)."""

    data: bytes
    field: str  # "file" or "text_body" (or the import column)
    file_name: str = ""  # empty for pasted text: then nothing is stored as a file


@dataclass(frozen=True)
class CheckedContent:
    content: Content
    sniffed: Sniffed
    sha256: str

    @property
    def size_bytes(self) -> int:
        return len(self.content.data)


def max_upload_bytes() -> int:
    return settings.ROYALTIES_MAX_UPLOAD_BYTES


def content_too_large(field: str, size: int | None) -> ValidationError:
    """The refusal of an oversized work; ``size`` None when the upload was cut off at the limit."""
    limit = f"the limit is {filesizeformat(max_upload_bytes())} ({max_upload_bytes()} bytes)"
    said = f"The content is {filesizeformat(size)} ({size} bytes)" if size is not None else "The file is too large"
    return ValidationError({field: f"{said}; {limit}."}, code="too_large")


def content_from_upload(*, upload, field: str = "file") -> Content:
    """Read an uploaded file, refusing it before reading further once it passes the size limit."""
    limit = max_upload_bytes()
    size = getattr(upload, "size", None)
    if size is not None and size > limit:
        raise content_too_large(field, size)
    chunks: list[bytes] = []
    read = 0
    upload.seek(0)
    for chunk in upload.chunks(_READ_CHUNK):
        read += len(chunk)
        if read > limit:
            raise content_too_large(field, read)
        chunks.append(chunk)
    return Content(data=b"".join(chunks), field=field, file_name=getattr(upload, "name", "") or "upload")


def content_from_text(*, text: str, field: str = "text_body") -> Content:
    """Pasted text: line endings normalised (browsers send CRLF) so that the same text hashes the same."""
    normalised = text.replace("\r\n", "\n").replace("\r", "\n")
    return Content(data=normalised.encode("utf-8"), field=field)


def content_check(*, content: Content) -> CheckedContent:
    """Size limit, then sniffing: the kind and MIME type come from the bytes alone."""
    if not content.data:
        raise ValidationError({content.field: "The content is empty (0 bytes)."}, code="empty")
    if len(content.data) > max_upload_bytes():
        raise content_too_large(content.field, len(content.data))
    try:
        sniffed = content_sniff(data=content.data)
    except UnsupportedContent as exc:
        raise ValidationError({content.field: str(exc)}, code="unsupported") from exc
    return CheckedContent(content=content, sniffed=sniffed, sha256=hashlib.sha256(content.data).hexdigest())


# --- files written during a transaction -----------------------------------------------------------------

_stored: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("contributors_stored_files", default=None)


@contextlib.contextmanager
def stored_files_guard() -> Iterator[list[str]]:
    """Collect storage names written inside; on an exception delete them all, then re-raise.

    Nested guards join the outermost one, so a bulk import cleans up every file of the batch when its
    single transaction rolls back, not only the file of the line that failed.
    """
    current = _stored.get()
    if current is not None:
        yield current
        return
    names: list[str] = []
    token = _stored.set(names)
    try:
        yield names
    except BaseException:
        for name in names:
            with contextlib.suppress(OSError):
                default_storage.delete(name)
        raise
    finally:
        _stored.reset(token)


def stored_file_note(name: str) -> None:
    """Remember a file written to storage, for the enclosing ``stored_files_guard``."""
    names = _stored.get()
    if names is not None:
        names.append(name)
