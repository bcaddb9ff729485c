"""Disputes: the same content registered by different owners, decided by a catalog admin.

Opening flags both works ``disputed``. Resolving keeps the earlier registration (``dispute.work``, the
record training manifests refer to) and retires the later one (``claim_work`` -> removed; never deleted):

- upheld:   the claim's owners become the work's owners (10,000 bp between them, as on the claim);
- split:    the claim's owners get ``claimant_bps`` of the work, the original owners keep the rest, each
            side in its existing proportions (largest remainder, so it sums to exactly 10,000);
- rejected: the original owners keep the work unchanged.

After upheld or split, an opt-out in force on the claim is carried over to the work (a new owner's
objection to training counts). The work returns to ``active`` once none of its disputes is open.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.services import audit_record
from contributors.models import BPS_TOTAL, Contributor, Dispute, Work
from contributors.services.opt_outs import work_opt_out
from contributors.services.ownership import bps_scale, ownership_set, ownership_shares, ownership_snapshot
from contributors.services.works import work_status_change

OUTCOMES = (Dispute.Status.UPHELD, Dispute.Status.SPLIT, Dispute.Status.REJECTED)


@transaction.atomic
def dispute_open(*, work: Work, claim_work: Work, claimant: Contributor, actor: Any) -> Dispute:
    """Open a dispute between an earlier registration and a later claim of the same content."""
    if work.pk == claim_work.pk or work.sha256 != claim_work.sha256:
        raise ValidationError("A dispute needs two different works with the same content.", code="invalid")
    dispute, created = Dispute.objects.get_or_create(
        work=work, claim_work=claim_work, defaults={"claimant": claimant, "sha256": work.sha256}
    )
    if not created:
        return dispute
    # Both owners see this reason in their work's history: it names no one.
    reason = f"dispute #{dispute.pk}: the same content (sha256 {work.sha256[:12]}…) was registered twice"
    for involved in (work, claim_work):
        work_status_change(work=involved, status=Work.Status.DISPUTED, actor=actor, reason=reason)
    audit_record(
        action="dispute.open", obj=dispute, actor=actor,
        after={"status": dispute.status, "work": work.pk, "claim_work": claim_work.pk, "claimant": claimant.pk,
               "sha256": work.sha256},
    )
    return dispute


def _resolved_owners(*, dispute: Dispute, outcome: str, claimant_bps: int | None) -> dict[Contributor, int] | None:
    """The work's owner set after the outcome (None: unchanged)."""
    if outcome == Dispute.Status.REJECTED:
        return None
    claim_owners = ownership_shares(work=dispute.claim_work)
    if outcome == Dispute.Status.UPHELD:
        return claim_owners
    assert claimant_bps is not None
    original = bps_scale(shares=ownership_shares(work=dispute.work), total=BPS_TOTAL - claimant_bps)
    claimed = bps_scale(shares=claim_owners, total=claimant_bps)
    squeezed = [str(c) for c, bps in (original | claimed).items() if bps == 0]
    if squeezed:
        raise ValidationError(
            {"claimant_bps": f"With this split {', '.join(sorted(squeezed))} would be left with 0 basis points; "
             "choose a share that leaves every owner at least 1."},
            code="split_zero",
        )
    merged: dict[Contributor, int] = {}
    for contributor, bps in [*original.items(), *claimed.items()]:
        merged[contributor] = merged.get(contributor, 0) + bps
    return merged


@transaction.atomic
def dispute_resolve(
    *, dispute: Dispute, outcome: str, actor: Any, note: str, claimant_bps: int | None = None
) -> Dispute:
    """Decide an open dispute (upheld, split or rejected); ownership, statuses and the audit trail follow."""
    dispute = Dispute.objects.select_for_update().select_related("work", "claim_work", "claimant").get(pk=dispute.pk)
    if not dispute.is_open:
        raise ValidationError(
            {"status": f"Dispute #{dispute.pk} was already resolved ({dispute.get_status_display()})."},
            code="closed",
        )
    if outcome not in OUTCOMES:
        raise ValidationError({"outcome": f"Choose one of: {', '.join(OUTCOMES)}."}, code="outcome")
    note = (note or "").strip()
    if not note:
        raise ValidationError({"resolution_note": "Say why: the note is kept with the decision."}, code="required")
    if outcome == Dispute.Status.SPLIT:
        if isinstance(claimant_bps, bool) or not isinstance(claimant_bps, int) or not 0 < claimant_bps < BPS_TOTAL:
            raise ValidationError(
                {"claimant_bps": f"A split gives the claim 1 to {BPS_TOTAL - 1:,} basis points; got {claimant_bps!r}."},
                code="bps_range",
            )
    else:
        claimant_bps = None

    work, claim_work = dispute.work, dispute.claim_work
    before = {
        "status": dispute.status, "work_owners": ownership_snapshot(work=work),
        "work_status": work.status, "claim_work_status": claim_work.status,
    }
    reason = f"dispute #{dispute.pk} {outcome}: {note}"
    new_owners = _resolved_owners(dispute=dispute, outcome=outcome, claimant_bps=claimant_bps)
    if new_owners is not None:
        ownership_set(work=work, shares=new_owners, actor=actor, reason=reason, field="claimant_bps")
        if claim_work.opted_out_at is not None and work.opted_out_at is None:
            carried = claim_work.opt_outs.filter(withdrawn_at__isnull=True).first()
            work_opt_out(
                work=work, actor=actor, requested_by=carried.requested_by if carried else None,
                reason=f"carried over from work #{claim_work.pk} when dispute #{dispute.pk} was {outcome}",
            )
            work.refresh_from_db()

    dispute.status = outcome
    dispute.claimant_bps = claimant_bps
    dispute.resolution_note = note
    dispute.resolved_by = actor if getattr(actor, "is_authenticated", False) else None
    dispute.resolved_at = timezone.now()
    dispute.save()

    work_status_change(work=claim_work, status=Work.Status.REMOVED, actor=actor, reason=reason)
    still_open = Dispute.objects.filter(Q(work=work) | Q(claim_work=work), status=Dispute.Status.OPEN).exists()
    if work.status == Work.Status.DISPUTED and not still_open:
        work_status_change(work=work, status=Work.Status.ACTIVE, actor=actor, reason=reason)

    work.refresh_from_db()
    claim_work.refresh_from_db()
    audit_record(
        action="dispute.resolve", obj=dispute, actor=actor, reason=note, before=before,
        after={
            "status": dispute.status, "claimant_bps": claimant_bps, "work_owners": ownership_snapshot(work=work),
            "work_status": work.status, "claim_work_status": claim_work.status,
        },
    )
    return dispute
