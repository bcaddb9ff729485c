"""Who owns a work: the owner set is replaced as a whole, and always sums to exactly 10,000 basis points."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from audit.services import audit_record
from contributors.models import BPS_TOTAL, Contributor, Ownership, Work


def ownership_validate(*, shares: Mapping[Contributor, int], field: str = "owners") -> None:
    """Refuse an owner set that is empty, has a share outside 1..10,000, or does not sum to 10,000."""
    if not shares:
        raise ValidationError({field: "A work needs at least one owner."}, code="no_owners")
    for contributor, bps in shares.items():
        if contributor is None or contributor.pk is None:
            raise ValidationError({field: "Every owner must be an existing contributor."}, code="unknown_owner")
        if isinstance(bps, bool) or not isinstance(bps, int):
            raise ValidationError(
                {field: f"The share of {contributor} must be a whole number of basis points, got {bps!r}."},
                code="bps_type",
            )
        if not 1 <= bps <= BPS_TOTAL:
            raise ValidationError(
                {field: f"The share of {contributor} is {bps} basis points; each share must be 1 to {BPS_TOTAL:,}."},
                code="bps_range",
            )
    total = sum(shares.values())
    if total != BPS_TOTAL:
        raise ValidationError(
            {field: f"The shares sum to {total:,} basis points; they must sum to exactly {BPS_TOTAL:,}."},
            code="bps_sum",
        )


def ownership_snapshot(*, work: Work) -> list[dict[str, Any]]:
    """The current owner set as audit-ready data, largest share first."""
    return [
        {"contributor": o.contributor_id, "name": o.contributor.display_name, "bps": o.bps}
        for o in Ownership.objects.filter(work=work).select_related("contributor").order_by("-bps", "contributor_id")
    ]


def ownership_shares(*, work: Work) -> dict[Contributor, int]:
    return {o.contributor: o.bps for o in Ownership.objects.filter(work=work).select_related("contributor")}


@transaction.atomic
def ownership_set(
    *, work: Work, shares: Mapping[Contributor, int], actor: Any, reason: str = "", field: str = "owners"
) -> list[Ownership]:
    """Replace a work's owner set atomically; refuses (writing nothing) any set not summing to 10,000 bp."""
    ownership_validate(shares=shares, field=field)
    # Serialise concurrent changes of the same work's owners (PostgreSQL row lock; SQLite locks the file).
    Work.objects.select_for_update().filter(pk=work.pk).first()
    before = ownership_snapshot(work=work)
    wanted = {contributor.pk: bps for contributor, bps in shares.items()}
    current = {o.contributor_id: o for o in Ownership.objects.filter(work=work)}
    Ownership.objects.filter(work=work).exclude(contributor_id__in=wanted).delete()
    for contributor_id, bps in wanted.items():
        row = current.get(contributor_id)
        if row is None:
            Ownership.objects.create(work=work, contributor_id=contributor_id, bps=bps)
        elif row.bps != bps:
            row.bps = bps
            row.save(update_fields=["bps"])
    after = ownership_snapshot(work=work)
    if before != after:
        audit_record(
            action="ownership.set", obj=work, actor=actor, before={"owners": before}, after={"owners": after},
            reason=reason,
        )
    return list(Ownership.objects.filter(work=work).select_related("contributor"))


def bps_scale(*, shares: Mapping[Contributor, int], total: int) -> dict[Contributor, int]:
    """Scale shares to sum to ``total`` by largest remainder; ties go to the lower contributor id.

    Used when a dispute is split: the original owners keep their proportions within what is left.
    """
    base = sum(shares.values())
    if base <= 0:
        raise ValueError("cannot scale an empty owner set")
    floors: dict[Contributor, int] = {}
    remainders: list[tuple[int, int, Contributor]] = []
    for contributor, bps in shares.items():
        quotient, remainder = divmod(bps * total, base)
        floors[contributor] = quotient
        remainders.append((-remainder, contributor.pk, contributor))
    left = total - sum(floors.values())
    for _, _, contributor in sorted(remainders, key=lambda r: (r[0], r[1]))[:left]:
        floors[contributor] += 1
    return floors
