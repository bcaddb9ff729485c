"""The demo's people and works. Every work comes from data that ships with installed packages (scikit-learn's
dataset descriptions and bundled handwritten digits, the standard library's docstrings and sources), or is
written here: nothing is downloaded.

Pure data: no database access, so the corpus can be listed, counted and tested on its own.
"""

from __future__ import annotations

import codecs
import hashlib
import importlib
import importlib.resources
import importlib.util
import inspect
import io
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from accounts.roles import CATALOG_ADMIN, CONTRIBUTOR, FINANCE

DEMO_DOMAIN = "demo.example"
DEMO_PASSWORD = "demo-royalties-2026"  # noqa: S105 - printed on purpose; only ever used by the demo

ADA = f"ada@{DEMO_DOMAIN}"
GRACE = f"grace@{DEMO_DOMAIN}"
KATHERINE = f"katherine@{DEMO_DOMAIN}"
HEDY = f"hedy@{DEMO_DOMAIN}"
FINANCE_A = f"finance.a@{DEMO_DOMAIN}"
FINANCE_B = f"finance.b@{DEMO_DOMAIN}"
CATALOG = f"catalog@{DEMO_DOMAIN}"


@dataclass(frozen=True)
class DemoPerson:
    email: str
    role: str
    label: str
    display_name: str = ""  # contributors only
    country: str = ""
    onboard: bool = True  # contributors: finish Stripe onboarding in the demo


DEMO_PEOPLE: tuple[DemoPerson, ...] = (
    DemoPerson(ADA, CONTRIBUTOR, "Contributor: texts, code and digits, paid by the demo run", "Ada Lovelace", "GB"),
    DemoPerson(GRACE, CONTRIBUTOR, "Contributor: co-owner, claims a copy of Ada's essay (open dispute)",
               "Grace Hopper", "US"),
    DemoPerson(KATHERINE, CONTRIBUTOR, "Contributor: most of the handwritten digits", "Katherine Johnson", "US"),
    DemoPerson(HEDY, CONTRIBUTOR, "Contributor: not onboarded to Stripe yet (left out of the run)",
               "Hedy Lamarr", "AT", onboard=False),
    DemoPerson(FINANCE_A, FINANCE, "Finance user A: creates payout runs"),
    DemoPerson(FINANCE_B, FINANCE, "Finance user B: approves them"),
    DemoPerson(CATALOG, CATALOG_ADMIN, "Catalog admin: contributors, works, disputes, models, API keys"),
)


def demo_totp_secret(email: str) -> str:
    """The fixed TOTP secret of a demo staff user (base32, 160 bits, as authenticator apps expect).

    Derived from the address so every demo install prints the same secrets; it protects nothing but demo data.
    """
    import base64

    return base64.b32encode(hashlib.sha256(f"contributor-royalties-demo:{email}".encode()).digest()[:20]).decode()


# --- works ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoWork:
    """One work to register: who uploads it, under which title, with which bytes; owners in basis points."""

    owner: str
    title: str
    file_name: str
    data: bytes
    description: str = ""
    # Every owner and share (the uploader included); empty: the uploader owns it alone.
    shares: tuple[tuple[str, int], ...] = ()
    opt_out_reason: str = ""  # opted out of training right after registration
    digit: int | None = None  # image works: the digit drawn

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class CorpusSize:
    """How much of the shipped data becomes works (``QUICK`` keeps tests fast)."""

    dataset_descriptions: int
    docstrings: int
    sources: int
    digits_per_class: int


FULL = CorpusSize(dataset_descriptions=14, docstrings=20, sources=3, digits_per_class=30)
QUICK = CorpusSize(dataset_descriptions=4, docstrings=3, sources=1, digits_per_class=4)

