"""Planning a night: which generations it takes, which day they accrue to, and how they are cut into chunks.

The night of day D takes, per model version, every generation not yet taken by any night that was generated
on D, plus the **late** ones: generations of days already closed that arrived after their night (they accrue
to D, the open day, and are marked ``late``; both days stay visible). Generations of earlier days that are
still open wait for their own night. A version is skipped (its generations stay untaken, nothing is lost)
when its AI model has no royalty program or no terms in force, when it has no usable attribution index, or,
for a revenue-share program, for generations logged in another currency than the program pays in.

Planning writes the chunks and one ``AttributedGeneration`` per generation in one transaction, under a lock
per day, so two nights started at once cannot take the same generation (its row is also unique).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction
from django.db.models import Max, Min, Q

from attribution.models import AttributedGeneration, AttributionChunk, AttributionRun, Generation, ModelVersion
from attribution.nightly.errors import NightlyError
from attribution.nightly.sql import advisory_lock, bulk_insert
from royalties.ledger.errors import TermsError
from royalties.ledger.models import Period, RoyaltyProgramTerms
from royalties.ledger.selectors import program_for_ai_model, program_terms_for


@dataclass(frozen=True)
class VersionPlan:
    """A model version the night can score: its program and the terms in force that day."""

    model_version: ModelVersion
    program_id: int
    top_k: int
    currency: str
    pool_kind: str


@dataclass(frozen=True)
class NightPlan:
    run: AttributionRun
    # Chunks of the day still to score: the ones planned now and any an earlier, crashed run left planned.
    chunk_ids: list[int]


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """``[start, end)`` of a UTC day as aware datetimes."""
    start = dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


def last_closed_day() -> dt.date | None:
    """The last closed ledger period: periods close in order, so every day up to it is closed."""
    return Period.objects.filter(status=Period.Status.CLOSED).aggregate(day=Max("day"))["day"]


def version_label(version: ModelVersion) -> str:
    return f"{version.ai_model.name}@{version.label}"


def version_eligibility(*, model_version: ModelVersion, day: dt.date) -> tuple[VersionPlan | None, str]:
    """A plan for the version, or None and the reason it cannot be scored for ``day``."""
    from attribution.adapters.base import AdapterError
    from attribution.index_services import BUILD_FILE, attribution_index_check

    label = version_label(model_version)
    program = program_for_ai_model(ai_model=model_version.ai_model_id)
    if program is None:
        return None, f"AI model {model_version.ai_model.name!r} has no royalty program"
    try:
        terms = program_terms_for(program=program, day=day)
    except TermsError as exc:
        return None, str(exc)
    if not model_version.index_path:
        return None, f"no attribution index: run `manage.py build_attribution_index {label}`"
    if not (Path(model_version.index_path) / BUILD_FILE).is_file():
        return None, f"the attribution index at {model_version.index_path!r} is gone: rebuild it"
    try:
        reasons = attribution_index_check(model_version=model_version)
    except AdapterError as exc:
        return None, f"the adapter cannot be loaded: {exc}"
    if reasons:
        return None, f"the attribution index is stale ({'; '.join(reasons)}): rebuild it"
    return VersionPlan(model_version=model_version, program_id=program.pk, top_k=terms.top_k,
                       currency=terms.currency, pool_kind=terms.pool_kind), ""


def _candidates(day: dt.date, last_closed: dt.date | None) -> tuple[Q, bool]:
    """The night's window: the day itself, plus every closed day's untaken generations (late)."""
    start, end = day_bounds(day)
    window = Q(generated_at__gte=start, generated_at__lt=end)
    takes_late = last_closed is not None and last_closed < day
    if takes_late:
        window |= Q(generated_at__lt=day_bounds(last_closed)[1])
    return window, takes_late


@transaction.atomic
def night_plan(
    *,
    day: dt.date,
    trigger: str,
    executor: str,
    close_period: bool,
    chunk_size: int,
) -> NightPlan:
    """Record a new run for ``day`` and cut the generations it takes into chunks (see the module docstring)."""
    if chunk_size < 1:
        raise NightlyError(f"chunk_size must be >= 1, got {chunk_size}", field="chunk_size")
    advisory_lock(f"attribution-night:{day.isoformat()}")
    run = AttributionRun.objects.create(day=day, trigger=trigger, executor=executor, close_period=close_period)
    last_closed = last_closed_day()
    warnings: list[str] = []
    skipped: list[dict] = []
    if last_closed is not None and day <= last_closed:
        # A closed day takes nothing new; the run only finishes what an earlier run left and re-checks.
        warnings.append(f"{day} is closed (periods are closed up to {last_closed}): no generation is taken; "
                        "late ones go to the next open day")
        rows: list[tuple[int, int, dt.datetime, str]] = []
    else:
        window, _ = _candidates(day, last_closed)
        rows = list(
            Generation.objects.filter(window, attributed_at__isnull=True, nightly__isnull=True)
            .order_by("model_version_id", "id")
            .values_list("id", "model_version_id", "generated_at", "currency")
        )
    by_version: dict[int, list[tuple[int, dt.datetime, str]]] = {}
    for gen_id, version_id, generated_at, currency in rows:
        by_version.setdefault(version_id, []).append((gen_id, generated_at, currency))
    versions = ModelVersion.objects.select_related("ai_model").in_bulk(list(by_version))
    start, _ = day_bounds(day)
    new_chunks: list[AttributionChunk] = []
    assignments: list[tuple[int, int, bool]] = []  # (generation id, index into new_chunks, late)
    taken = late_taken = 0
    for version_id in sorted(by_version):
        version = versions[version_id]
        gens = by_version[version_id]
        plan, reason = version_eligibility(model_version=version, day=day)
        if plan is None:
            skipped.append(_skip(version, reason, gens, start))
            continue
        if plan.pool_kind == RoyaltyProgramTerms.PoolKind.REVENUE_SHARE:
            # A revenue share in another currency cannot be pooled without an exchange rate we do not have.
            other = [g for g in gens if g[2] != plan.currency]
            if other:
                currencies = ", ".join(sorted({g[2] for g in other}))
                skipped.append(_skip(version, f"logged in {currencies}; the royalty program pays a share of "
                                              f"{plan.currency} revenue", other, start))
                gens = [g for g in gens if g[2] == plan.currency]
        seq = (AttributionChunk.objects.filter(model_version=version, day=day).aggregate(m=Max("seq"))["m"] or 0)
        for offset in range(0, len(gens), chunk_size):
            seq += 1
            part = gens[offset: offset + chunk_size]
            new_chunks.append(AttributionChunk(
                model_version=version, program_id=plan.program_id, day=day, seq=seq, run=run, top_k=plan.top_k,
                generation_count=len(part), index_checksum=version.index_checksum,
            ))
            for gen_id, generated_at, _ in part:
                late = generated_at < start
                assignments.append((gen_id, len(new_chunks) - 1, late))
                taken += 1
                late_taken += late
    created = AttributionChunk.objects.bulk_create(new_chunks)
    bulk_insert(
        AttributedGeneration, ["generation", "chunk", "day", "late"],
        ((gen_id, created[i].pk, day, late) for gen_id, i, late in assignments),
    )
    warnings.extend(_waiting_warnings(day, last_closed))
    pending = list(
        AttributionChunk.objects.filter(day=day, status=AttributionChunk.Status.PLANNED)
        .order_by("model_version_id", "seq").values_list("pk", flat=True)
    )
    run.generation_count = taken
    run.late_generation_count = late_taken
    run.chunks_planned = len(created)
    run.skipped = skipped
    run.warnings = warnings
    run.save(update_fields=["generation_count", "late_generation_count", "chunks_planned", "skipped", "warnings"])
    return NightPlan(run=run, chunk_ids=pending)


def _skip(version: ModelVersion, reason: str, gens: list[tuple[int, dt.datetime, str]], start: dt.datetime) -> dict:
    return {
        "model_version_id": version.pk, "label": version_label(version), "reason": reason,
        "generations": len(gens), "late": sum(1 for _, at, _ in gens if at < start),
    }


def _waiting_warnings(day: dt.date, last_closed: dt.date | None) -> list[str]:
    """Work an earlier night left behind: unscored chunks, and untaken generations of days not closed."""
    warnings = []
    stale = AttributionChunk.objects.filter(day__lt=day, status=AttributionChunk.Status.PLANNED)
    first_stale = stale.aggregate(day=Min("day"))["day"]
    if first_stale is not None:
        warnings.append(f"{stale.count()} chunk(s) of earlier nights are still unscored (the first of "
                        f"{first_stale}): run `manage.py run_nightly --date {first_stale}` to finish that night")
    start, _ = day_bounds(day)
    qs = Generation.objects.filter(generated_at__lt=start, attributed_at__isnull=True, nightly__isnull=True)
    if last_closed is not None:
        qs = qs.filter(generated_at__gte=day_bounds(last_closed)[1])
    found = qs.aggregate(first=Min("generated_at"), last=Max("generated_at"))
    if found["first"] is None:
        return warnings
    count = qs.count()
    first = found["first"].astimezone(dt.UTC).date()
    last = found["last"].astimezone(dt.UTC).date()
    warnings.append(f"{count} generation(s) of earlier open days ({first} to {last}) wait for their own night: "
                    f"run `manage.py run_nightly --date {first}` (and the days after it) first")
    return warnings
