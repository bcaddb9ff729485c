"""Program terms are versioned: a day is always computed under the terms in force for it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from audit.models import AuditEvent
from royalties.ledger.errors import LedgerValidationError, TermsError
from royalties.ledger.models import RoyaltyProgramTerms
from royalties.ledger.selectors import program_terms_for
from royalties.ledger.services import accrual_post, period_close, program_terms_create, royalty_program_create
from tests.royalties.ledger.factories import DEFAULT_TERMS, make_ai_model, make_program, make_work

pytestmark = pytest.mark.django_db


def test_a_program_starts_with_version_1_and_is_audited(finance_user):
    program = royalty_program_create(ai_model=make_ai_model(), name="Storyteller", effective_from=dt.date(2024, 1, 1),
                                     created_by=finance_user, **DEFAULT_TERMS)

    terms = program_terms_for(program=program, day=dt.date(2024, 6, 1))
    assert (terms.version, terms.pool_kind, terms.pool_bps, terms.currency) == (1, "revenue_share", 2000, "USD")
    assert terms.created_by == finance_user
    assert set(AuditEvent.objects.values_list("action", flat=True)) >= {"ledger.program.create", "ledger.terms.create"}
    with pytest.raises(TermsError, match="no terms in force on 2023-12-31"):
        program_terms_for(program=program, day=dt.date(2023, 12, 31))


def test_new_terms_take_effect_from_their_day_and_old_days_keep_the_old_terms(program):
    v2 = program_terms_create(program=program, effective_from=dt.date(2024, 7, 1), currency="USD", top_k=3,
                              pool_fixed_micros=5_000_000, baseline_bps=0, note="fixed fund from July")

    assert v2.version == 2
    assert program_terms_for(program=program, day=dt.date(2024, 6, 30)).version == 1
    assert program_terms_for(program=program, day=dt.date(2024, 7, 1)).pk == v2.pk
    # Two versions starting the same (not yet accrued) day: the later version wins.
    v3 = program_terms_create(program=program, effective_from=dt.date(2024, 7, 1), currency="USD", top_k=4,
                              pool_bps=1500)
    assert program_terms_for(program=program, day=dt.date(2024, 8, 1)).pk == v3.pk


def test_terms_cannot_start_on_an_accrued_or_closed_day(program, contributors):
    day = dt.date(2024, 3, 10)
    accrual_post(program=program, period=day, allocations=[(contributors[0].pk, make_work().pk, 7, 1, 0)],
                 expense_total_micros=7)

    with pytest.raises(TermsError, match="not after 2024-03-10, the last day already accrued") as exc:
        program_terms_create(program=program, effective_from=day, currency="USD", top_k=3, pool_bps=100)
    assert exc.value.field == "effective_from"
    for d in (dt.date(2024, 3, 9), dt.date(2024, 3, 10), dt.date(2024, 3, 11)):
        period_close(day=d)
    with pytest.raises(TermsError, match="falls in a closed period"):
        program_terms_create(program=program, effective_from=dt.date(2024, 3, 11), currency="USD", top_k=3,
                             pool_bps=100)
    assert program_terms_create(program=program, effective_from=dt.date(2024, 3, 12), currency="USD", top_k=3,
                                pool_bps=100).version == 2


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"pool_bps": None}, "pool_bps", "exactly one of pool_bps"),
        ({"pool_fixed_micros": 5}, "pool_bps", "exactly one of pool_bps"),
        ({"pool_bps": 10_001}, "pool_bps", "between 0 and 10000"),
        ({"baseline_bps": -1}, "baseline_bps", "between 0 and 10000"),
        ({"top_k": 0}, "top_k", "between 1 and 1000"),
        ({"min_share": 0.05}, "min_share", "never a float"),
        ({"min_share": Decimal("1.5")}, "min_share", "between 0 and 1"),
        ({"min_share": Decimal("0.0000001")}, "min_share", "more than 6 decimal places"),
        ({"currency": "usd"}, "currency", "3-letter upper-case"),
        ({"payout_threshold_minor": -5}, "payout_threshold_minor", ">= 0"),
        ({"payout_threshold_minor": 5.0}, "payout_threshold_minor", "must be an integer"),
    ],
)
def test_bad_terms_name_the_field_and_write_nothing(program, overrides, field, message):
    values = {**DEFAULT_TERMS, **overrides}
    with pytest.raises(LedgerValidationError, match=message) as exc:
        program_terms_create(program=program, effective_from=dt.date(2025, 1, 1), **values)
    assert exc.value.field == field
    assert RoyaltyProgramTerms.objects.filter(program=program).count() == 1


def test_one_program_per_ai_model():
    program = make_program()
    with pytest.raises(LedgerValidationError, match="already has a royalty program") as exc:
        make_program(ai_model=program.ai_model)
    assert exc.value.field == "ai_model"


def test_a_fixed_pool_program(db):
    program = make_program(pool_fixed_micros=1_000_000)
    terms = program_terms_for(program=program, day=dt.date(2024, 1, 1))
    assert (terms.pool_kind, terms.pool_bps, terms.pool_fixed_micros) == ("fixed", None, 1_000_000)
