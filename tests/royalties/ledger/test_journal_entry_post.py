"""journal_entry_post: the only way in. Balanced or refused, once per key, never into a closed period."""

from __future__ import annotations

import datetime as dt

import pytest

from audit.models import AuditEvent
from royalties.ledger.errors import (
    IdempotencyConflictError,
    LedgerValidationError,
    PeriodClosedError,
    UnbalancedEntryError,
)
from royalties.ledger.models import Account, JournalEntry, Period, Posting
from royalties.ledger.selectors import account_balance, contributor_payable_balance
from royalties.ledger.services import (
    PostingLine,
    account_get_or_create,
    journal_entry_post,
    period_close,
)

pytestmark = pytest.mark.django_db

DAY = dt.date(2024, 3, 1)


@pytest.fixture
def accounts(program, contributors):
    expense = account_get_or_create(kind=Account.Kind.ROYALTY_EXPENSE, currency="USD", program=program)
    payables = [
        account_get_or_create(kind=Account.Kind.CONTRIBUTOR_PAYABLE, currency="USD", contributor=c)
        for c in contributors
    ]
    return expense, payables


def _post(expense, payables, amounts=(700, 300), key="k1", **kwargs):
    lines = [PostingLine(expense, sum(amounts))] + [
        PostingLine(p, -a) for p, a in zip(payables, amounts, strict=False)
    ]
    return journal_entry_post(
        kind=kwargs.pop("kind", JournalEntry.Kind.ADJUSTMENT), period=kwargs.pop("period", DAY),
        idempotency_key=key, memo=kwargs.pop("memo", "test"), lines=lines, **kwargs,
    )


def test_a_balanced_entry_is_written_with_its_postings_and_balances_are_sums(accounts, finance_user):
    expense, payables = accounts

    entry = _post(expense, payables, created_by=finance_user)

    assert entry.period.day == DAY
    assert entry.created_by == finance_user
    assert entry.created_by_label == finance_user.email
    assert sorted(entry.postings.values_list("amount_micros", flat=True)) == [-700, -300, 1000]
    assert account_balance(account=expense) == 1000
    assert contributor_payable_balance(contributor=payables[0].contributor_id, currency="USD") == 700
    # Every money action lands in the audit trail, in the same transaction as the entry.
    event = AuditEvent.objects.get(action="ledger.entry.adjustment")
    assert event.object_id == str(entry.pk)
    assert event.after["debits_micros"] == 1000


def test_an_unbalanced_entry_is_refused_and_nothing_is_written(accounts):
    expense, payables = accounts

    with pytest.raises(UnbalancedEntryError, match=r"USD off by \+1 micros"):
        journal_entry_post(
            kind="adjustment", period=DAY, idempotency_key="k", memo="",
            lines=[PostingLine(expense, 1001), PostingLine(payables[0], -1000)],
        )

    assert JournalEntry.objects.count() == 0
    assert Posting.objects.count() == 0
    # The period is not even opened by a refused entry: the whole call is one transaction.
    assert not Period.objects.filter(day=DAY).exists()


def test_mixed_currencies_must_balance_in_each_currency(program, contributors):
    usd_exp = account_get_or_create(kind="royalty_expense", currency="USD", program=program)
    eur_exp = account_get_or_create(kind="royalty_expense", currency="EUR", program=program)
    usd_pay = account_get_or_create(kind="contributor_payable", currency="USD", contributor=contributors[0])
    eur_pay = account_get_or_create(kind="contributor_payable", currency="EUR", contributor=contributors[0])

    # Sums to zero overall, but is +5 USD / -5 EUR: refused.
    with pytest.raises(UnbalancedEntryError, match="EUR off by -5 micros, USD off by \\+5 micros"):
        journal_entry_post(kind="adjustment", period=DAY, idempotency_key="fx", memo="", lines=[
            PostingLine(usd_exp, 10), PostingLine(usd_pay, -5), PostingLine(eur_exp, 5), PostingLine(eur_pay, -10),
        ])
    entry = journal_entry_post(kind="adjustment", period=DAY, idempotency_key="fx", memo="", lines=[
        PostingLine(usd_exp, 10), PostingLine(usd_pay, -10), PostingLine(eur_exp, 5), PostingLine(eur_pay, -5),
    ])
    assert entry.postings.count() == 4


def test_same_key_same_content_returns_the_existing_entry_and_writes_nothing(accounts):
    expense, payables = accounts
    first = _post(expense, payables)
    counts = (JournalEntry.objects.count(), Posting.objects.count(), AuditEvent.objects.count())

    # Lines in another order and another memo: same money, same entry.
    again = journal_entry_post(
        kind="adjustment", period=DAY, idempotency_key="k1", memo="reworded",
        lines=[PostingLine(payables[1], -300), PostingLine(payables[0], -700), PostingLine(expense.pk, 1000)],
    )

    assert again.pk == first.pk
    assert (JournalEntry.objects.count(), Posting.objects.count(), AuditEvent.objects.count()) == counts


