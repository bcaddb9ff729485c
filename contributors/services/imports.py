"""Bulk import of works (CSV or JSON Lines): check every line, report each problem by line and field,
then import all lines in one transaction or none.

Columns (CSV header / JSON keys):
  title        required
  owners       required: "ada@example.org" (sole owner) or "ada@example.org:6000;bob@example.org:4000";
               in JSON Lines also [{"email": ..., "bps": ...}, ...] or {"ada@example.org": 6000, ...}
  text | file  exactly one: the text itself, or a path relative to the import's base directory
  description  optional
  kind         optional check: must equal the kind sniffed from the content
  sha256       optional check: must equal the SHA-256 of the content
  opted_out    optional: true/false (yes/no, 1/0): opt the work out of future training at import
Every owner must already have a contributor account. Content already registered by one of the line's
owners is an error; content registered by someone else is imported and opens a dispute, as an upload does.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from audit.services import audit_record
from contributors.models import BPS_TOTAL, Contributor, Ownership, Work
from contributors.services.content import (
    CheckedContent,
    Content,
    content_check,
    content_too_large,
    max_upload_bytes,
    stored_files_guard,
)
from contributors.services.ownership import ownership_validate
from contributors.services.works import work_create

FORMATS = ("csv", "jsonl")
COLUMNS = ("title", "owners", "text", "file", "description", "kind", "sha256", "opted_out")
_TRUE = {"1", "true", "yes", "y"}
_FALSE = {"", "0", "false", "no", "n"}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ImportIssue:
    line: int  # 1-based line of the file (CSV: the line where the record starts; the header is line 1)
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}, {self.field}: {self.message}"


@dataclass
class ImportLine:
    line: int
    title: str
    description: str
    owners: dict[Contributor, int]
    content_field: str
    text: str | None
    path: Path | None
    sha256: str
    kind: str
    size_bytes: int
    opt_out: bool
    dispute_with: int | None = None  # id of the work this line's content is already registered as
    dispute_with_line: int | None = None  # or the earlier line of this file that registers it


@dataclass
class ImportReport:
    format: str
    source_name: str
    dry_run: bool
    records: int = 0
    issues: list[ImportIssue] = field(default_factory=list)
    planned: list[ImportLine] = field(default_factory=list)
    created: list[int] = field(default_factory=list)  # work ids, only after a real import
    disputes: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.issues

    @property
    def imported(self) -> bool:
        return bool(self.created)


def import_format_for(name: str, explicit: str | None = None) -> str:
    """The format from an explicit choice or the file name's extension."""
    if explicit:
        if explicit not in FORMATS:
            raise ValueError(f"unknown format {explicit!r}; use one of {', '.join(FORMATS)}")
        return explicit
    lowered = name.lower()
    if lowered.endswith(".csv"):
        return "csv"
    if lowered.endswith((".jsonl", ".ndjson", ".jsonlines")):
        return "jsonl"
    raise ValueError(f"cannot tell the format of {name!r} from its extension; choose csv or jsonl")


# --- reading records ------------------------------------------------------------------------------------


def _records(data: bytes, fmt: str, issues: list[ImportIssue]) -> list[tuple[int, dict[str, Any]]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        issues.append(ImportIssue(line, "file", f"not UTF-8 text (undecodable byte at offset {exc.start})"))
        return []
    if not text.strip():
        issues.append(ImportIssue(1, "file", "the import file is empty"))
        return []
    return _csv_records(text, issues) if fmt == "csv" else _jsonl_records(text, issues)


def _csv_records(text: str, issues: list[ImportIssue]) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""), restkey="__extra__")
    header = reader.fieldnames or []
    unknown = [name for name in header if name not in COLUMNS]
    for name in unknown:
        issues.append(ImportIssue(1, name or "(empty)", f"unknown column; the columns are {', '.join(COLUMNS)}"))
    for required in ("title", "owners"):
        if required not in header:
            issues.append(ImportIssue(1, required, "required column missing"))
    if "text" not in header and "file" not in header:
        issues.append(ImportIssue(1, "text", "the header needs a text or a file column"))
    if issues:
        return []
    records: list[tuple[int, dict[str, Any]]] = []
    start = reader.line_num + 1
    try:
        for row in reader:
            line = start
            start = reader.line_num + 1
            if row.pop("__extra__", None):
                issues.append(ImportIssue(line, "line", f"more fields than the {len(header)} columns of the header"))
                continue
            if not any((value or "").strip() for value in row.values()):
                continue  # a blank line in the middle or at the end
            records.append((line, {k: (v if v is not None else "") for k, v in row.items()}))
    except csv.Error as exc:
        issues.append(ImportIssue(start, "line", f"malformed CSV: {exc}"))
    return records


