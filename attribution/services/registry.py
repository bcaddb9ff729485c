"""The model registry: AI models, their versions, and each version's training manifest.

A manifest lists the works a version was trained on, one per line, by work id or SHA-256 (CSV with a
``work_id`` and/or ``sha256`` column, or JSON Lines with those keys). Import is all-or-nothing: unknown,
ambiguous, duplicated or opted-out works are reported by line and nothing is written.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Q

from attribution.models import AIModel, ManifestEntry, ModelVersion
from attribution.services.errors import InvalidInput, ItemError
from attribution.services.ingest_validation import MAX_ID
from audit.services import audit_record
from contributors.models import OptOut, Work

ADAPTER_RE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")
LABEL_RE = re.compile(r"[^@\s/]{1,100}")
SHA256_RE = re.compile(r"[0-9a-f]{64}")
# SQLite allows 32,766 bound parameters per statement; stay well below on every backend.
QUERY_CHUNK = 5_000


@dataclass(frozen=True, slots=True)
class ManifestLine:
    line: int
    work_id: int | None
    sha256: str | None


@dataclass
class ManifestReport:
    """What an import did (or, in a dry run, would do)."""

    format: str
    manifest_sha256: str
    lines: int = 0
    added: int = 0
    already_present: int = 0
    errors: list[ItemError] = field(default_factory=list)
    dry_run: bool = False

    def as_dict(self) -> dict:
        return {
            "format": self.format, "manifest_sha256": self.manifest_sha256, "lines": self.lines,
            "added": self.added, "already_present": self.already_present, "dry_run": self.dry_run,
            "valid": not self.errors, "errors": [e.as_dict() for e in self.errors],
        }


# --- parsing ---------------------------------------------------------------------------------------------


def _manifest_format(*, filename: str, text: str) -> str:
    lowered = filename.lower()
    if lowered.endswith(".csv"):
        return "csv"
    if lowered.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return "jsonl" if first.startswith("{") else "csv"


def _line_values(
    line: int, work_id: Any, sha256: Any, errors: list[ItemError]
) -> ManifestLine | None:
    parsed_id: int | None = None
    parsed_sha: str | None = None
    if work_id not in (None, ""):
        if isinstance(work_id, bool) or not isinstance(work_id, int | str):
            errors.append(ItemError(None, "work_id", "must be a positive integer", line=line))
            return None
        text = str(work_id).strip()
        if not text.isdigit() or not 0 < int(text) <= MAX_ID:
            errors.append(ItemError(None, "work_id", f"must be a positive integer (got {text[:40]!r})", line=line))
            return None
        parsed_id = int(text)
    if sha256 not in (None, ""):
        text = str(sha256).strip().lower() if isinstance(sha256, str) else None
        if text is None or not SHA256_RE.fullmatch(text):
            errors.append(ItemError(None, "sha256", "must be 64 hexadecimal characters", line=line))
            return None
        parsed_sha = text
    if parsed_id is None and parsed_sha is None:
        errors.append(ItemError(None, "work_id", "names no work: give a work_id or a sha256", line=line))
        return None
    return ManifestLine(line=line, work_id=parsed_id, sha256=parsed_sha)


def manifest_parse(*, content: bytes, filename: str = "") -> tuple[str, list[ManifestLine], list[ItemError]]:
    """Parse a manifest file: ``(format, lines, errors)``; a file that cannot be read at all raises."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"The manifest is not UTF-8 text (byte {exc.start}).", code="manifest_unreadable") from exc
    if "\x00" in text:
        raise InvalidInput("The manifest contains NUL bytes: it is not a text file.", code="manifest_unreadable")
    fmt = _manifest_format(filename=filename, text=text)
    lines: list[ManifestLine] = []
    errors: list[ItemError] = []
    if fmt == "csv":
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        columns = [c.strip().lower() for c in header] if header else []
        if "work_id" not in columns and "sha256" not in columns:
            raise InvalidInput(
                "The CSV manifest needs a header row with a work_id column, a sha256 column, or both.",
                errors=[ItemError(None, None, f"header is {header!r}", line=1)], code="manifest_unreadable",
            )
        id_col = columns.index("work_id") if "work_id" in columns else None
        sha_col = columns.index("sha256") if "sha256" in columns else None
        try:
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                work_id = row[id_col] if id_col is not None and id_col < len(row) else None
                sha = row[sha_col] if sha_col is not None and sha_col < len(row) else None
                parsed = _line_values(reader.line_num, work_id, sha, errors)
                if parsed:
                    lines.append(parsed)
        except csv.Error as exc:
            raise InvalidInput(f"The CSV manifest is malformed at line {reader.line_num}: {exc}.",
                               code="manifest_unreadable") from exc
    else:
        for number, raw in enumerate(text.splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except (json.JSONDecodeError, RecursionError) as exc:
                errors.append(ItemError(None, None, f"is not valid JSON ({exc})", line=number))
                continue
            if not isinstance(obj, dict):
                errors.append(ItemError(None, None, "must be a JSON object with work_id and/or sha256", line=number))
                continue
            parsed = _line_values(number, obj.get("work_id"), obj.get("sha256"), errors)
            if parsed:
                lines.append(parsed)
    return fmt, lines, errors


# --- resolving and importing -----------------------------------------------------------------------------


def _chunks(values: list, size: int = QUERY_CHUNK):
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _works_by_id(ids: set[int]) -> dict[int, tuple[str, dt.datetime | None]]:
    found: dict[int, tuple[str, dt.datetime | None]] = {}
    for chunk in _chunks(sorted(ids)):
        for pk, sha, opted_out_at in Work.objects.filter(pk__in=chunk).values_list("pk", "sha256", "opted_out_at"):
            found[pk] = (sha, opted_out_at)
    return found


def _works_by_sha(shas: set[str]) -> dict[str, list[tuple[int, dt.datetime | None]]]:
    found: dict[str, list[tuple[int, dt.datetime | None]]] = {}
    for chunk in _chunks(sorted(shas)):
        rows = Work.objects.filter(sha256__in=chunk).values_list("sha256", "pk", "opted_out_at").order_by("pk")
        for sha, pk, opted_out_at in rows:
            found.setdefault(sha, []).append((pk, opted_out_at))
    return found


def _opted_out_at_creation(work_ids: set[int], *, created_at: dt.datetime) -> dict[int, dt.datetime]:
    """Works with an opt-out in force when the version was created, and since when.

    Opt-outs are withdrawn, never deleted, so the history answers this exactly: a work opted out in
    January and back in by March is still refused for a version created in February.
    """
    found: dict[int, dt.datetime] = {}
    for chunk in _chunks(sorted(work_ids)):
        rows = (
            OptOut.objects.filter(work_id__in=chunk, opted_out_at__lte=created_at)
            .filter(Q(withdrawn_at__isnull=True) | Q(withdrawn_at__gt=created_at))
            .values_list("work_id", "opted_out_at")
        )
        for work_id, opted_out_at in rows:
            found[work_id] = opted_out_at
    return found


def _resolve_lines(
    *, lines: list[ManifestLine], created_at: dt.datetime, errors: list[ItemError]
) -> list[tuple[ManifestLine, int, str]]:
    """``(line, work id, sha256)`` per good line; every bad one becomes an error naming its line."""
    by_id = _works_by_id({ln.work_id for ln in lines if ln.work_id is not None})
    by_sha = _works_by_sha({ln.sha256 for ln in lines if ln.work_id is None and ln.sha256 is not None})
    resolved = []
    first_line: dict[int, int] = {}
    for ln in lines:
        if ln.work_id is not None:
            work = by_id.get(ln.work_id)
            if work is None:
                errors.append(ItemError(None, "work_id", f"unknown work {ln.work_id}", line=ln.line))
                continue
            sha, opted_out_at = work
            if ln.sha256 is not None and ln.sha256 != sha:
                errors.append(ItemError(None, "sha256", f"does not match work {ln.work_id}'s content hash {sha}",
                                        line=ln.line))
                continue
            work_id, field_name = ln.work_id, "work_id"
        else:
            assert ln.sha256 is not None
            matches = by_sha.get(ln.sha256, [])
            if not matches:
                errors.append(ItemError(None, "sha256", f"no registered work has content hash {ln.sha256}",
                                        line=ln.line))
                continue
            if len(matches) > 1:
                ids = ", ".join(str(pk) for pk, _ in matches)
                errors.append(ItemError(None, "sha256", f"matches {len(matches)} works ({ids}); name one by work_id",
                                        line=ln.line))
                continue
            (work_id, opted_out_at), sha, field_name = matches[0], ln.sha256, "sha256"
        seen = first_line.setdefault(work_id, ln.line)
        if seen != ln.line:
            errors.append(ItemError(None, field_name, f"work {work_id} is already listed on line {seen}", line=ln.line))
            continue
        resolved.append((ln, work_id, sha, field_name, opted_out_at))
    in_force = _opted_out_at_creation({work_id for _, work_id, *_ in resolved}, created_at=created_at)
    accepted = []
    for ln, work_id, sha, field_name, opted_out_at in resolved:
        # The mirror on Work covers opt-outs recorded without history rows; the history covers withdrawn ones.
        since = in_force.get(work_id) or (opted_out_at if opted_out_at and opted_out_at <= created_at else None)
        if since is not None:
            errors.append(ItemError(
                None, field_name,
                f"work {work_id} was opted out of training on {since:%Y-%m-%d %H:%M} UTC, before this model "
                f"version was created", line=ln.line,
            ))
            continue
        accepted.append((ln, work_id, sha))
    return accepted


def manifest_import(
    *,
    model_version: ModelVersion,
    content: bytes,
    filename: str = "",
    dry_run: bool = False,
    actor: Any = None,
    actor_label: str = "",
) -> ManifestReport:
    """Add a manifest's works to a version, all-or-nothing. With errors (or dry_run) nothing is written.

    Raises InvalidInput (carrying the report's line errors) unless ``dry_run``; a dry run returns the report.
    Works already in the version's manifest count as ``already_present``, so re-uploading is harmless.
    """
    fmt, lines, errors = manifest_parse(content=content, filename=filename)
    # Each line that failed to parse produced exactly one error, so parsed + failed = every data line.
    report = ManifestReport(
        format=fmt, manifest_sha256=hashlib.sha256(content).hexdigest(), lines=len(lines) + len(errors),
        dry_run=dry_run,
    )
    resolved = _resolve_lines(lines=lines, created_at=model_version.created_at, errors=errors)
    errors.sort(key=lambda e: e.line or 0)
    report.errors = errors
    present: set[int] = set()
    if model_version.pk:
        for chunk in _chunks([work_id for _, work_id, _ in resolved]):
            present.update(
                ManifestEntry.objects.filter(model_version=model_version, work_id__in=chunk).values_list(
                    "work_id", flat=True)
            )
    new = [(work_id, sha) for _, work_id, sha in resolved if work_id not in present]
    report.already_present = len(resolved) - len(new)
    report.added = len(new)
    if errors and not dry_run:
        raise InvalidInput(
            f"The manifest has {len(errors)} problem line(s); nothing was imported.", errors=errors,
            code="manifest_invalid",
        )
    if dry_run:
        return report
    with transaction.atomic():
        ManifestEntry.objects.bulk_create(
            [ManifestEntry(model_version=model_version, work_id=work_id, sha256=sha) for work_id, sha in new],
            batch_size=2_000,
        )
        audit_record(
            action="manifest.import", obj=model_version, actor=actor, actor_label=actor_label,
            after={"filename": filename, "format": fmt, "manifest_sha256": report.manifest_sha256,
                   "added": report.added, "already_present": report.already_present},
        )
    return report


@transaction.atomic
def ai_model_create(
    *, name: str, modality: str, owner_team: str = "", actor: Any = None, actor_label: str = ""
) -> AIModel:
    """Register a generative model (the thing services run); versions hang off it."""
    errors = []
    if not name or not re.fullmatch(r"[^@\s]{1,100}", name):
        errors.append(ItemError(None, "name", "must be 1 to 100 characters without '@' or whitespace"))
    elif AIModel.objects.filter(name=name).exists():
        errors.append(ItemError(None, "name", f"a model named {name!r} already exists"))
    if modality not in AIModel.Modality.values:
        errors.append(ItemError(None, "modality", f"must be one of {', '.join(AIModel.Modality.values)}"))
    if errors:
        raise InvalidInput("The model cannot be registered.", errors=errors)
    ai_model = AIModel.objects.create(name=name, modality=modality, owner_team=owner_team[:200])
    audit_record(action="ai_model.create", obj=ai_model, actor=actor, actor_label=actor_label,
                 after={"name": name, "modality": modality, "owner_team": ai_model.owner_team})
    return ai_model


class _DryRunRollback(Exception):
    pass


def model_version_register(
    *,
    ai_model: AIModel,
    label: str,
    adapter: str = "",
    checkpoint_uri: str = "",
    config: Any = None,
    manifest: bytes | None = None,
    manifest_filename: str = "",
    dry_run: bool = False,
    actor: Any = None,
    actor_label: str = "",
) -> tuple[ModelVersion | None, ManifestReport | None]:
    """Create a model version and import its training manifest in one transaction.

    A manifest with problems leaves nothing behind (no version either). ``dry_run`` checks everything as if
    the version were created now, then rolls back: it returns ``(None, report)``.
    """
    config = {} if config is None else config
    errors = []
    if not LABEL_RE.fullmatch(label or ""):
        errors.append(ItemError(None, "label", "must be 1 to 100 characters without '@', '/' or whitespace"))
    elif ModelVersion.objects.filter(ai_model=ai_model, label=label).exists():
        errors.append(ItemError(None, "label", f"{ai_model.name} already has a version labelled {label!r}"))
    if adapter and not ADAPTER_RE.fullmatch(adapter):
        errors.append(ItemError(None, "adapter", "must be a dotted Python path, e.g. attribution.adapters.x.Adapter"))
    if len(adapter) > 300:
        errors.append(ItemError(None, "adapter", "must be at most 300 characters"))
    if len(checkpoint_uri) > 500:
        errors.append(ItemError(None, "checkpoint_uri", "must be at most 500 characters"))
    if not isinstance(config, dict):
        errors.append(ItemError(None, "config", "must be a JSON object"))
    if errors:
        raise InvalidInput("The model version cannot be registered.", errors=errors)
    outcome: list[tuple[ModelVersion, ManifestReport | None]] = []
    try:
        with transaction.atomic():
            version = ModelVersion.objects.create(
                ai_model=ai_model, label=label, adapter=adapter, checkpoint_uri=checkpoint_uri, config=config
            )
            audit_record(
                action="model_version.create", obj=version, actor=actor, actor_label=actor_label,
                after={"model": ai_model.name, "label": label, "adapter": adapter, "checkpoint_uri": checkpoint_uri,
                       "config": config},
            )
            report = None
            if manifest is not None:
                report = manifest_import(
                    model_version=version, content=manifest, filename=manifest_filename, dry_run=dry_run,
                    actor=actor, actor_label=actor_label,
                )
            outcome.append((version, report))
            if dry_run:
                raise _DryRunRollback
    except _DryRunRollback:
        return None, outcome[0][1]
    return outcome[0]



@transaction.atomic
def ai_model_update(*, ai_model: AIModel, modality: str, owner_team: str, actor: Any = None) -> AIModel:
    """Change a model's modality or owner team (its name is fixed: services address versions by it)."""
    if modality not in AIModel.Modality.values:
        raise InvalidInput("The model cannot be changed.", errors=[
            ItemError(None, "modality", f"must be one of {', '.join(AIModel.Modality.values)}")])
    before = {"modality": ai_model.modality, "owner_team": ai_model.owner_team}
    ai_model.modality, ai_model.owner_team = modality, owner_team[:200]
    ai_model.save(update_fields=["modality", "owner_team"])
    audit_record(action="ai_model.update", obj=ai_model, actor=actor, before=before,
                 after={"modality": modality, "owner_team": ai_model.owner_team})
    return ai_model


@transaction.atomic
def model_version_update(
    *, model_version: ModelVersion, adapter: str, checkpoint_uri: str, config: Any, actor: Any = None
) -> ModelVersion:
    """Correct where a version's checkpoint lives, which adapter loads it, or its config (label and manifest stay)."""
    errors = []
    if adapter and (len(adapter) > 300 or not ADAPTER_RE.fullmatch(adapter)):
        errors.append(ItemError(None, "adapter", "must be a dotted Python path of at most 300 characters"))
    if len(checkpoint_uri) > 500:
        errors.append(ItemError(None, "checkpoint_uri", "must be at most 500 characters"))
    if not isinstance(config, dict):
        errors.append(ItemError(None, "config", "must be a JSON object"))
    if errors:
        raise InvalidInput("The model version cannot be changed.", errors=errors)
    fields = ["adapter", "checkpoint_uri", "config"]
    before = {name: getattr(model_version, name) for name in fields}
    model_version.adapter, model_version.checkpoint_uri, model_version.config = adapter, checkpoint_uri, config
    model_version.save(update_fields=fields)
    audit_record(action="model_version.update", obj=model_version, actor=actor, before=before,
                 after={name: getattr(model_version, name) for name in fields})
    return model_version
