"""Sending payouts: at most one Stripe transfer per payout, whatever crashes, retries or races happen.

Per payout (``payout_send``):

1. In a transaction, lock the payout row. Paid, failed or cancelled: nothing to do. Pending: check it may
   still go (the account can receive transfers, nothing is on hold, the balance still covers it, counting
   other payouts in flight), mark it ``sending`` and commit. Sending already: a previous attempt crashed or
   is racing us; go on, the key below makes that safe.
2. Call Stripe with the idempotency key ``transfer:<payout id>`` (``transfer:<id>:<attempt>`` after a
   refused attempt). However often this runs for the payout, Stripe makes one transfer and answers every
   repeat with it.
3. In a transaction, lock the payout again and book the confirmed transfer: the ledger entry payable ->
   Stripe clearing (key ``payout:<payout id>``), the transfer id, status ``paid``.

A worker killed between 2 and 3 leaves the payout ``sending``; running it again (``payout_run_resume``, the
periodic sweep, or Celery redelivering the task) repeats 2 with the same key, gets the same transfer, and
books it once. A batch runs phase 1 for a group of payouts in one transaction (the checks done for all of
them at once), then sends and books them from a pool of threads; a crash after the claim leaves them
``sending`` too, which is safe for the same reason.

Stripe refusing (a decline, no funds, an account that cannot receive) fails the payout with Stripe's message
and books nothing; Stripe unreachable leaves it ``sending`` (the outcome is unknown) to be resent with the
same key.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connections, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from audit.services import audit_record
from payouts import stripe_client
from payouts.errors import PayoutIntegrityError
from payouts.models import ConnectedAccount, Payout, PayoutRun
from payouts.services.runs import utc_today
from royalties.ledger.models import Account, JournalEntry
from royalties.ledger.services import PostingLine, account_get_or_create, journal_entry_post

logger = logging.getLogger(__name__)

PAYOUT_KEY = "payout:{}"
ACTOR_LABEL = "payouts.execution"
# A batch claims this many payouts per transaction (the checks of phase 1 done for all of them at once).
CLAIM_GROUP = 25


def payout_entry_key(payout_id: int) -> str:
    return PAYOUT_KEY.format(payout_id)


def _pause_after_transfer() -> None:
    """Test seam: the crash test's worker sleeps here, between Stripe's answer and our commit, to be killed.

    Only a test worker (settings_test with ROYALTIES_TEST_WORKER=1) reads the variable; production never
    pauses.
    """
    if not getattr(settings, "IS_TEST_WORKER", False):
        return
    seconds = float(os.environ.get("PAYOUTS_TEST_PAUSE_AFTER_TRANSFER") or 0)
    if seconds > 0:
        logger.warning("test pause after transfer: sleeping %.1fs before booking", seconds)
        time.sleep(seconds)


# --- one payout ---------------------------------------------------------------------------------------


def _fail(payout: Payout, *, code: str, message: str, actor_label: str = ACTOR_LABEL) -> None:
    """Mark a locked payout failed (nothing was moved, nothing is booked; the balance stays owed)."""
    before = {"status": payout.status, "attempt": payout.attempt}
    payout.status, payout.failure_code, payout.failure_message = Payout.Status.FAILED, code[:100], message
    payout.failed_at, payout.last_error = timezone.now(), ""
    payout.save(update_fields=["status", "failure_code", "failure_message", "failed_at", "last_error", "updated_at"])
    audit_record(action="payout.failed", obj=payout, actor_label=actor_label, before=before,
                 after={"status": payout.status, "failure_code": payout.failure_code,
                        "failure_message": message[:500], "amount_minor": payout.amount_minor})


def _balances(payouts: list[Payout]) -> tuple[dict[int, int], dict[int, int], dict[int, int]]:
    """For the payouts' contributors (one currency each): owed, held and already in flight, in micro-units.

    The payable accounts are locked first (``FOR UPDATE``, in id order, so claimers never deadlock): two
    payouts of one contributor (two runs, or a retry racing a new run) take turns spending one balance.
    """
    owed: dict[int, int] = defaultdict(int)
    held: dict[int, int] = defaultdict(int)
    in_flight: dict[int, int] = defaultdict(int)
    by_currency: dict[str, list[int]] = defaultdict(list)
    for payout in payouts:
        by_currency[payout.currency].append(payout.contributor_id)
    claiming = [p.pk for p in payouts]
    for currency, contributor_ids in by_currency.items():
        accounts = Account.objects.filter(contributor_id__in=contributor_ids, currency=currency,
                                          kind__in=[Account.Kind.CONTRIBUTOR_PAYABLE, Account.Kind.HOLD])
        list(accounts.filter(kind=Account.Kind.CONTRIBUTOR_PAYABLE).order_by("pk").select_for_update()
             .values_list("pk", flat=True))
        rows = accounts.order_by().values("contributor_id", "kind").annotate(total=Sum("postings__amount_micros"))
        for row in rows:
            # Liabilities are credit-normal: their raw balance is negative when the platform owes the money.
            target = owed if row["kind"] == Account.Kind.CONTRIBUTOR_PAYABLE else held
            target[row["contributor_id"]] = -int(row["total"] or 0)
        sending = (Payout.objects.filter(contributor_id__in=contributor_ids, currency=currency,
                                         status=Payout.Status.SENDING).exclude(pk__in=claiming)
                   .values("contributor_id").annotate(total=Sum("amount_micros")).order_by())
        for row in sending:
            in_flight[row["contributor_id"]] = int(row["total"] or 0)
    return owed, held, in_flight


def _preflight(payout: Payout, owed: int, held: int, in_flight: int) -> tuple[str, str] | None:
    """Why a pending payout must not be sent now, as (code, message); None when it may go."""
    account = payout.connected_account
    if account.transfers_capability != ConnectedAccount.Capability.ACTIVE:
        return "account_not_ready", (f"the Stripe account cannot receive transfers now "
                                     f"(transfers {account.transfers_capability})")
    if account.stripe_account_id != payout.stripe_account_id:
        return "account_changed", "the contributor's Stripe account changed since the run was approved"
    if held > 0:
        return "on_hold", f"{held} micro-units of the contributor's balance were put on hold after the run was drafted"
    if owed - in_flight < payout.amount_micros:
        return "balance_changed", (
            f"the payable balance is now {owed} micro-units ({in_flight} already being sent), less than this "
            f"payout's {payout.amount_micros}: it changed since the run was drafted")
    return None


def _claim_many(payout_ids: Sequence[int]) -> list[Payout]:
    """Phase 1 for several payouts in one transaction: those to send now, locked, checked and marked sending.

    A payout already ``sending`` (a crashed or concurrent attempt) is returned as it is, to be resent with the
    same key; one paid, failed or cancelled, or whose run is not executing, is skipped; one that may no longer
    go (account, hold, balance) fails here without a call to Stripe.
    """
    with transaction.atomic():
        # Lock the payout rows only (of=self): the run and account rows are read, not locked.
        payouts = list(Payout.objects.select_for_update(of=("self",)).select_related("run", "connected_account")
                       .filter(pk__in=list(payout_ids)).order_by("pk"))
        resend = [p for p in payouts if p.status == Payout.Status.SENDING]
        pending = [p for p in payouts
                   if p.status == Payout.Status.PENDING and p.run.status == PayoutRun.Status.EXECUTING]
        if not pending:
            return resend
        owed, held, in_flight = _balances(pending)
        now = timezone.now()
        claimed = []
        for payout in pending:
            cid = payout.contributor_id
            problem = _preflight(payout, owed[cid], held[cid], in_flight[cid])
            if problem is not None:
                _fail(payout, code=problem[0], message=problem[1])
                continue
            payout.status, payout.sending_started_at, payout.updated_at = Payout.Status.SENDING, now, now
            claimed.append(payout)
            audit_record(action="payout.sending", obj=payout, actor_label=ACTOR_LABEL,
                         before={"status": Payout.Status.PENDING},
                         after={"status": payout.status, "attempt": payout.attempt,
                                "amount_minor": payout.amount_minor, "destination": payout.stripe_account_id})
        Payout.objects.bulk_update(claimed, ["status", "sending_started_at", "updated_at"])
        return resend + claimed


def _transfer(payout: Payout) -> Any:
    """Phase 2: the Stripe call (outside any transaction: it may take seconds, and retries with backoff)."""
    return stripe_client.transfer_create(
        payout_id=payout.pk, amount_minor=payout.amount_minor, currency=payout.currency,
        destination=payout.stripe_account_id, transfer_group=payout.run.transfer_group,
        metadata={"run_id": payout.run_id, "contributor_id": payout.contributor_id, "attempt": payout.attempt},
        description=f"Royalties payout #{payout.pk} (run #{payout.run_id})",
        attempt=None if payout.attempt == 1 else payout.attempt,
    )


@dataclass(frozen=True)
class Confirmed:
    """A transfer Stripe confirmed for a payout, not yet booked."""

    payout_id: int
    transfer: dict[str, Any]
    read_at: dt.datetime


def _send_transfer(payout_id: int) -> Confirmed | Payout:
    """Phases 1 and 2: claim and call Stripe. The confirmed transfer to book, or the payout as it now stands
    (nothing to send, or refused by Stripe and failed).

    Raises ``stripe_client.StripeUnavailable`` when Stripe could not be reached: the payout stays
    ``sending`` and is resent with the same key later.
    """
    claimed = _claim_many([payout_id])
    if not claimed:
        return Payout.objects.get(pk=payout_id)
    return _send_claimed(claimed[0])


def _send_claimed(payout: Payout) -> Confirmed | Payout:
    """Phase 2 for a payout claimed (marked sending): the Stripe call, and a refusal recorded."""
    read_at = timezone.now()
    try:
        transfer = _transfer(payout)
    except stripe_client.StripeUnavailable as exc:
        Payout.objects.filter(pk=payout.pk, status=Payout.Status.SENDING).update(
            last_error=str(exc)[:2000], updated_at=timezone.now())
        raise
    except stripe_client.StripeFailure as exc:
        # Stripe refused: no transfer exists for this key. The payout fails with Stripe's own words.
        with transaction.atomic():
            locked = Payout.objects.select_for_update().get(pk=payout.pk)
            if locked.status == Payout.Status.SENDING:
                _fail(locked, code=exc.code or type(exc).__name__, message=exc.message)
            return locked
    _pause_after_transfer()
    return Confirmed(payout_id=payout.pk, transfer=transfer.to_dict(), read_at=read_at)


def payout_send(*, payout_id: int) -> Payout:
    """Send one payout exactly once (see the module docstring); returns it in its new state.

    Raises ``stripe_client.StripeUnavailable`` when Stripe could not be reached: the payout stays
    ``sending`` and is resent with the same key later.
    """
    outcome = _send_transfer(payout_id)
    if isinstance(outcome, Payout):
        return outcome
    return payout_settle(payout_id=outcome.payout_id, transfer=outcome.transfer, read_at=outcome.read_at)


def _check_transfer(payout: Payout, transfer: dict[str, Any]) -> None:
    destination = transfer.get("destination")
    destination = destination.get("id") if isinstance(destination, dict) else destination
    problems = []
    if int(transfer.get("amount", -1)) != payout.amount_minor:
        problems.append(f"amount {transfer.get('amount')} != {payout.amount_minor}")
    if str(transfer.get("currency", "")).lower() != payout.currency.lower():
        problems.append(f"currency {transfer.get('currency')} != {payout.currency}")
    if destination != payout.stripe_account_id:
        problems.append(f"destination {destination} != {payout.stripe_account_id}")
    if str((transfer.get("metadata") or {}).get("payout_id")) != str(payout.pk):
        problems.append(f"metadata payout_id {(transfer.get('metadata') or {}).get('payout_id')} != {payout.pk}")
    if problems:
        raise PayoutIntegrityError(f"transfer {transfer.get('id')} does not match payout #{payout.pk}: "
                                   + "; ".join(problems), field="transfer")


def payout_entry_post(*, payout: Payout, transfer_id: str) -> JournalEntry:
    """The payout's ledger entry (debit payable, credit Stripe clearing), once per payout.

    Looked up by key first: a replay on a later day must find the entry, not post it again in another period.
    """
    key = payout_entry_key(payout.pk)
    existing = JournalEntry.objects.filter(idempotency_key=key).first()
    if existing is not None:
        return existing
    payable = Account.objects.filter(kind=Account.Kind.CONTRIBUTOR_PAYABLE, currency=payout.currency,
                                     contributor_id=payout.contributor_id).values_list("pk", flat=True).first()
    if payable is None:  # a balance was paid, so the account exists; created here only for a hand-made payout
        payable = account_get_or_create(kind=Account.Kind.CONTRIBUTOR_PAYABLE, currency=payout.currency,
                                        contributor=payout.contributor_id).pk
    clearing = account_get_or_create(kind=Account.Kind.STRIPE_CLEARING, currency=payout.currency)
    return journal_entry_post(
        kind=JournalEntry.Kind.PAYOUT, period=utc_today(), idempotency_key=key,
        memo=f"Payout #{payout.pk} of run #{payout.run_id}: Stripe transfer {transfer_id}",
        lines=[PostingLine(payable, payout.amount_micros), PostingLine(clearing, -payout.amount_micros)],
        created_by_label=ACTOR_LABEL,
        metadata={"payout_id": payout.pk, "run_id": payout.run_id, "contributor_id": payout.contributor_id,
                  "currency": payout.currency, "stripe_transfer_id": transfer_id, "amount_minor": payout.amount_minor},
    )


def payout_settle(*, payout_id: int, transfer: dict[str, Any], read_at: dt.datetime,
                  reason: str = "transfer confirmed by Stripe") -> Payout:
    """Phase 3: book a transfer Stripe confirmed for the payout (idempotent: a paid payout is returned as is).

    The ledger locks the day's period while it posts, so every payout of every run books through it in turn:
    the audit line is written before posting, to keep that turn short. The transfer's mirror
    (``StripeTransfer``) is written by the ``transfer.created`` webhook, from a fresh read of Stripe.
    """
    with transaction.atomic():
        # of=self: every payout of the run is booked concurrently; locking their run row would queue them all.
        payout = Payout.objects.select_for_update(of=("self",)).select_related("run").get(pk=payout_id)
        if payout.is_settled:
            return payout
        _check_transfer(payout, transfer)
        audit_record(action="payout.paid", obj=payout, actor_label=ACTOR_LABEL, before={"status": payout.status},
                     reason=reason,
                     after={"status": Payout.Status.PAID, "stripe_transfer_id": transfer["id"],
                            "ledger_entry_key": payout_entry_key(payout.pk), "amount_minor": payout.amount_minor,
                            "amount_micros": payout.amount_micros, "attempt": payout.attempt})
        entry = payout_entry_post(payout=payout, transfer_id=transfer["id"])
        payout.status, payout.stripe_transfer_id, payout.ledger_entry = Payout.Status.PAID, transfer["id"], entry
        payout.paid_at, payout.last_error = timezone.now(), ""
        payout.save(update_fields=["status", "stripe_transfer_id", "ledger_entry", "paid_at", "last_error",
                                   "updated_at"])
    return payout


# --- a batch of payouts, and the run ------------------------------------------------------------------


def _send_and_book(payout: Payout, errors: list[BaseException]) -> None:
    """Phases 2 and 3 for a claimed payout, errors collected (one payout's trouble never stops the others)."""
    try:
        outcome = _send_claimed(payout)
        if isinstance(outcome, Confirmed):
            payout_settle(payout_id=outcome.payout_id, transfer=outcome.transfer, read_at=outcome.read_at)
    except stripe_client.StripeUnavailable as exc:
        # Left sending (outcome unknown); payout_run_resume or the periodic sweep resends it with its key.
        logger.warning("payout %s: Stripe unavailable, left sending for a later resend: %s", payout.pk, exc)
    except Exception as exc:
        logger.exception("payout %s: unexpected error", payout.pk)
        errors.append(exc)


def payout_batch_send(*, run_id: int, payout_ids: Sequence[int], threads: int | None = None) -> dict[str, int]:
    """Send a batch of a run's payouts with up to ``threads`` transfers in flight; then maybe finish the run.

    One thread claims payouts a group at a time (phase 1, one transaction per group, running at most a few
    groups ahead of Stripe); ``threads`` senders each call Stripe and book what it confirmed (phases 2 and 3).
    Each thread has its own database connection (Django's are per thread), closed when it is done. A crash
    leaves the claimed payouts ``sending``: a resume resends them with their keys and books each once.

    An unexpected error in one payout does not stop the others; the first one is raised after the batch.
    """
    ids = list(payout_ids)
    width = max(1, min(threads or settings.PAYOUTS_EXECUTION_THREADS, len(ids)))
    errors: list[BaseException] = []
    if width == 1:
        for payout_id in ids:
            for payout in _claim_many([payout_id]):
                _send_and_book(payout, errors)
    else:
        _pipeline(run_id, ids, width, errors)
    run = payout_run_finalize(run_id=run_id)
    if errors:
        raise errors[0]
    counts = payout_run_counts(run=run)
    return {"sent": len(ids), **counts}


def _pipeline(run_id: int, ids: list[int], width: int, errors: list[BaseException]) -> None:
    to_send: queue.Queue[Payout | None] = queue.Queue(maxsize=2 * width)

    def claimer() -> None:
        try:
            for start in range(0, len(ids), CLAIM_GROUP):
                for payout in _claim_many(ids[start:start + CLAIM_GROUP]):
                    to_send.put(payout)  # blocks while the senders are this far behind
        except Exception as exc:
            logger.exception("payout run %s: claiming failed", run_id)
            errors.append(exc)
        finally:
            for _ in range(width):
                to_send.put(None)
            connections.close_all()  # this thread's connections only

    def sender() -> None:
        try:
            while (payout := to_send.get()) is not None:
                _send_and_book(payout, errors)
        finally:
            connections.close_all()

    claims = threading.Thread(target=claimer, name=f"payout-claim-{run_id}", daemon=True)
    senders = [threading.Thread(target=sender, name=f"payout-send-{run_id}-{i}", daemon=True) for i in range(width)]
    for thread in (claims, *senders):
        thread.start()
    for thread in (claims, *senders):
        thread.join()


def payout_run_dispatch(*, run_id: int) -> int:
    """Queue the unsent and in-doubt payouts of an executing run as batch tasks; returns how many payouts.

    With a broker the batches run on any worker in parallel; in-process (no broker) they run here, one after
    the other, each with its own pool of threads.
    """
    from payouts.tasks import payout_batch_send_task

    run = PayoutRun.objects.filter(pk=run_id).first()
    if run is None or run.status != PayoutRun.Status.EXECUTING:
        return 0
    ids = list(run.payouts.filter(status__in=Payout.IN_FLIGHT_STATUSES).order_by("id").values_list("id", flat=True))
    if not ids:
        payout_run_finalize(run_id=run_id)
        return 0
    size = settings.PAYOUTS_BATCH_SIZE
    for start in range(0, len(ids), size):
        payout_batch_send_task.delay(run_id, ids[start:start + size])
    return len(ids)


def payout_run_counts(*, run: PayoutRun) -> dict[str, int]:
    """Payouts by status, with amounts paid: the progress of an executing run."""
    rows = run.payouts.values("status").annotate(n=Count("id"), minor=Sum("amount_minor"))
    counts = dict.fromkeys(Payout.Status.values, 0)
    paid_minor = 0
    for row in rows:
        counts[row["status"]] = row["n"]
        if row["status"] in Payout.SETTLED_STATUSES:
            paid_minor += int(row["minor"] or 0)
    return {**counts, "paid_minor": paid_minor}


def payout_run_finalize(*, run_id: int) -> PayoutRun:
    """Close an executing run once no payout is pending or sending: completed, or completed with failures."""
    with transaction.atomic():
        run = PayoutRun.objects.select_for_update().get(pk=run_id)
        if run.status != PayoutRun.Status.EXECUTING:
            return run
        waiting = run.payouts.filter(status__in=Payout.IN_FLIGHT_STATUSES).exists()
        if waiting:
            return run
        stats = run.payouts.aggregate(
            failed=Count("id", filter=Q(status__in=[Payout.Status.FAILED, Payout.Status.CANCELLED])),
            paid=Count("id", filter=Q(status__in=Payout.SETTLED_STATUSES)),
            paid_minor=Sum("amount_minor", filter=Q(status__in=Payout.SETTLED_STATUSES)),
        )
        before = run.status
        run.status = (PayoutRun.Status.COMPLETED_WITH_FAILURES if stats["failed"]
                      else PayoutRun.Status.COMPLETED)
        run.completed_at = timezone.now()
        run.save(update_fields=["status", "completed_at"])
        audit_record(action="payout_run.complete", obj=run, actor_label=ACTOR_LABEL, before={"status": before},
                     after={"status": run.status, "paid": stats["paid"], "paid_minor": int(stats["paid_minor"] or 0),
                            "failed": stats["failed"]})
        transaction.on_commit(lambda: _enqueue_statements(run.pk))
    logger.info("payout run %s finished: %s", run.pk, run.status)
    return run


def _enqueue_statements(run_id: int) -> None:
    from payouts.tasks import statements_issue_for_run_task

    statements_issue_for_run_task.delay(run_id)