def _jsonl_records(text: str, issues: list[ImportIssue]) -> list[tuple[int, dict[str, Any]]]:
    records: list[tuple[int, dict[str, Any]]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except ValueError as exc:
            issues.append(ImportIssue(number, "line", f"not valid JSON: {exc}"))
            continue
        if not isinstance(value, dict):
            issues.append(ImportIssue(number, "line", f"each line must be a JSON object, got {type(value).__name__}"))
            continue
        unknown = [key for key in value if key not in COLUMNS]
        for key in unknown:
            issues.append(ImportIssue(number, key, f"unknown field; the fields are {', '.join(COLUMNS)}"))
        if not unknown:
            records.append((number, value))
    return records


# --- checking one record --------------------------------------------------------------------------------


def _parse_owner_pairs(raw: Any) -> list[tuple[str, int]]:
    """Owner (email, bps) pairs from the string, list or object forms; ValueError says what is wrong."""
    if isinstance(raw, dict):
        items = list(raw.items())
    elif isinstance(raw, list):
        items = []
        for entry in raw:
            if not isinstance(entry, dict) or "email" not in entry:
                raise ValueError('each owner must be an object like {"email": ..., "bps": ...}')
            items.append((entry["email"], entry.get("bps", BPS_TOTAL if len(raw) == 1 else None)))
    elif isinstance(raw, str):
        parts = [p.strip() for p in raw.split(";") if p.strip()]
        if not parts:
            raise ValueError("name at least one owner by e-mail")
        items = []
        for part in parts:
            email, sep, bps = part.rpartition(":")
            if not sep:
                if len(parts) > 1:
                    raise ValueError(f"give each of several owners a share, e.g. {part}:5000")
                email, bps = part, str(BPS_TOTAL)
            items.append((email.strip(), bps.strip()))
    else:
        raise ValueError("owners must be text like ada@example.org:6000;bob@example.org:4000")
    pairs: list[tuple[str, int]] = []
    for email, bps in items:
        if not isinstance(email, str) or "@" not in email:
            raise ValueError(f"{email!r} is not an e-mail address")
        if isinstance(bps, bool):
            raise ValueError(f"the share of {email} must be a whole number of basis points")
        try:
            value = int(bps) if isinstance(bps, int) else int(str(bps).strip())
        except (TypeError, ValueError):
            raise ValueError(f"the share of {email} must be a whole number of basis points, got {bps!r}") from None
        pairs.append((email.strip().lower(), value))
    return pairs


def _check_owners(
    raw: Any, line: int, issues: list[ImportIssue], known: dict[str, Contributor | None]
) -> dict[Contributor, int] | None:
    if raw in (None, ""):
        issues.append(ImportIssue(line, "owners", "required"))
        return None
    try:
        pairs = _parse_owner_pairs(raw)
    except ValueError as exc:
        issues.append(ImportIssue(line, "owners", str(exc)))
        return None
    emails = [email for email, _ in pairs]
    repeated = sorted({e for e in emails if emails.count(e) > 1})
    if repeated:
        issues.append(ImportIssue(line, "owners", f"{', '.join(repeated)} named more than once"))
        return None
    for email in emails:
        if email not in known:  # one query per distinct e-mail address in the whole file
            known[email] = Contributor.objects.select_related("user").filter(user__email__iexact=email).first()
    missing = [e for e in emails if known[e] is None]
    if missing:
        issues.append(ImportIssue(line, "owners", f"no contributor with e-mail {', '.join(missing)}"))
        return None
    owners: dict[Contributor, int] = {known[email]: bps for email, bps in pairs}  # type: ignore[misc]
    try:
        ownership_validate(shares=owners, field="owners")
    except ValidationError as exc:
        issues.extend(ImportIssue(line, "owners", message) for message in exc.message_dict["owners"])
        return None
    return owners


def _resolve_path(raw: str, base_dir: Path) -> Path:
    base = base_dir.resolve()
    candidate = Path(raw)
    path = (candidate if candidate.is_absolute() else base / candidate).resolve()
    if not path.is_relative_to(base):
        raise ValueError(f"the path must stay inside the import directory {base}")
    if not path.is_file():
        raise ValueError(f"no such file: {raw}")
    return path


def _read_content(*, text: str | None, path: Path | None, fld: str) -> Content:
    if path is not None:
        size = path.stat().st_size
        if size > max_upload_bytes():
            raise content_too_large(fld, size)  # refused before reading a huge file into memory
        return Content(data=path.read_bytes(), field=fld, file_name=path.name)
    return Content(data=(text or "").replace("\r\n", "\n").encode("utf-8"), field=fld)


def _check_record(
    line: int, record: dict[str, Any], base_dir: Path, issues: list[ImportIssue], known: dict[str, Contributor | None]
) -> tuple[ImportLine, CheckedContent] | None:
    start = len(issues)
    title = record.get("title")
    title = title.strip() if isinstance(title, str) else ""
    max_title = Work._meta.get_field("title").max_length
    if not title:
        issues.append(ImportIssue(line, "title", "required"))
    elif len(title) > max_title:
        issues.append(ImportIssue(line, "title", f"at most {max_title} characters (got {len(title)})"))
    description = record.get("description") or ""
    if not isinstance(description, str):
        issues.append(ImportIssue(line, "description", "must be text"))
        description = ""
    owners = _check_owners(record.get("owners"), line, issues, known)

    text = record.get("text")
    raw_path = record.get("file")
    has_text = isinstance(text, str) and text != ""
    has_path = isinstance(raw_path, str) and raw_path.strip() != ""
    path: Path | None = None
    checked: CheckedContent | None = None
    fld = "file" if has_path else "text"
    if text is not None and not isinstance(text, str):
        issues.append(ImportIssue(line, "text", "must be a string"))
    elif raw_path is not None and not isinstance(raw_path, str):
        issues.append(ImportIssue(line, "file", "must be a path (a string)"))
    elif has_text == has_path:
        issues.append(ImportIssue(line, "text", "give exactly one of text and file"))
    else:
        try:
            path = _resolve_path(raw_path.strip(), base_dir) if has_path else None
        except ValueError as exc:
            issues.append(ImportIssue(line, "file", str(exc)))
        else:
            try:
                checked = content_check(content=_read_content(text=text, path=path, fld=fld))
            except ValidationError as exc:
                issues.extend(ImportIssue(line, fld, m) for m in exc.message_dict[fld])

    kind = record.get("kind")
    if kind not in (None, ""):
        if kind not in Work.Kind.values:
            issues.append(ImportIssue(line, "kind", f"{kind!r} is not one of {', '.join(Work.Kind.values)}"))
        elif checked is not None and checked.sniffed.kind != kind:
            issues.append(ImportIssue(line, "kind", f"the content is {checked.sniffed.kind}, not {kind}"))
    sha = record.get("sha256")
    if sha not in (None, ""):
        sha = str(sha).strip().lower()
        if not _SHA256.match(sha):
            issues.append(ImportIssue(line, "sha256", "must be 64 hexadecimal characters"))
        elif checked is not None and checked.sha256 != sha:
            issues.append(ImportIssue(line, "sha256", f"the content's SHA-256 is {checked.sha256}"))
    opted = record.get("opted_out")
    opt_out = False
    if isinstance(opted, bool):
        opt_out = opted
    elif opted is None or str(opted).strip().lower() in _FALSE:
        opt_out = False
    elif str(opted).strip().lower() in _TRUE:
        opt_out = True
    else:
        issues.append(ImportIssue(line, "opted_out", f"{opted!r} is not true/false"))

    if len(issues) > start or owners is None or checked is None:
        return None
    return (
        ImportLine(
            line=line, title=title, description=description.strip(), owners=owners, content_field=fld,
            text=text if has_text else None, path=path, sha256=checked.sha256, kind=checked.sniffed.kind,
            size_bytes=checked.size_bytes, opt_out=opt_out,
        ),
        checked,
    )


def _check_duplicates(planned: list[ImportLine], issues: list[ImportIssue]) -> None:
    """Content a line's owners already registered is an error; someone else's opens a dispute."""
    first_line_of: dict[str, ImportLine] = {}
    for item in planned:
        owner_ids = {c.pk for c in item.owners}
        earlier = first_line_of.get(item.sha256)
        if earlier is not None and owner_ids & {c.pk for c in earlier.owners}:
            issues.append(ImportIssue(item.line, item.content_field, f"same content as line {earlier.line}"))
            continue
        mine = (
            Ownership.objects.filter(contributor_id__in=owner_ids, work__sha256=item.sha256)
            .exclude(work__status=Work.Status.REMOVED)
            .select_related("work")
            .first()
        )
        if mine is not None:
            issues.append(
                ImportIssue(
                    item.line, item.content_field,
                    f"already registered as “{mine.work.title}” (work #{mine.work_id}) by {mine.contributor}",
                )
            )
            continue
        existing = (
            Work.objects.filter(sha256=item.sha256).exclude(status=Work.Status.REMOVED).order_by("created_at", "id")
        ).first()
        item.dispute_with = existing.pk if existing is not None else None
        if existing is None and earlier is not None:
            item.dispute_with_line = earlier.line
        first_line_of.setdefault(item.sha256, item)


# --- the import -----------------------------------------------------------------------------------------


def catalog_import(
    *, data: bytes, fmt: str, base_dir: Path, actor: Any, dry_run: bool, source_name: str = ""
) -> ImportReport:
    """Check every line; unless ``dry_run`` and if no line has a problem, import them all atomically."""
    report = ImportReport(format=fmt, source_name=source_name, dry_run=dry_run)
    if fmt not in FORMATS:
        report.issues.append(ImportIssue(0, "format", f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}"))
        return report
    records = _records(data, fmt, report.issues)
    report.records = len(records)
    known: dict[str, Contributor | None] = {}
    for line, record in records:
        result = _check_record(line, record, base_dir, report.issues, known)
        if result is not None:
            report.planned.append(result[0])
    if not report.issues:
        _check_duplicates(report.planned, report.issues)
    if not records and not report.issues:
        report.issues.append(ImportIssue(1, "file", "no records to import"))
    report.issues.sort(key=lambda issue: (issue.line, issue.field))
    if dry_run or report.issues:
        return report

    label = source_name or "import"
    current = 0
    try:
        with stored_files_guard(), transaction.atomic():
            for item in report.planned:
                current = item.line
                content = _read_content(text=item.text, path=item.path, fld=item.content_field)
                if hashlib.sha256(content.data).hexdigest() != item.sha256:
                    raise ValidationError({item.content_field: "the file changed while the import was running"})
                registration = work_create(
                    created_by=next(iter(item.owners)), title=item.title, description=item.description,
                    content=content, owners=item.owners, opt_out=item.opt_out, actor=actor,
                    reason=f"imported from {label} line {item.line}",
                )
                report.created.append(registration.work.pk)
                if registration.dispute is not None:
                    report.disputes.append(registration.dispute.pk)
            audit_record(
                action="catalog.import", object_type="contributors.import",
                object_id=hashlib.sha256(data).hexdigest()[:16], actor=actor,
                after={"source": label, "format": fmt, "works": report.created, "disputes": report.disputes},
            )
    except ValidationError as exc:
        # Something changed between the check and the import (a concurrent upload): nothing was kept.
        report.created, report.disputes = [], []
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"line": exc.messages}
        for fld, messages in errors.items():
            report.issues.extend(ImportIssue(current, fld, m) for m in messages)
    return report
