"""Builders for ledger tests (and for the tests of apps that post to the ledger: the nightly job, payouts)."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from decimal import Decimal

from attribution.models import AIModel
from contributors.models import Contributor, Work
from royalties.ledger.models import RoyaltyProgram
from royalties.ledger.services import royalty_program_create
from tests.factories import UserFactory

_seq = itertools.count(1)

DEFAULT_TERMS = {
    "currency": "USD",
    "pool_bps": 2_000,
    "baseline_bps": 1_000,
    "top_k": 10,
    "min_share": Decimal("0"),
    "payout_threshold_minor": 1_000,
}


def make_contributor(name: str | None = None) -> Contributor:
    n = next(_seq)
    return Contributor.objects.create(user=UserFactory(), display_name=name or f"Contributor {n}")


def make_work(owner: Contributor | None = None, title: str | None = None) -> Work:
    n = next(_seq)
    body = f"work body {n}"
    return Work.objects.create(
        kind=Work.Kind.TEXT, title=title or f"Work {n}", text_body=body, size_bytes=len(body),
        mime_type="text/plain", sha256=hashlib.sha256(body.encode()).hexdigest(), created_by=owner,
    )


def make_ai_model(name: str | None = None) -> AIModel:
    return AIModel.objects.create(name=name or f"model-{next(_seq)}", modality=AIModel.Modality.TEXT)


def make_program(
    *, ai_model: AIModel | None = None, effective_from: dt.date = dt.date(2020, 1, 1), **terms
) -> RoyaltyProgram:
    """A royalty program with version-1 terms (DEFAULT_TERMS overridden by ``terms``), through the service."""
    values = {**DEFAULT_TERMS, **terms}
    if "pool_fixed_micros" in terms:
        values.pop("pool_bps", None)
    return royalty_program_create(
        ai_model=ai_model or make_ai_model(), name=f"Program {next(_seq)}", effective_from=effective_from,
        created_by_label="test", **values,
    )