ESSAY = (
    "Notes on the Analytical Engine\n\n"
    "The engine might act upon other things besides number, were objects found whose mutual fundamental\n"
    "relations could be expressed by those of the abstract science of operations. Supposing, for instance,\n"
    "that the fundamental relations of pitched sounds in the science of harmony were susceptible of such\n"
    "expression, the engine might compose elaborate pieces of music of any degree of complexity.\n"
)
BERNOULLI = (
    "from fractions import Fraction\n\n\n"
    "def bernoulli(n: int) -> list[Fraction]:\n"
    "    \"\"\"The first n+1 Bernoulli numbers (B1 = -1/2).\"\"\"\n"
    "    a = [Fraction(0)] * (n + 1)\n"
    "    out = []\n"
    "    for m in range(n + 1):\n"
    "        a[m] = Fraction(1, m + 1)\n"
    "        for j in range(m, 0, -1):\n"
    "            a[j - 1] = j * (a[j - 1] - a[j])\n"
    "        out.append(a[0])\n"
    "    return out\n"
)
COMPILER_NOTE = (
    "On teaching machines to write programs\n\n"
    "It is much easier to apologise than to get permission. A compiler is a program that writes programs;\n"
    "the people who said it could not be done were, as usual, busy doing something else.\n"
)
ESSAY_TITLE = "Notes on the Analytical Engine"
DISPUTED_COPY_TITLE = "Analytical Engine notes (my copy)"
CO_WRITTEN_TITLE = "On teaching machines to write programs"
OPTED_OUT_TITLE = "Punched-card pattern"

# Standard-library modules whose docstrings read as short essays (each longer than 600 characters).
DOCSTRING_MODULES = (
    "statistics", "json", "csv", "heapq", "copy", "uuid", "itertools", "random", "struct", "collections",
    "difflib", "timeit", "hashlib", "configparser", "fileinput", "sched", "shelve", "string", "tempfile", "argparse",
)
SOURCE_MODULES = ("colorsys", "bisect", "keyword")
# The 8x8 digits are saved 16 times larger (128 px, each pixel a square block): big enough for a person to see
# on a page, and the image model reduces them back to exactly the same 8x8 pixels.
DIGIT_PNG_SCALE = 16
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def _pattern_png() -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (96, 96), "#f4efe6")
    draw = ImageDraw.Draw(image)
    for i in range(0, 96, 12):
        draw.line([(0, i), (95, 95 - i)], fill="#2456c7", width=2)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _rst_title(text: str, fallback: str) -> str:
    """The first reStructuredText section title (a line underlined with - or =)."""
    lines = text.splitlines()
    for line, under in itertools.pairwise(lines):
        if line.strip() and re.fullmatch(r"[-=~^]{3,}", under.strip()):
            return line.strip()
    return fallback


def dataset_descriptions(limit: int) -> list[tuple[str, str]]:
    """``(title, text)`` of scikit-learn's bundled dataset descriptions, in file-name order."""
    folder = importlib.resources.files("sklearn.datasets.descr")
    found = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".rst"):
            text = entry.read_text(encoding="utf-8")
            found.append((_rst_title(text, entry.name.removesuffix(".rst")), text))
    return found[:limit]


def module_docstrings(limit: int) -> list[tuple[str, str]]:
    """``(module name, docstring)`` of a fixed list of standard-library modules."""
    out = []
    for name in DOCSTRING_MODULES[:limit]:
        doc = inspect.cleandoc(importlib.import_module(name).__doc__ or "")
        if doc:
            out.append((name, doc + "\n"))
    return out


def module_source(name: str) -> str:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.origin:
        raise LookupError(f"standard-library module {name!r} has no source file")
    return Path(spec.origin).read_text(encoding="utf-8")


def zen_of_python() -> str:
    """PEP 20, as ``this.py`` ships it (ROT13), decoded; read from the file because importing it prints."""
    match = re.search(r's = """(.*?)"""', module_source("this"), re.S)
    if match is None:
        raise LookupError("this.py no longer holds the Zen of Python as s = \"\"\"...\"\"\"")
    return codecs.decode(match.group(1), "rot13").strip() + "\n"


