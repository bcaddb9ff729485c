"""Settling one (royalty program, day): scores -> shares -> money, written and posted in one transaction.

Reads the day's scored chunks (generations with their revenue, top-k attribution rows, the versions'
manifests and the works' owners) into pandas, applies the program's policy (``royalty_compute``: pool,
baseline, top-k, minimum share, exact largest-remainder splits per generation, per work and per owner),
writes each kept row's share and amount and each generation's pool, marks the generations attributed, and
posts one balanced entry for the day (``accrual:<program>:<day>``). All of it commits together or not at
all, so a crash here leaves the day exactly as it was and a re-run settles it once.

A day whose scored chunks are those it was settled from posts nothing. A day that gained chunks after it
was posted (generations that came in while it was still open) is recomputed whole and corrected in the
ledger: a reversal of the entry in effect plus a new entry, never an edit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from django.db import transaction
from django.utils import timezone

from attribution.models import (
    AttributedGeneration,
    Attribution,
    AttributionAmount,
    AttributionChunk,
    AttributionRun,
    AttributionSettlement,
    Generation,
    ManifestEntry,
)
from attribution.nightly.errors import NightlyError
from attribution.nightly.sql import bulk_insert, fetch_columns, in_list, update_by_id
from audit.services import audit_record
from contributors.models import Ownership
from royalties.ledger.errors import IdempotencyConflictError, PeriodClosedError
from royalties.ledger.models import JournalEntry, RoyaltyProgram
from royalties.ledger.policy import PolicyTerms, RoyaltyComputation, royalty_compute
from royalties.ledger.selectors import accrual_entry_current, accrual_key, program_terms_for
from royalties.ledger.services import accrual_correct, accrual_post

POSTED = "posted"
CORRECTED = "corrected"
UNCHANGED = "unchanged"
NOTHING = "nothing"  # the day accrued no money (no generations kept money, or a zero pool)
REVERSED = "reversed"  # a correction took the day's accrual back to zero
FAILED = "failed"


@dataclass
class ProgramOutcome:
    """What settling one (program, day) did; stored in ``AttributionRun.programs``."""

    program_id: int
    program: str
    day: str
    outcome: str
    entry_id: int | None = None
    currency: str = ""
    chunks: int = 0
    generations: int = 0
    late_generations: int = 0
    attributions: int = 0
    kept_attributions: int = 0
    pool_micros: int = 0
    expense_micros: int = 0
    unallocated_micros: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _t(model) -> str:
    return model._meta.db_table


def inputs_sha256(chunks: list[tuple[int, int, int]]) -> str:
    """Fingerprint of a day's scored chunks (id, generations, rows): scored chunks never change."""
    digest = hashlib.sha256()
    for chunk_id, generations, rows in sorted(chunks):
        digest.update(f"{chunk_id}:{generations}:{rows}\n".encode())
    return digest.hexdigest()


def day_frames(*, program_id: int, day: dt.date, version_ids: list[int]) -> dict[str, pd.DataFrame]:
    """The policy's inputs for one (program, day), read straight into columns (no model instances)."""
    params = [program_id, day.isoformat()]
    chunk_join = f"JOIN {_t(AttributionChunk)} c ON c.id = x.chunk_id WHERE c.program_id = %s AND c.day = %s"
    generations = fetch_columns(
        f"SELECT x.id, x.generation_id, g.model_version_id, g.revenue_micros, x.late "  # noqa: S608
        f"FROM {_t(AttributedGeneration)} x JOIN {_t(Generation)} g ON g.id = x.generation_id {chunk_join}",
        params,
        {"slot_id": "int64", "generation_id": "int64", "model_version_id": "int64", "revenue_micros": "int64",
         "late": "bool"},
    )
    attributions = fetch_columns(
        f"SELECT x.id, x.generation_id, x.work_id, x.score FROM {_t(Attribution)} x {chunk_join}",  # noqa: S608
        params,
        {"id": "int64", "generation_id": "int64", "work_id": "int64", "score": "float64"},
    )
    versions_sql, version_params = in_list(version_ids)
    manifest = fetch_columns(
        f"SELECT model_version_id, work_id FROM {_t(ManifestEntry)} "  # noqa: S608
        f"WHERE model_version_id IN {versions_sql}",
        version_params,
        {"model_version_id": "int64", "work_id": "int64"},
    )
    # Owners of every work that can earn that day: the manifests' works and the works scored.
    ownership = fetch_columns(
        f"SELECT o.work_id, o.contributor_id, o.bps FROM {_t(Ownership)} o "  # noqa: S608
        f"WHERE o.work_id IN (SELECT work_id FROM {_t(ManifestEntry)} WHERE model_version_id IN {versions_sql}) "
        f"OR o.work_id IN (SELECT x.work_id FROM {_t(Attribution)} x {chunk_join})",
        [*version_params, *params],
        {"work_id": "int64", "contributor_id": "int64", "bps": "int64"},
    )
    return {"generations": generations, "attributions": attributions, "manifest": manifest, "ownership": ownership}


