"""Registering and changing works. The kind comes from the content; duplicate content opens a dispute."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.db.models import Q
from django.utils.text import get_valid_filename

from audit.services import audit_record, audit_snapshot
from contributors.models import BPS_TOTAL, Contributor, Dispute, Ownership, Work
from contributors.services.content import CheckedContent, Content, content_check, stored_file_note, stored_files_guard
from contributors.services.ownership import ownership_set, ownership_validate

_SNAPSHOT_FIELDS = [
    "kind", "title", "description", "file", "size_bytes", "mime_type", "sha256", "status", "opted_out_at",
    "created_by_id",
]


@dataclass(frozen=True)
class WorkRegistration:
    work: Work
    dispute: Dispute | None  # opened when another owner had already registered the same content


def _content_lock(sha256: str) -> None:
    """Serialise registrations of the same content, so two simultaneous claims cannot both go unnoticed.

    PostgreSQL: a transaction-scoped advisory lock keyed on the hash. SQLite: transactions are IMMEDIATE
    (see settings), so writers are already serialised.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [int(sha256[:15], 16)])


def _live_registrations(*, sha256: str, exclude: Work | None = None):
    qs = Work.objects.filter(sha256=sha256).exclude(status=Work.Status.REMOVED).order_by("created_at", "id")
    if exclude is not None:
        qs = qs.exclude(pk=exclude.pk)
    return qs


def _refuse_own_duplicate(*, checked: CheckedContent, owner_ids: set[int], exclude: Work | None = None) -> None:
    mine = (
        _live_registrations(sha256=checked.sha256, exclude=exclude)
        .filter(ownerships__contributor_id__in=owner_ids)
        .first()
    )
    if mine is not None:
        raise ValidationError(
            {checked.content.field: f"This content is already registered as “{mine.title}” (work #{mine.pk})."},
            code="duplicate",
        )


def _store_file(*, work: Work, checked: CheckedContent) -> None:
    if not checked.content.file_name:
        return
    base = get_valid_filename(PurePath(checked.content.file_name).name) or "upload"
    # The hash prefix keeps names unique per content without trusting the uploaded name.
    work.file.save(f"{checked.sha256[:12]}-{base[-100:]}", ContentFile(checked.content.data), save=False)
    stored_file_note(work.file.name)


def _apply_content(*, work: Work, checked: CheckedContent) -> None:
    work.kind = checked.sniffed.kind
    work.mime_type = checked.sniffed.mime_type
    work.sha256 = checked.sha256
    work.size_bytes = checked.size_bytes
    # Text and code keep their decoded text beside the file: the attribution engine reads text, not files.
    work.text_body = checked.sniffed.text or ""
    if checked.content.file_name:
        _store_file(work=work, checked=checked)
    else:
        work.file = None


def _clean_title(title: str) -> str:
    title = (title or "").strip()
    if not title:
        raise ValidationError({"title": "Give the work a title."}, code="required")
    max_length = Work._meta.get_field("title").max_length
    if len(title) > max_length:
        raise ValidationError({"title": f"Use at most {max_length} characters (got {len(title)})."}, code="max_length")
    return title


def work_create(
    *,
    created_by: Contributor,
    title: str,
    content: Content,
    actor: Any,
    description: str = "",
    owners: Mapping[Contributor, int] | None = None,
    opt_out: bool = False,
    reason: str = "",
) -> WorkRegistration:
    """Register a work owned by ``owners`` (default: its creator alone); all or nothing, files included."""
    from contributors.services.disputes import dispute_open
    from contributors.services.opt_outs import work_opt_out

    title = _clean_title(title)
    checked = content_check(content=content)
    owners = dict(owners) if owners else {created_by: BPS_TOTAL}
    ownership_validate(shares=owners)
    with stored_files_guard(), transaction.atomic():
        _content_lock(checked.sha256)
        _refuse_own_duplicate(checked=checked, owner_ids={c.pk for c in owners})
        original = _live_registrations(sha256=checked.sha256).first()
        work = Work(title=title, description=(description or "").strip(), created_by=created_by)
        _apply_content(work=work, checked=checked)
        work.save()
        ownership_set(work=work, shares=owners, actor=actor, reason=reason or "registered")
        audit_record(
            action="work.create", obj=work, actor=actor, after=audit_snapshot(work, fields=_SNAPSHOT_FIELDS),
            reason=reason,
        )
        dispute = None
        if original is not None:
            dispute = dispute_open(work=original, claim_work=work, claimant=created_by, actor=actor)
            work.refresh_from_db()
        if opt_out:
            work_opt_out(work=work, actor=actor, requested_by=created_by, reason=reason or "opted out at registration")
            work.refresh_from_db()
    return WorkRegistration(work=work, dispute=dispute)


