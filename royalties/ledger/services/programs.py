"""Royalty programs and their versioned terms.

Terms are append-only. A new version may only take effect on a day after every day already accrued for the
program and after every closed period, so no day is ever recomputed under terms that were not in force then.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Max

from royalties.ledger.errors import LedgerValidationError, TermsError
from royalties.ledger.models import BPS_TOTAL, Accrual, Period, RoyaltyProgram, RoyaltyProgramTerms
from royalties.ledger.services.common import actor_label, as_currency, as_day, as_int, as_user, audit

# Keeps the vectorised allocation in int64 (weights of at most 2**30 each, summed over top_k works).
MAX_TOP_K = 1_000
MIN_SHARE_PLACES = 6


def _bps(value: Any, field: str) -> int:
    value = as_int(value, field)
    if not 0 <= value <= BPS_TOTAL:
        raise LedgerValidationError(f"{field} must be between 0 and {BPS_TOTAL} basis points, got {value}",
                                    field=field)
    return value


def _terms_fields(
    *,
    currency: str,
    pool_bps: int | None,
    pool_fixed_micros: int | None,
    baseline_bps: int,
    top_k: int,
    min_share: Decimal,
    payout_threshold_minor: int,
) -> dict[str, Any]:
    """Validate terms; returns the model field values. Errors name the field."""
    currency = as_currency(currency)
    if (pool_bps is None) == (pool_fixed_micros is None):
        raise LedgerValidationError("give exactly one of pool_bps (revenue share) or pool_fixed_micros (per day)",
                                    field="pool_bps")
    if pool_bps is not None:
        pool_kind = RoyaltyProgramTerms.PoolKind.REVENUE_SHARE
        pool_bps = _bps(pool_bps, "pool_bps")
    else:
        pool_kind = RoyaltyProgramTerms.PoolKind.FIXED
        pool_fixed_micros = as_int(pool_fixed_micros, "pool_fixed_micros")
        if pool_fixed_micros < 0:
            raise LedgerValidationError("pool_fixed_micros must be >= 0", field="pool_fixed_micros")
    top_k = as_int(top_k, "top_k")
    if not 1 <= top_k <= MAX_TOP_K:
        raise LedgerValidationError(f"top_k must be between 1 and {MAX_TOP_K}, got {top_k}", field="top_k")
    if not isinstance(min_share, Decimal) or not min_share.is_finite():
        raise LedgerValidationError(f"min_share must be a Decimal (never a float), got {min_share!r}",
                                    field="min_share")
    if not Decimal(0) <= min_share <= Decimal(1):
        raise LedgerValidationError(f"min_share must be between 0 and 1, got {min_share}", field="min_share")
    if -min_share.as_tuple().exponent > MIN_SHARE_PLACES:  # type: ignore[operator]
        raise LedgerValidationError(f"min_share has more than {MIN_SHARE_PLACES} decimal places", field="min_share")
    payout_threshold_minor = as_int(payout_threshold_minor, "payout_threshold_minor")
    if payout_threshold_minor < 0:
        raise LedgerValidationError("payout_threshold_minor must be >= 0", field="payout_threshold_minor")
    return {
        "currency": currency, "pool_kind": pool_kind, "pool_bps": pool_bps, "pool_fixed_micros": pool_fixed_micros,
        "baseline_bps": _bps(baseline_bps, "baseline_bps"), "top_k": top_k, "min_share": min_share,
        "payout_threshold_minor": payout_threshold_minor,
    }


def terms_effective_from_check(*, program: RoyaltyProgram, effective_from: dt.date) -> None:
    """Refuse a start day that is already accrued for the program or lies in a closed period."""
    last_accrued = Accrual.objects.filter(program=program).aggregate(day=Max("period__day"))["day"]
    if last_accrued is not None and effective_from <= last_accrued:
        raise TermsError(
            f"effective_from {effective_from} is not after {last_accrued}, the last day already accrued under "
            "this program; new terms apply from a day not yet accrued", field="effective_from",
        )
    last_closed = Period.objects.filter(status=Period.Status.CLOSED).aggregate(day=Max("day"))["day"]
    if last_closed is not None and effective_from <= last_closed:
        raise TermsError(f"effective_from {effective_from} falls in a closed period (closed up to {last_closed})",
                         field="effective_from")


def terms_validate(**fields: Any) -> dict[str, Any]:
    """Validate terms values without writing (for forms); raises LedgerValidationError naming the field."""
    return _terms_fields(**fields)


@transaction.atomic
def program_terms_create(
    *,
    program: RoyaltyProgram,
    effective_from: dt.date,
    currency: str,
    top_k: int,
    pool_bps: int | None = None,
    pool_fixed_micros: int | None = None,
    baseline_bps: int = 0,
    min_share: Decimal = Decimal("0"),
    payout_threshold_minor: int = 0,
    note: str = "",
    created_by: Any = None,
    created_by_label: str = "",
) -> RoyaltyProgramTerms:
    """Add a new version of a program's terms, in force from ``effective_from`` (a day not yet accrued)."""
    if not isinstance(program, RoyaltyProgram) or program.pk is None:
        raise LedgerValidationError("program must be a saved royalty program", field="program")
    effective_from = as_day(effective_from, "effective_from")
    created_by = as_user(created_by)
    fields = _terms_fields(
        currency=currency, pool_bps=pool_bps, pool_fixed_micros=pool_fixed_micros, baseline_bps=baseline_bps,
        top_k=top_k, min_share=min_share, payout_threshold_minor=payout_threshold_minor,
    )
    # Lock the program: accrual posting takes the same lock, so terms cannot change under a running post.
    program = RoyaltyProgram.objects.select_for_update().get(pk=program.pk)
    terms_effective_from_check(program=program, effective_from=effective_from)
    version = (program.terms.aggregate(v=Max("version"))["v"] or 0) + 1
    label = actor_label(created_by, created_by_label)
    terms = RoyaltyProgramTerms.objects.create(
        program=program, version=version, effective_from=effective_from, note=note, created_by=created_by,
        created_by_label=label, **fields,
    )
    audit(action="ledger.terms.create", obj=terms, actor=created_by, actor_label=label,
          after={"program": program.pk, "version": version, "effective_from": effective_from, **fields},
          reason=note)
    return terms


