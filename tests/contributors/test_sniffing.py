"""The kind of a work comes from its bytes: real files of each kind, and the refusals."""

from __future__ import annotations

import pytest

from contributors.sniffing import UnsupportedContent, content_sniff, looks_like_code
from tests.contributors.conftest import (
    PROSE,
    PYTHON_SOURCE,
    elf_bytes,
    jpeg_bytes,
    pdf_bytes,
    png_bytes,
    wav_bytes,
    zip_bytes,
)

JAVASCRIPT = """const items = [1, 2, 3];
function total(list) {
  let sum = 0;
  for (const x of list) { sum += x; }
  return sum;
}
console.log(total(items));
"""
C_SOURCE = """#include <stdio.h>

int main(void) {
    printf("hello\\n");
    return 0;
}
"""
MARKDOWN = """# A short essay on rivers

Rivers are patient. They carve valleys over millions of years, one grain at a time.

## Why it matters

Most of the world's great cities sit on a river: trade, water and food came by it.
People still walk by rivers to think, and write poems about them (some of them good).
"""
POEM = "Roses are red,\nviolets are blue;\nsugar is sweet,\nand so are you.\n"


@pytest.mark.parametrize(
    ("data", "kind", "mime"),
    [
        (png_bytes(), "image", "image/png"),
        (jpeg_bytes(), "image", "image/jpeg"),
        (wav_bytes(), "audio", "audio/x-wav"),
        (pdf_bytes(), "other", "application/pdf"),
        (PROSE.encode(), "text", "text/plain"),
        (MARKDOWN.encode(), "text", "text/plain"),
        (POEM.encode(), "text", "text/plain"),
        (PYTHON_SOURCE.encode(), "code", "text/x-python"),
        (JAVASCRIPT.encode(), "code", "text/javascript"),
        (C_SOURCE.encode(), "code", "text/x-c"),
        (b"#!/bin/sh\necho hi\n", "code", "text/x-shellscript"),
        (b'{"a": [1, 2, {"b": null}]}', "code", "application/json"),
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>', "image", "image/svg+xml"),
        ("Grüße aus Köln — ein kurzer Text über den Dom.\n".encode(), "text", "text/plain"),
        (b"\xef\xbb\xbfText with a byte order mark.\n", "text", "text/plain"),
    ],
    ids=[
        "png", "jpeg", "wav", "pdf", "prose", "markdown", "poem", "python", "javascript", "c", "shell", "json",
        "svg", "utf8-umlauts", "utf8-bom",
    ],
)
def test_kind_and_mime_come_from_the_content(data, kind, mime):
    sniffed = content_sniff(data=data)

    assert (sniffed.kind, sniffed.mime_type) == (kind, mime)
    # Text and code keep their decoded text for the attribution engine; media does not.
    assert (sniffed.text is not None) == (kind in {"text", "code"})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"   \n\t\n", "only whitespace"),
        (zip_bytes(), "ZIP files"),
        (elf_bytes(), "ELF files"),
        ("Café au lait, s'il vous plaît".encode("latin-1"), "UTF-8"),
        (b"abc\x00def\x00ghi", "binary"),
    ],
    ids=["empty", "whitespace", "zip", "executable", "latin-1", "nul-bytes"],
)
def test_unsupported_content_is_refused_with_a_reason(data, message):
    with pytest.raises(UnsupportedContent, match=message):
        content_sniff(data=data)


def test_prose_that_mentions_code_words_stays_text():
    text = (
        "I will return to the class reunion if the weather holds; for now, import duties on books are high.\n"
        "Let me say this: while we wait, the function of a library is to lend, not to sell.\n"
        "Public gardens, private thoughts, and a long walk home.\n"
    )

    assert looks_like_code(text) is False
