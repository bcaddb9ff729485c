"""The demo catalog: every work registered through the catalog services, as a contributor would register it.

A work is identified by its content hash and its uploader, so a second run finds each one and registers
nothing. Co-owned works are registered with their owner set, the opted-out work is opted out through the
opt-out service, and Grace's upload of Ada's essay opens a dispute because the catalog refuses to merge it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import Q

from contributors.models import Contributor, Dispute, Work
from demo.corpus import DEMO_DOMAIN, FULL, CorpusSize, DemoWork, demo_works

ACTOR = "command:demo"
Say = Callable[[str], None]


@dataclass(frozen=True)
class CatalogResult:
    works: list[tuple[DemoWork, Work]]
    created: int
    disputes_opened: int


def _registered(*, spec: DemoWork, uploader: Contributor) -> Work | None:
    """The work this spec already became: same content, registered by (or owned by) the uploader.

    A removed work counts too: a dispute resolved in the served demo retires the claim copy, and the next run
    must not upload it again.
    """
    return (
        Work.objects.filter(sha256=spec.sha256)
        .filter(Q(created_by=uploader) | Q(ownerships__contributor=uploader))
        .order_by("id")
        .first()
    )


def demo_catalog_ensure(*, size: CorpusSize = FULL, say: Say) -> CatalogResult:
    """Register every demo work that is not registered yet (with owners, opt-out, dispute)."""
    from contributors.services import Content, work_create, work_opt_out

    contributors = {c.user.email: c for c in Contributor.objects.select_related("user")}
    works: list[tuple[DemoWork, Work]] = []
    created = disputes = 0
    specs = list(demo_works(size))
    for number, spec in enumerate(specs, start=1):
        uploader = contributors[spec.owner]
        work = _registered(spec=spec, uploader=uploader)
        if work is None:
            owners = {contributors[email]: bps for email, bps in spec.shares} if spec.shares else None
            registration = work_create(
                created_by=uploader, title=spec.title, description=spec.description, owners=owners, actor=ACTOR,
                content=Content(data=spec.data, field="file", file_name=spec.file_name),
                reason="demo catalog",
            )
            work = registration.work
            created += 1
            if registration.dispute is not None:
                disputes += 1
                say(f"  {spec.owner} uploaded a copy of work #{registration.dispute.work_id}: dispute "
                    f"#{registration.dispute.pk} opened")
        if spec.opt_out_reason and work.opted_out_at is None and not work.opt_outs.exists():
            work_opt_out(work=work, actor=ACTOR, requested_by=uploader, reason=spec.opt_out_reason)
            work.refresh_from_db()
            say(f"  {spec.owner} opted “{work.title}” out of training")
        works.append((spec, work))
        if number % 50 == 0 or number == len(specs):
            say(f"  catalog: {number}/{len(specs)} works checked, {created} registered now")
    return CatalogResult(works=works, created=created, disputes_opened=disputes)


def demo_training_works(*, kinds: tuple[str, ...]) -> list[Work]:
    """The works a demo model trains on: of these kinds, live, not opted out, not a disputed claim copy.

    A claim copy duplicates a registered work (same bytes): training on both would count that content twice.
    """
    claims = Dispute.objects.values("claim_work_id")
    return list(
        Work.objects.filter(kind__in=kinds, opted_out_at__isnull=True)
        .filter(created_by__user__email__endswith=f"@{DEMO_DOMAIN}")
        .exclude(status=Work.Status.REMOVED)
        .exclude(pk__in=claims)
        .order_by("id")
    )