@transaction.atomic
def royalty_program_create(
    *,
    ai_model: Any,
    name: str,
    effective_from: dt.date,
    currency: str,
    top_k: int,
    pool_bps: int | None = None,
    pool_fixed_micros: int | None = None,
    baseline_bps: int = 0,
    min_share: Decimal = Decimal("0"),
    payout_threshold_minor: int = 0,
    created_by: Any = None,
    created_by_label: str = "",
) -> RoyaltyProgram:
    """Create the royalty program of an AI model with its first terms (version 1)."""
    if getattr(ai_model, "pk", None) is None:
        raise LedgerValidationError("ai_model must be a saved AI model", field="ai_model")
    if not isinstance(name, str) or not name.strip():
        raise LedgerValidationError("name must be a non-empty string", field="name")
    if RoyaltyProgram.objects.filter(ai_model_id=ai_model.pk).exists():
        raise LedgerValidationError(f"AI model {ai_model.pk} already has a royalty program; add new terms to it",
                                    field="ai_model")
    created_by = as_user(created_by)
    label = actor_label(created_by, created_by_label)
    program = RoyaltyProgram.objects.create(ai_model_id=ai_model.pk, name=name.strip(), created_by=created_by,
                                            created_by_label=label)
    audit(action="ledger.program.create", obj=program, actor=created_by, actor_label=label,
          after={"ai_model": ai_model.pk, "name": program.name})
    program_terms_create(
        program=program, effective_from=effective_from, currency=currency, top_k=top_k, pool_bps=pool_bps,
        pool_fixed_micros=pool_fixed_micros, baseline_bps=baseline_bps, min_share=min_share,
        payout_threshold_minor=payout_threshold_minor, created_by=created_by, created_by_label=label,
    )
    return program