def work_update(
    *,
    work: Work,
    actor: Any,
    title: str | None = None,
    description: str | None = None,
    content: Content | None = None,
) -> WorkRegistration:
    """Change a work's title, description or content; new content is checked like a new upload.

    Replaced files stay in storage: the audit trail names them, and history is never deleted.
    """
    from contributors.services.disputes import dispute_open

    checked = content_check(content=content) if content is not None else None
    with stored_files_guard(), transaction.atomic():
        work = Work.objects.select_for_update().get(pk=work.pk)
        if work.status == Work.Status.REMOVED:
            raise ValidationError("A removed work cannot be edited.", code="removed")
        before = audit_snapshot(work, fields=_SNAPSHOT_FIELDS)
        if title is not None:
            work.title = _clean_title(title)
        if description is not None:
            work.description = description.strip()
        original = None
        if checked is not None and checked.sha256 != work.sha256:
            if work.status == Work.Status.DISPUTED:
                raise ValidationError(
                    {checked.content.field: "The content of a disputed work cannot be replaced until a catalog "
                     "admin resolves the dispute."},
                    code="disputed",
                )
            _content_lock(checked.sha256)
            owner_ids = set(Ownership.objects.filter(work=work).values_list("contributor_id", flat=True))
            _refuse_own_duplicate(checked=checked, owner_ids=owner_ids, exclude=work)
            original = _live_registrations(sha256=checked.sha256, exclude=work).first()
            _apply_content(work=work, checked=checked)
        after = audit_snapshot(work, fields=_SNAPSHOT_FIELDS)
        dispute = None
        if before != after:
            work.save()
            audit_record(action="work.update", obj=work, actor=actor, before=before, after=after)
            if original is not None:
                dispute = dispute_open(
                    work=original, claim_work=work, claimant=work.created_by or _first_owner(work), actor=actor
                )
                work.refresh_from_db()
    return WorkRegistration(work=work, dispute=dispute)


def _first_owner(work: Work) -> Contributor:
    first = Ownership.objects.filter(work=work).select_related("contributor").order_by("-bps", "contributor_id")[0]
    return first.contributor


def work_status_change(*, work: Work, status: str, actor: Any, reason: str = "") -> Work:
    """Set a work's status and record it (no checks: disputes and the admin's actions decide)."""
    before = work.status
    if before == status:
        return work
    work.status = status
    work.save(update_fields=["status", "updated_at"])
    audit_record(
        action="work.status", obj=work, actor=actor, before={"status": before}, after={"status": status}, reason=reason
    )
    return work


@transaction.atomic
def work_remove(*, work: Work, actor: Any, reason: str = "") -> Work:
    """Take a work out of the catalog (status removed); its rows, files and history all stay."""
    work = Work.objects.select_for_update().get(pk=work.pk)
    if _has_open_dispute(work):
        raise ValidationError(
            {"status": f"Work #{work.pk} has an open dispute; resolve the dispute instead of removing the work."},
            code="disputed",
        )
    return work_status_change(work=work, status=Work.Status.REMOVED, actor=actor, reason=reason)


@transaction.atomic
def work_restore(*, work: Work, actor: Any, reason: str = "") -> Work:
    """Bring a removed work back, unless the same content is registered again meanwhile."""
    work = Work.objects.select_for_update().get(pk=work.pk)
    if work.status != Work.Status.REMOVED:
        raise ValidationError({"status": f"Work #{work.pk} is not removed."}, code="not_removed")
    _content_lock(work.sha256)
    other = _live_registrations(sha256=work.sha256, exclude=work).first()
    if other is not None:
        raise ValidationError(
            {"status": f"Work #{work.pk} cannot come back: its content is registered as work #{other.pk}."},
            code="duplicate",
        )
    return work_status_change(work=work, status=Work.Status.ACTIVE, actor=actor, reason=reason)


def _has_open_dispute(work: Work) -> bool:
    return Dispute.objects.filter(Q(work=work) | Q(claim_work=work), status=Dispute.Status.OPEN).exists()
