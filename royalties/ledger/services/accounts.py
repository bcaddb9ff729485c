"""Ledger accounts: found or created by identity (kind, program, contributor, currency), never changed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from royalties.ledger.errors import LedgerValidationError
from royalties.ledger.models import Account, RoyaltyProgram
from royalties.ledger.services.common import BULK_BATCH, as_currency, as_int, chunks

_CONTRIBUTOR_KINDS = {Account.Kind.CONTRIBUTOR_PAYABLE, Account.Kind.HOLD}
_PLATFORM_KINDS = {Account.Kind.STRIPE_CLEARING, Account.Kind.CASH}


def _contributor_model():
    # The ledger imports no other app: reach the model through the relation the string reference built.
    return Account._meta.get_field("contributor").related_model


def _id_of(value: Any, field: str) -> int:
    pk = getattr(value, "pk", value)
    return as_int(pk, field)


def account_get_or_create(
    *, kind: str, currency: str, program: RoyaltyProgram | None = None, contributor: Any = None
) -> Account:
    """The account with this identity, created on first use. ``program``/``contributor`` as the kind needs."""
    if kind not in Account.Kind.values:
        raise LedgerValidationError(f"kind must be one of {', '.join(Account.Kind.values)}, got {kind!r}", field="kind")
    currency = as_currency(currency)
    if kind == Account.Kind.ROYALTY_EXPENSE:
        if not isinstance(program, RoyaltyProgram) or contributor is not None:
            raise LedgerValidationError("a royalty expense account belongs to a program (and no contributor)",
                                        field="program")
        return Account.objects.get_or_create(kind=kind, currency=currency, program=program, contributor=None)[0]
    if kind in _CONTRIBUTOR_KINDS:
        if contributor is None or program is not None:
            raise LedgerValidationError(f"a {kind} account belongs to a contributor (and no program)",
                                        field="contributor")
        contributor_id = _id_of(contributor, "contributor")
        if not _contributor_model()._default_manager.filter(pk=contributor_id).exists():
            raise LedgerValidationError(f"contributor {contributor_id} does not exist", field="contributor")
        return Account.objects.get_or_create(
            kind=kind, currency=currency, program=None, contributor_id=contributor_id
        )[0]
    if program is not None or contributor is not None:
        raise LedgerValidationError(f"a {kind} account is the platform's: give no program or contributor",
                                    field="kind")
    return Account.objects.get_or_create(kind=kind, currency=currency, program=None, contributor=None)[0]


def accounts_for_contributors(*, kind: str, currency: str, contributor_ids: Sequence[int]) -> dict[int, int]:
    """Map contributor id -> account id for many contributors at once, creating missing accounts in bulk."""
    if kind not in _CONTRIBUTOR_KINDS:
        raise LedgerValidationError(f"kind must be a contributor kind, got {kind!r}", field="kind")
    currency = as_currency(currency)
    wanted = sorted({int(c) for c in contributor_ids})
    found = _contributor_accounts(kind, currency, wanted)
    missing = [c for c in wanted if c not in found]
    if missing:
        existing = set()
        contributor_model = _contributor_model()
        for part in chunks(missing):
            existing.update(contributor_model._default_manager.filter(pk__in=list(part)).values_list("pk", flat=True))
        unknown = [c for c in missing if c not in existing]
        if unknown:
            raise LedgerValidationError(
                f"{len(unknown)} contributor id(s) do not exist, e.g. {unknown[:5]}", field="contributor_id"
            )
        # ignore_conflicts: a concurrent poster may create the same account; the re-read below finds it.
        Account.objects.bulk_create(
            [Account(kind=kind, currency=currency, contributor_id=c) for c in missing],
            batch_size=BULK_BATCH, ignore_conflicts=True,
        )
        found.update(_contributor_accounts(kind, currency, missing))
    return found


def _contributor_accounts(kind: str, currency: str, contributor_ids: list[int]) -> dict[int, int]:
    found: dict[int, int] = {}
    for part in chunks(contributor_ids):
        rows = Account.objects.filter(kind=kind, currency=currency, contributor_id__in=list(part))
        found.update(rows.values_list("contributor_id", "id"))
    return found
