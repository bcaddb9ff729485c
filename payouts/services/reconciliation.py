"""Reconciling a payout run: our payouts and ledger postings against Stripe's transfers and balance transactions.

Everything is read fresh from Stripe (never from the mirrors) for the run's ``transfer_group``, and every
disagreement is listed, each with a code, the payout and transfer it concerns, and what differs:

- ``transfer_missing``: a payout marked paid whose transfer Stripe does not list in the group;
- ``transfer_without_payout``: a transfer in the group that no paid payout of ours records;
- ``amount_mismatch`` / ``currency_mismatch`` / ``destination_mismatch``: transfer and payout disagree;
- ``ledger_entry_missing`` / ``ledger_amount_mismatch``: the payout's booking is absent or not the transfer;
- ``ledger_entry_without_transfer``: a payout booking whose payout is not paid;
- ``reversal_mismatch``: Stripe reversed another amount than our returns booked;
- ``balance_transaction_missing`` / ``balance_transaction_mismatch``: the platform balance did not move by
  the transfer (type ``transfer``, amount ``-transfer``);
- ``payout_unsettled``: a payout still sending (outcome unknown) or pending in a finished run.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Sum

from audit.services import audit_record
from payouts import stripe_client
from payouts.errors import PayoutValidationError
from payouts.models import Payout, PayoutRun, PayoutRunReconciliation
from payouts.money import minor_to_micros
from royalties.ledger.models import Account, JournalEntry, Posting

logger = logging.getLogger(__name__)

# Stripe's clock and ours may differ; balance transactions are read from this long before execution began.
WINDOW_MARGIN = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Mismatch:
    code: str
    message: str
    payout_id: int | None = None
    stripe_transfer_id: str = ""

    def __str__(self) -> str:
        where = f"payout #{self.payout_id}" if self.payout_id else "run"
        transfer = f" transfer {self.stripe_transfer_id}" if self.stripe_transfer_id else ""
        return f"[{self.code}] {where}{transfer}: {self.message}"


@dataclass
class ReconciliationResult:
    run_id: int
    mismatches: list[Mismatch] = field(default_factory=list)
    payouts_checked: int = 0
    transfers_checked: int = 0
    balance_transactions_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def add(self, code: str, message: str, *, payout_id: int | None = None, transfer_id: str = "") -> None:
        self.mismatches.append(Mismatch(code=code, message=message, payout_id=payout_id,
                                        stripe_transfer_id=transfer_id))


def _id(value: Any) -> str:
    return str(value.get("id") if isinstance(value, dict) else value or "")


def _ledger_by_payout(run: PayoutRun) -> tuple[dict[int, dict[str, int]], dict[int, int]]:
    """Per payout: the payable debit of its payout entry (key ``payout:<id>``), and its returns booked."""
    booked: dict[int, dict[str, int]] = {}
    rows = (Posting.objects.filter(entry__kind=JournalEntry.Kind.PAYOUT, entry__metadata__run_id=run.pk)
            .values("entry_id", "entry__idempotency_key", "account__kind")
            .annotate(total=Sum("amount_micros")))
    for row in rows:
        key = row["entry__idempotency_key"]
        if not key.startswith("payout:") or not key.removeprefix("payout:").isdigit():
            continue
        entry = booked.setdefault(int(key.removeprefix("payout:")), {"entry_id": row["entry_id"]})
        entry[row["account__kind"]] = entry.get(row["account__kind"], 0) + int(row["total"])
    returns: dict[int, int] = defaultdict(int)
    return_rows = (Posting.objects.filter(entry__kind=JournalEntry.Kind.PAYOUT_RETURN, entry__metadata__run_id=run.pk,
                                          account__kind=Account.Kind.STRIPE_CLEARING)
                   .values_list("entry__metadata", "amount_micros"))
    for metadata, amount in return_rows:
        returns[int(metadata["payout_id"])] += int(amount)
    return booked, returns


def _check_payout(result: ReconciliationResult, payout: Payout, transfer: dict[str, Any] | None,
                  booked: dict[str, int] | None, returned_micros: int, run: PayoutRun) -> None:
    pid = payout.pk
    if payout.status in (Payout.Status.SENDING,) or (
            payout.status == Payout.Status.PENDING and run.status in PayoutRun.FINISHED_STATUSES):
        result.add("payout_unsettled", f"payout is {payout.status}: Stripe's answer was never booked",
                   payout_id=pid, transfer_id=_id(transfer) if transfer else "")
    if payout.is_settled:
        if transfer is None:
            result.add("transfer_missing", f"marked {payout.status} but Stripe lists no transfer "
                       f"{payout.stripe_transfer_id} in group {run.transfer_group}", payout_id=pid,
                       transfer_id=payout.stripe_transfer_id)
        if booked is None:
            result.add("ledger_entry_missing", f"marked {payout.status} but no ledger entry payout:{pid} exists",
                       payout_id=pid, transfer_id=payout.stripe_transfer_id)
    elif booked is not None:
        result.add("ledger_entry_without_transfer",
                   f"ledger entry #{booked['entry_id']} books this payout, which is {payout.status}", payout_id=pid)
    if transfer is not None:
        tid = transfer["id"]
        if int(transfer["amount"]) != payout.amount_minor:
            result.add("amount_mismatch", f"Stripe transferred {transfer['amount']}, the payout is "
                       f"{payout.amount_minor} minor units", payout_id=pid, transfer_id=tid)
        if str(transfer["currency"]).lower() != payout.currency.lower():
            result.add("currency_mismatch", f"Stripe {transfer['currency']}, payout {payout.currency}",
                       payout_id=pid, transfer_id=tid)
        if _id(transfer.get("destination")) != payout.stripe_account_id:
            result.add("destination_mismatch", f"Stripe sent to {_id(transfer.get('destination'))}, the payout "
                       f"to {payout.stripe_account_id}", payout_id=pid, transfer_id=tid)
        stripe_micros = minor_to_micros(amount_minor=int(transfer["amount"]), currency=payout.currency)
        if booked is not None:
            payable = booked.get(Account.Kind.CONTRIBUTOR_PAYABLE, 0)
            clearing = booked.get(Account.Kind.STRIPE_CLEARING, 0)
            if payable != stripe_micros or clearing != -stripe_micros:
                result.add("ledger_amount_mismatch", f"ledger entry #{booked['entry_id']} books payable "
                           f"{payable:+d} / clearing {clearing:+d} micro-units, Stripe moved {stripe_micros}",
                           payout_id=pid, transfer_id=tid)
        reversed_micros = minor_to_micros(amount_minor=int(transfer.get("amount_reversed") or 0),
                                          currency=payout.currency)
        if reversed_micros != returned_micros:
            result.add("reversal_mismatch", f"Stripe reversed {reversed_micros} micro-units, the ledger returned "
                       f"{returned_micros}", payout_id=pid, transfer_id=tid)


def _balance_transactions(run: PayoutRun, transfers: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The platform's ``transfer`` balance transactions of this run's group, by source transfer id."""
    if not transfers:
        return {}
    start = run.execution_started_at or run.created_at
    created = [int(t["created"]) for t in transfers.values()]
    gte = min(int((start - WINDOW_MARGIN).timestamp()), min(created))
    found: dict[str, dict[str, Any]] = {}
    for txn in stripe_client.balance_transaction_list(type="transfer", expand_source=True, created_gte=gte):
        data = txn.to_dict()
        source = data.get("source")
        if isinstance(source, dict) and source.get("transfer_group") == run.transfer_group:
            found[source["id"]] = data
        elif _id(source) in transfers:
            found[_id(source)] = data
    return found