def amounts_write(*, frames: dict[str, pd.DataFrame], result: RoyaltyComputation, reset: bool,
                  program_id: int, day: dt.date) -> tuple[int, dict[str, float]]:
    """Write each kept row's share and amount (insert-only) and each generation's pool and attributed time.

    Returns the kept row count and the seconds of each of the three writes.
    """
    started = time.perf_counter()
    if reset:
        # A recomputed day: its amounts are replaced whole (rows kept before may not be kept now).
        AttributionAmount.objects.filter(attribution__chunk__program_id=program_id,
                                         attribution__chunk__day=day).delete()
    kept = result.attributions.merge(
        frames["attributions"][["id", "generation_id", "work_id"]], on=["generation_id", "work_id"], how="left",
        validate="one_to_one",
    )
    shares = np.char.mod("%.9f", kept["share"].to_numpy(dtype=np.float64)).tolist()
    bulk_insert(AttributionAmount, ["attribution", "share", "amount_micros"],
                zip(kept["id"].to_numpy(np.int64).tolist(), shares, kept["amount_micros"].to_numpy(np.int64).tolist(),
                    strict=True))
    rows_done = time.perf_counter()
    pools = result.generation_pools.merge(frames["generations"][["slot_id", "generation_id"]], on="generation_id",
                                          how="left", validate="one_to_one")
    update_by_id(
        AttributedGeneration, ["pool_micros", "attributed_pool_micros", "to_baseline"],
        pools["slot_id"].to_numpy(np.int64),
        [pools["pool_micros"].to_numpy(np.int64).tolist(), pools["attributed_pool_micros"].to_numpy(np.int64).tolist(),
         pools["to_baseline"].to_numpy(bool).tolist()],
    )
    pools_done = time.perf_counter()
    return len(kept), {
        "amount_rows": round(rows_done - started, 4), "generation_pools": round(pools_done - rows_done, 4),
    }


def _ever_posted(program: RoyaltyProgram, day: dt.date) -> bool:
    return JournalEntry.objects.filter(
        kind=JournalEntry.Kind.ACCRUAL, idempotency_key__startswith=accrual_key(program_id=program.pk, day=day)
    ).exists()


def accrual_book(
    *, program: RoyaltyProgram, day: dt.date, result: RoyaltyComputation, reason: str, actor_label: str
) -> tuple[JournalEntry | None, str]:
    """Post the day's accrual, or correct it (reversal + new entry) when the day was posted or closed before."""
    current = accrual_entry_current(program=program, day=day)
    if current is None and not _ever_posted(program, day):
        try:
            entry = accrual_post(program=program, period=day, allocations=result.accruals,
                                 expense_total_micros=result.expense_micros, created_by_label=actor_label)
        except PeriodClosedError:
            # The day was closed before its night posted: the ledger books it in the current period.
            reason = f"{reason}; the day was closed before its accrual was posted"
        except IdempotencyConflictError:
            reason = f"{reason}; an accrual with other content was posted under the day's key"
        else:
            return entry, POSTED if entry is not None else NOTHING
    entry = accrual_correct(program=program, day=day, allocations=result.accruals,
                            expense_total_micros=result.expense_micros, reason=reason, created_by_label=actor_label)
    if entry is None:
        return None, REVERSED if current is not None else NOTHING
    if current is not None and entry.pk == current.pk:
        return entry, UNCHANGED
    return entry, CORRECTED if current is not None else POSTED


