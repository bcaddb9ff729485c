"""Catalog fixtures: contributors made the way sign-up makes them, and real files of each kind."""

from __future__ import annotations

import io
import itertools
import wave
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.conftest import make_user

PROSE = (
    "The lighthouse keeper counted the ships by their lamps, one for each night of the long winter.\n"
    "When the fog came in she sang to the gulls, and the gulls, unimpressed, sang back.\n"
    "In spring she wrote it all down, in a book nobody asked for and everybody borrowed.\n"
)
PYTHON_SOURCE = (
    "import math\n\n\n"
    "def area(radius: float) -> float:\n"
    "    \"\"\"Area of a circle.\"\"\"\n"
    "    if radius < 0:\n"
    "        raise ValueError(radius)\n"
    "    return math.pi * radius ** 2\n\n\n"
    "class Circle:\n"
    "    def __init__(self, r):\n"
    "        self.r = r\n"
)


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    """Each test stores uploads in its own folder, so "no file was left behind" can be checked exactly."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.ROYALTIES_IMPORT_DIR = tmp_path / "imports"
    settings.ROYALTIES_IMPORT_DIR.mkdir()


def owners_of(work) -> dict[str, int]:
    """A work's owners by display name, e.g. {"Ada": 6000, "Bob": 4000}."""
    from contributors.models import Ownership

    rows = Ownership.objects.filter(work=work).select_related("contributor")
    return {o.contributor.display_name: o.bps for o in rows}


def media_files(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.fixture
def make_contributor(db):
    """``make_contributor("Ada")``: a user with the contributor role and profile, as sign-up creates them."""
    from contributors.services import contributor_register

    numbers = itertools.count(1)

    def _make(name: str = "Ada", **kwargs):
        user = make_user(username=f"{name.lower().replace(' ', '.')}{next(numbers)}")
        return contributor_register(user=user, display_name=name, **kwargs)

    return _make


@pytest.fixture
def ada(make_contributor):
    return make_contributor("Ada")


@pytest.fixture
def bob(make_contributor):
    return make_contributor("Bob")


@pytest.fixture
def register(db):
    """``register(contributor, title, data=..., name=...)``: a work registered through the service."""
    from contributors.services import Content, work_create

    def _register(contributor, title: str = "A work", *, data: bytes | None = None, name: str = "work.txt", **kw):
        body = data if data is not None else f"{title}\n{PROSE}".encode()
        return work_create(
            created_by=contributor, title=title, content=Content(data=body, field="file", file_name=name),
            actor=contributor.user, **kw,
        )

    return _register


# --- real files -----------------------------------------------------------------------------------------


def png_bytes(size: tuple[int, int] = (8, 8), colour: str = "red") -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_bytes() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), "blue").save(buffer, format="JPEG")
    return buffer.getvalue()


def wav_bytes(frames: int = 800) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x01" * frames)
    return buffer.getvalue()


def pdf_bytes() -> bytes:
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    page = canvas.Canvas(buffer)
    page.drawString(72, 720, "A tiny PDF document")
    page.save()
    return buffer.getvalue()


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("inside.txt", "hello")
    return buffer.getvalue()


def elf_bytes() -> bytes:
    """A real executable from this machine (refused: not a kind of work)."""
    return Path("/bin/true").read_bytes()


def upload(data: bytes, name: str, content_type: str = "application/octet-stream") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)