def payout_run_reconcile(*, run: PayoutRun | int, actor: Any = None, actor_label: str = "") -> ReconciliationResult:
    """Compare one run with Stripe; store and audit the result (reads Stripe first, writes once at the end)."""
    run = PayoutRun.objects.filter(pk=getattr(run, "pk", run)).first()
    if run is None:
        raise PayoutValidationError("no such payout run", field="run")
    result = ReconciliationResult(run_id=run.pk)
    transfers = {t.id: t.to_dict() for t in stripe_client.transfer_list(transfer_group=run.transfer_group)}
    result.transfers_checked = len(transfers)
    payouts = list(run.payouts.order_by("id"))
    result.payouts_checked = len(payouts)
    booked, returns = _ledger_by_payout(run)
    known: set[str] = set()
    for payout in payouts:
        transfer = transfers.get(payout.stripe_transfer_id) if payout.stripe_transfer_id else None
        if payout.stripe_transfer_id:
            known.add(payout.stripe_transfer_id)
        elif payout.status in (Payout.Status.SENDING, Payout.Status.PENDING):
            # Not booked: the transfer Stripe may hold for it is found by the payout id it carries.
            transfer = next((t for t in transfers.values()
                             if str((t.get("metadata") or {}).get("payout_id")) == str(payout.pk)), None)
            if transfer is not None:
                known.add(transfer["id"])
        _check_payout(result, payout, transfer, booked.get(payout.pk), returns.get(payout.pk, 0), run)
    for tid, transfer in sorted(transfers.items()):
        if tid not in known:
            payout_ref = (transfer.get("metadata") or {}).get("payout_id", "?")
            result.add("transfer_without_payout", f"{transfer['amount']} {transfer['currency']} to "
                       f"{_id(transfer.get('destination'))} (metadata payout_id {payout_ref}) is recorded by no paid "
                       "payout of this run", transfer_id=tid)
    for pid in sorted(set(booked) - {p.pk for p in payouts}):
        result.add("ledger_entry_without_transfer", f"ledger entry payout:{pid} names this run but the payout "
                   "is not one of its payouts", payout_id=pid)
    txns = _balance_transactions(run, transfers)
    result.balance_transactions_checked = len(txns)
    for tid, transfer in sorted(transfers.items()):
        txn = txns.get(tid)
        if txn is None:
            result.add("balance_transaction_missing", "no balance transaction of type transfer for it",
                       transfer_id=tid)
        elif txn.get("type") != "transfer" or int(txn["amount"]) != -int(transfer["amount"]):
            result.add("balance_transaction_mismatch", f"balance transaction {txn['id']} is {txn.get('type')} "
                       f"{txn['amount']}, expected transfer {-int(transfer['amount'])}", transfer_id=tid)
    with transaction.atomic():
        record = PayoutRunReconciliation.objects.create(
            run=run, ran_by=actor if getattr(actor, "is_authenticated", False) else None,
            ran_by_label=actor_label or getattr(actor, "email", "") or "system",
            mismatch_count=len(result.mismatches), mismatches=[asdict(m) for m in result.mismatches],
            payouts_checked=result.payouts_checked, transfers_checked=result.transfers_checked,
            balance_transactions_checked=result.balance_transactions_checked,
        )
        audit_record(action="payout_run.reconcile", obj=run, actor=actor, actor_label=actor_label,
                     after={"reconciliation": record.pk, "mismatches": record.mismatch_count,
                            "codes": sorted({m.code for m in result.mismatches}),
                            "payouts": result.payouts_checked, "transfers": result.transfers_checked})
    logger.info("payout run %s reconciled: %d mismatch(es)", run.pk, len(result.mismatches))
    return result