@transaction.atomic
def program_day_settle(*, program_id: int, day: dt.date, run: AttributionRun, actor_label: str) -> ProgramOutcome:
    """Settle one (program, day) from its scored chunks; see the module docstring."""
    program = RoyaltyProgram.objects.get(pk=program_id)
    settlement, _ = AttributionSettlement.objects.get_or_create(program=program, day=day)
    # Two nights finishing at once take turns here; the second finds the day settled.
    settlement = AttributionSettlement.objects.select_for_update().get(pk=settlement.pk)
    outcome = ProgramOutcome(program_id=program.pk, program=program.name, day=day.isoformat(), outcome=UNCHANGED)
    chunks = list(AttributionChunk.objects.filter(program=program, day=day)
                  .values_list("pk", "generation_count", "attribution_count", "status", "model_version_id"))
    unscored = [c[0] for c in chunks if c[3] != AttributionChunk.Status.SCORED]
    if unscored:
        raise NightlyError(f"{len(unscored)} chunk(s) of {day} are not scored yet (e.g. #{unscored[0]}); the night "
                           "cannot settle the day until they are: re-run it", field="day")
    digest = inputs_sha256([(c[0], c[1], c[2]) for c in chunks])
    outcome.chunks = len(chunks)
    if settlement.settled_at is not None and digest == settlement.inputs_sha256:
        current = accrual_entry_current(program=program, day=day)
        outcome.entry_id = current.pk if current else None
        outcome.generations = settlement.generation_count
        outcome.pool_micros, outcome.expense_micros = settlement.pool_micros, settlement.expense_micros
        outcome.currency = settlement.currency
        if outcome.entry_id != settlement.journal_entry_id:
            outcome.message = (f"the ledger's accrual in effect (#{outcome.entry_id}) is not the one the night "
                               f"posted (#{settlement.journal_entry_id}): corrected by hand, left as it is")
        return outcome

    started = time.perf_counter()
    terms = program_terms_for(program=program, day=day)
    version_ids = sorted({c[4] for c in chunks})
    frames = day_frames(program_id=program.pk, day=day, version_ids=version_ids)
    gens = frames["generations"]
    result = royalty_compute(
        terms=PolicyTerms.from_terms(terms),
        generations=gens[["generation_id", "model_version_id", "revenue_micros"]],
        attributions=frames["attributions"][["generation_id", "work_id", "score"]],
        manifest=frames["manifest"], ownership=frames["ownership"],
    )
    aggregated = time.perf_counter()
    was_settled = settlement.settled_at is not None
    kept, amount_timings = amounts_write(frames=frames, result=result, reset=was_settled, program_id=program.pk,
                                         day=day)
    written = time.perf_counter()
    added = len(gens) - settlement.generation_count
    reason = (f"night run #{run.pk}: {added} generation(s) added to {day} after its accrual was computed"
              if was_settled else f"night run #{run.pk}")
    entry, booked = accrual_book(program=program, day=day, result=result, reason=reason, actor_label=actor_label)
    posted = time.perf_counter()

    before = {"journal_entry": settlement.journal_entry_id, "expense_micros": settlement.expense_micros,
              "generation_count": settlement.generation_count}
    settlement.inputs_sha256 = digest
    settlement.journal_entry = entry
    settlement.currency = terms.currency
    settlement.generation_count = len(gens)
    settlement.late_generation_count = int(gens["late"].sum())
    settlement.attribution_count = len(frames["attributions"])
    settlement.chunk_count = len(chunks)
    settlement.pool_micros = result.pool_micros
    settlement.expense_micros = result.expense_micros
    settlement.unallocated_micros = result.unallocated_micros
    settlement.corrections += int(booked in (CORRECTED, REVERSED))
    settlement.run = run
    settlement.settled_at = timezone.now()
    settlement.save()
    audit_record(
        action="attribution.settlement", obj=settlement, actor_label=actor_label, before=before,
        after={"journal_entry": entry.pk if entry else None, "outcome": booked, "day": day,
               "pool_micros": result.pool_micros, "expense_micros": result.expense_micros,
               "unallocated_micros": result.unallocated_micros, "generation_count": len(gens)},
        reason=reason,
    )
    outcome.outcome = booked
    outcome.entry_id = entry.pk if entry else None
    outcome.currency = terms.currency
    outcome.generations = len(gens)
    outcome.late_generations = settlement.late_generation_count
    outcome.attributions = len(frames["attributions"])
    outcome.kept_attributions = kept
    outcome.pool_micros = result.pool_micros
    outcome.expense_micros = result.expense_micros
    outcome.unallocated_micros = result.unallocated_micros
    outcome.timings = {"aggregation": round(aggregated - started, 4), "amounts": round(written - aggregated, 4),
                       "posting": round(posted - written, 4), **amount_timings}
    if result.unallocated_micros:
        outcome.message = (f"{result.unallocated_micros} micro-units of the pool were not allocated: a version "
                           "had no owned work in its training manifest for its baseline")
    return outcome