def digit_images(per_class: int) -> list[tuple[int, int, bytes]]:
    """``(dataset index, digit, PNG bytes)``: the first ``per_class`` distinct images of each digit."""
    from attribution.adapters.reference_image import digits_dataset, pixels_to_png

    images, labels = digits_dataset()
    taken = dict.fromkeys(range(10), 0)
    seen: set[str] = set()
    out = []
    for index, (pixels, label) in enumerate(zip(images, labels, strict=True)):
        digit = int(label)
        if taken[digit] >= per_class:
            continue
        png = pixels_to_png(pixels, scale=DIGIT_PNG_SCALE)
        digest = hashlib.sha256(png).hexdigest()
        if digest in seen:  # the same drawing twice would be a dispute, not a new work
            continue
        seen.add(digest)
        taken[digit] += 1
        out.append((index, digit, png))
    return out


@dataclass
class _Rotation:
    people: tuple[str, ...]
    turn: int = field(default=0)

    def next(self) -> str:
        person = self.people[self.turn % len(self.people)]
        self.turn += 1
        return person


def demo_works(size: CorpusSize = FULL) -> Iterator[DemoWork]:
    """Every demo work in registration order; the same order and bytes on every machine."""
    yield DemoWork(ADA, ESSAY_TITLE, "notes.txt", ESSAY.encode(), "An essay on what the engine could compose.")
    yield DemoWork(ADA, "Bernoulli numbers", "bernoulli.py", BERNOULLI.encode(), "The program of Note G, in Python.")
    yield DemoWork(ADA, OPTED_OUT_TITLE, "pattern.png", _pattern_png(), "A loom card, drawn.",
                   opt_out_reason="demo: not for training")
    yield DemoWork(GRACE, CO_WRITTEN_TITLE, "compilers.txt", COMPILER_NOTE.encode(), "Written together with Ada.",
                   shares=((GRACE, 6000), (ADA, 4000)))

    describers = _Rotation((ADA, KATHERINE, GRACE))
    for n, (title, text) in enumerate(dataset_descriptions(size.dataset_descriptions)):
        owner = describers.next()
        shares = ((owner, 5000), (HEDY, 5000)) if n % 5 == 4 else ()
        subject = title[4:] if title.lower().startswith("the ") else title
        yield DemoWork(owner, f"About the {subject}", f"descr-{n:02d}.rst", text.encode(),
                       "A dataset description, as scikit-learn ships it.", shares=shares)

    essayists = _Rotation((GRACE, HEDY))
    for n, (module, doc) in enumerate(module_docstrings(size.docstrings)):
        owner = essayists.next()
        shares = ((GRACE, 7000), (HEDY, 3000)) if n % 6 == 5 else ()
        yield DemoWork(owner, f"On the {module} module", f"{module}.txt", doc.encode(),
                       "The module's own docstring, as the standard library ships it.", shares=shares)
    yield DemoWork(HEDY, "The Zen of Python", "zen.txt", zen_of_python().encode(), "PEP 20, from this.py.")
    for module in SOURCE_MODULES[: size.sources]:
        yield DemoWork(ADA, f"{module}.py", f"{module}.py", module_source(module).encode(),
                       "A standard-library module's source.")

    artists = _Rotation((KATHERINE, KATHERINE, KATHERINE, HEDY, ADA))
    for n, (index, digit, png) in enumerate(digit_images(size.digits_per_class)):
        owner = artists.next()
        shares = ((KATHERINE, 5000), (HEDY, 5000)) if owner == KATHERINE and n % 7 == 0 else ()
        yield DemoWork(owner, f"Handwritten {DIGIT_WORDS[digit]}, sample {index}", f"digit-{index:04d}.png", png,
                       f"Digit {digit} from scikit-learn's bundled handwritten digits.", shares=shares, digit=digit)

    # Grace uploads the very bytes of Ada's essay: the catalog opens a dispute instead of accepting it.
    yield DemoWork(GRACE, DISPUTED_COPY_TITLE, "engine.txt", ESSAY.encode(), "Found in a drawer.")
