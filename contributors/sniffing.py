"""Decide what a work is from its bytes, never from its file name.

Binary formats are recognised by their magic numbers (the ``filetype`` package); what is left must be
UTF-8 text, which is then told apart as prose or source code by a few line-level heuristics. Anything
else (an executable, an archive, text in an unknown encoding) is refused.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import filetype

# Binary formats we accept, by detected MIME type prefix or exact type, and the work kind they become.
_KIND_BY_MIME_PREFIX = {"image/": "image", "audio/": "audio", "video/": "video"}
# Documents that are works in their own right but neither prose we can read as text nor media.
_OTHER_MIME_TYPES = frozenset({"application/pdf", "application/epub+zip"})
# filetype files these under application/ although they are media.
_MEDIA_ALIASES = {"application/x-shockwave-flash": None, "application/ogg": "audio"}

# How much of the content the code heuristics look at: enough to judge, bounded for huge texts.
_HEURISTIC_WINDOW = 256 * 1024

_CODE_LINE = re.compile(
    r"""^\s*(
        (def|class|import|return|elif|lambda|yield|raise|async\s+def|await)\b
      | from\s+[\w.]+\s+import\b
      | \#\s*(include|define|ifn?def|endif|pragma)\b
      | (package|func|fn|let|const|var|public|private|protected|static|using|namespace|function|module
         |export|impl|struct|enum|interface|typedef|template|switch|case|catch|try|throw|echo|fi|done)\b
      | (if|for|while)\s*\(
      | (//|/\*|\*/)
      | [}\])]+\s*[;,)]?\s*$
      | @\w+
    )""",
    re.VERBOSE,
)
_CODE_TAIL = re.compile(r"([{;]|\)\s*:|=>|->)\s*$")
_CODE_TOKEN = re.compile(r"(==|!=|<=|>=|&&|\|\||\+=|-=|::|=>|->|\w+\(\)|\w+\[\w*\]|\bself\.|\bthis\.)")
_SYMBOLS = frozenset("{}[]();=<>")
_SVG = re.compile(r"^\s*(<\?xml[^>]*>\s*)?(<!--.*?-->\s*)*(<!DOCTYPE svg[^>]*>\s*)?<svg[\s>]", re.S | re.I)

# Language guesses for the MIME type of code, first match wins: (pattern, mime).
_LANGUAGES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^#!.*\b(ba|z|da)?sh\b"), "text/x-shellscript"),
    (re.compile(r"^#!.*\bpython"), "text/x-python"),
    (re.compile(r"^\s*<(!doctype html|html)[\s>]", re.I), "text/html"),
    (re.compile(r"^\s*#\s*include\s*[<\"]", re.M), "text/x-c"),
    (re.compile(r"^\s*package\s+\w+\s*$.*\bfunc\b", re.M | re.S), "text/x-go"),
    (re.compile(r"^\s*(public\s+)?(final\s+)?class\s+\w+.*\{", re.M), "text/x-java"),
    (re.compile(r"^\s*(pub\s+)?fn\s+\w+|\blet\s+mut\b", re.M), "text/x-rust"),
    (re.compile(r"^\s*(def|class)\s+\w+.*:\s*$|^\s*(from\s+[\w.]+\s+)?import\s+\w+\s*$", re.M), "text/x-python"),
    (re.compile(r"\bfunction\b|\b(const|let)\s+\w+\s*=|=>|console\.", re.M), "text/javascript"),
]


class UnsupportedContent(ValueError):
    """The bytes are neither a supported media/document format nor UTF-8 text; the message says which."""


@dataclass(frozen=True)
class Sniffed:
    kind: str  # a Work.Kind value
    mime_type: str
    text: str | None  # the decoded content for text and code, else None


def content_sniff(*, data: bytes) -> Sniffed:
    """Classify ``data``; raises UnsupportedContent with a message fit to show the uploader."""
    if not data:
        raise UnsupportedContent("The content is empty.")
    guess = filetype.guess(data[:8192])
    if guess is not None:
        return _binary_kind(guess.mime, guess.extension)
    text = _decode_text(data)
    if _SVG.match(text[:4096]):
        return Sniffed(kind="image", mime_type="image/svg+xml", text=None)
    if _is_json_document(text):
        return Sniffed(kind="code", mime_type="application/json", text=text)
    if looks_like_code(text):
        return Sniffed(kind="code", mime_type=_code_mime(text), text=text)
    return Sniffed(kind="text", mime_type="text/plain", text=text)


def _binary_kind(mime: str, extension: str) -> Sniffed:
    for prefix, kind in _KIND_BY_MIME_PREFIX.items():
        if mime.startswith(prefix):
            return Sniffed(kind=kind, mime_type=mime, text=None)
    if mime in _OTHER_MIME_TYPES:
        return Sniffed(kind="other", mime_type=mime, text=None)
    alias = _MEDIA_ALIASES.get(mime)
    if alias:
        return Sniffed(kind=alias, mime_type=mime, text=None)
    raise UnsupportedContent(
        f"{extension.upper()} files ({mime}) are not accepted in the catalog. Upload text, source code, an "
        "image, audio, video, or a PDF/EPUB document."
    )


def _decode_text(data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnsupportedContent(
            f"This is neither a recognised media file nor UTF-8 text (undecodable byte at position {exc.start}). "
            "Save text as UTF-8, or upload an image, audio, video, or a PDF/EPUB document."
        ) from exc
    sample = text[:_HEURISTIC_WINDOW]
    controls = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\t\n\r\f")
    # Binary formats filetype does not know (executables, archives of other kinds) decode as UTF-8 only
    # rarely; when they do, NULs and control characters give them away.
    if "\x00" in sample or controls > len(sample) // 100:
        raise UnsupportedContent(
            "This looks like a binary file of an unsupported type (it contains control characters). Upload "
            "text, source code, an image, audio, video, or a PDF/EPUB document."
        )
    if not sample.strip():
        raise UnsupportedContent("The content is empty (only whitespace).")
    return text


def looks_like_code(text: str) -> bool:
    """Source code rather than prose: many lines shaped like statements, or a dense use of code symbols."""
    sample = text[:_HEURISTIC_WINDOW]
    if sample.startswith("#!"):
        return True
    lines = [line for line in sample.splitlines() if line.strip()]
    if not lines:
        return False
    code_lines = sum(
        1 for line in lines if _CODE_LINE.match(line) or _CODE_TAIL.search(line) or _CODE_TOKEN.search(line)
    )
    fraction = code_lines / len(lines)
    non_space = [ch for ch in sample if not ch.isspace()]
    symbol_density = sum(1 for ch in non_space if ch in _SYMBOLS) / max(len(non_space), 1)
    # Prose rarely puts more than 1 in 40 characters into brackets and operators; code nearly always does.
    return (code_lines >= 2 and fraction >= 0.3) or (fraction >= 0.15 and symbol_density >= 0.05)


def _is_json_document(text: str) -> bool:
    """A JSON object or array (data and configuration files are filed as code)."""
    if not text.lstrip().startswith(("{", "[")):
        return False
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _code_mime(text: str) -> str:
    head = text[:_HEURISTIC_WINDOW]
    for pattern, mime in _LANGUAGES:
        if pattern.search(head):
            return mime
    return "text/x-source"