def test_same_key_different_content_is_a_typed_conflict(accounts):
    expense, payables = accounts
    first = _post(expense, payables)

    with pytest.raises(IdempotencyConflictError, match=f"entry #{first.pk} with different content") as exc:
        _post(expense, payables, amounts=(701, 299))
    assert exc.value.field == "idempotency_key"
    with pytest.raises(IdempotencyConflictError):
        _post(expense, payables, period=DAY + dt.timedelta(days=1))
    assert JournalEntry.objects.count() == 1


def test_posting_to_a_closed_period_is_refused(accounts):
    expense, payables = accounts
    _post(expense, payables, key="before-close")
    period_close(day=DAY)

    with pytest.raises(PeriodClosedError, match=f"period {DAY} was closed"):
        _post(expense, payables, key="after-close")
    # A replay of an entry posted before the close is still answered (it writes nothing).
    assert _post(expense, payables, key="before-close").period.day == DAY
    assert JournalEntry.objects.count() == 1


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"kind": "gift"}, "kind", "kind must be one of"),
        ({"kind": "accrual"}, "kind", "posted with accrual_post"),
        ({"idempotency_key": ""}, "idempotency_key", "non-empty"),
        ({"idempotency_key": "x" * 201}, "idempotency_key", "at most 200"),
        ({"period": "2024-03-01"}, "period", "must be a Period or a date"),
        ({"lines": []}, "lines", "at least two postings"),
        ({"lines": [("acc", 1)]}, "lines[0].account", "must be an integer"),
        ({"lines": "lines"}, "lines", "sequence of PostingLine"),
        ({"metadata": {"when": object()}}, "metadata", "JSON-serialisable"),
        ({"metadata": []}, "metadata", "must be a dict"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(accounts, kwargs, field, message):
    expense, payables = accounts
    params = {
        "kind": "adjustment", "period": DAY, "idempotency_key": "k", "memo": "",
        "lines": [PostingLine(expense, 5), PostingLine(payables[0], -5)], **kwargs,
    }
    with pytest.raises(LedgerValidationError, match=message) as exc:
        journal_entry_post(**params)
    assert exc.value.field == field
    assert JournalEntry.objects.count() == 0


@pytest.mark.parametrize(
    ("line", "field", "message"),
    [
        (PostingLine(0, 5), "lines[1].account", "account 0 does not exist"),
        (PostingLine("a", 5), "lines[1].account", "must be an integer"),
        (PostingLine(1, 0.5), "lines[1].amount_micros", "must be an integer"),
        (PostingLine(1, 0), "lines[1].amount_micros", "is 0"),
    ],
)
def test_bad_lines_name_the_line(accounts, line, field, message):
    expense, payables = accounts
    if line.account == 1:
        line = PostingLine(payables[0], line.amount_micros)
    with pytest.raises(LedgerValidationError, match=message) as exc:
        journal_entry_post(kind="adjustment", period=DAY, idempotency_key="k", memo="",
                           lines=[PostingLine(expense, 5), line])
    assert exc.value.field == field


def test_floats_never_become_money(accounts):
    expense, payables = accounts
    with pytest.raises(LedgerValidationError, match=r"must be an integer, got 0\.1"):
        journal_entry_post(kind="adjustment", period=DAY, idempotency_key="k", memo="",
                           lines=[PostingLine(expense, 0.1), PostingLine(payables[0], -0.1)])


@pytest.mark.slow
def test_an_entry_with_100k_postings_goes_through_the_bulk_path(program):
    from tests.royalties.ledger.factories import make_contributor

    # 200 real payable accounts, each posted to 500 times: 100,000 postings in one entry.
    people = [make_contributor() for _ in range(200)]
    from royalties.ledger.services import accounts_for_contributors

    payable = accounts_for_contributors(kind="contributor_payable", currency="USD",
                                        contributor_ids=[p.pk for p in people])
    expense = account_get_or_create(kind="royalty_expense", currency="USD", program=program)
    lines = [PostingLine(payable[p.pk], -(i + 1)) for p in people for i in range(500)]
    lines.append(PostingLine(expense, -sum(line.amount_micros for line in lines)))

    entry = journal_entry_post(kind="adjustment", period=DAY, idempotency_key="big", memo="", lines=lines)

    assert entry.postings.count() == 100_001
    assert account_balance(account=expense) == 200 * sum(range(1, 501))
    # The replay compares 100k sorted lines by hash and writes nothing.
    assert journal_entry_post(kind="adjustment", period=DAY, idempotency_key="big", memo="",
                              lines=list(reversed(lines))).pk == entry.pk
