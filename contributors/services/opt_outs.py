"""Opting works out of future training. Every opt-out is a row that is withdrawn, never deleted."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from contributors.models import Contributor, OptOut, Work


@transaction.atomic
def work_opt_out(*, work: Work, actor: Any, requested_by: Contributor | None, reason: str = "") -> OptOut:
    """Opt a work out of future training now (any owner may; ``requested_by`` None = a catalog admin)."""
    work = Work.objects.select_for_update().get(pk=work.pk)
    if work.opted_out_at is not None:
        raise ValidationError(
            {"opted_out_at": f"This work has been opted out since {work.opted_out_at:%Y-%m-%d %H:%M} UTC."},
            code="already_opted_out",
        )
    now = timezone.now()
    opt_out = OptOut.objects.create(work=work, requested_by=requested_by, opted_out_at=now, reason=reason.strip())
    work.opted_out_at = now
    work.save(update_fields=["opted_out_at", "updated_at"])
    audit_record(
        action="work.opt_out", obj=work, actor=actor, before={"opted_out_at": None},
        after={"opted_out_at": now, "opt_out": opt_out.pk, "requested_by": requested_by.pk if requested_by else None},
        reason=reason,
    )
    return opt_out


@transaction.atomic
def work_opt_out_withdraw(*, work: Work, actor: Any, requested_by: Contributor | None, reason: str = "") -> OptOut:
    """Withdraw the opt-out in force: only the owner who asked for it, or a catalog admin (``requested_by`` None).

    The opt-out row stays with its withdrawal time: models trained while it was in force left the work out,
    and model teams replaying the export must see both events.
    """
    work = Work.objects.select_for_update().get(pk=work.pk)
    opt_out = OptOut.objects.select_for_update().filter(work=work, withdrawn_at__isnull=True).first()
    if opt_out is None:
        raise ValidationError({"opted_out_at": "This work is not opted out."}, code="not_opted_out")
    if requested_by is not None and opt_out.requested_by_id != requested_by.pk:
        who = opt_out.requested_by or "A catalog admin"
        raise ValidationError(
            {"opted_out_at": f"{who} opted this work out; only they or a catalog admin can withdraw it."},
            code="not_yours",
        )
    now = timezone.now()
    opt_out.withdrawn_at = now
    opt_out.withdrawn_by = actor if getattr(actor, "is_authenticated", False) else None
    opt_out.save(update_fields=["withdrawn_at", "withdrawn_by"])
    before = work.opted_out_at
    work.opted_out_at = None
    work.save(update_fields=["opted_out_at", "updated_at"])
    audit_record(
        action="work.opt_out_withdraw", obj=work, actor=actor, before={"opted_out_at": before, "opt_out": opt_out.pk},
        after={"opted_out_at": None, "withdrawn_at": now}, reason=reason,
    )
    return opt_out
