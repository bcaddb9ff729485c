"""Payout runs: drafting from the ledger's payable balances, and every lifecycle transition (audited).

``draft -> pending_approval -> approved -> executing -> completed | completed_with_failures``, plus
``cancelled``. Each transition locks the run row, checks the state it starts from, and writes one audit
event, in one transaction. The approver must be a finance user other than the run's creator (and other than
whoever submitted it): refused here with ``MakerCheckerError``, and by a database constraint underneath.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from accounts.roles import FINANCE, user_has_role
from audit.services import audit_record
from payouts.errors import MakerCheckerError, PayoutRunStateError, PayoutValidationError
from payouts.models import ConnectedAccount, Payout, PayoutExclusion, PayoutRun, Statement
from payouts.money import format_micros, format_minor, micros_to_minor
from royalties.ledger.errors import TermsError
from royalties.ledger.models import Account, JournalEntry, RoyaltyProgram
from royalties.ledger.selectors import account_balances, contributor_payable_balances, program_terms_for

logger = logging.getLogger(__name__)

Status = PayoutRun.Status
Reason = PayoutExclusion.Reason


def utc_today() -> dt.date:
    return timezone.now().astimezone(dt.UTC).date()


def _finance_user(user: Any, field: str) -> Any:
    if user is None or not getattr(user, "pk", None) or not getattr(user, "is_authenticated", False):
        raise PayoutValidationError(f"{field} must be a signed-in finance user", field=field)
    if not user_has_role(user, FINANCE):
        raise MakerCheckerError(f"{field} must hold the finance role", field=field)
    return user


def _currency(value: Any) -> str:
    if not isinstance(value, str) or len(value.strip()) != 3 or not value.strip().isalpha():
        raise PayoutValidationError(f"currency must be a three-letter ISO 4217 code, got {value!r}", field="currency")
    return value.strip().upper()


def _lock(run: PayoutRun | int) -> PayoutRun:
    pk = getattr(run, "pk", run)
    try:
        return PayoutRun.objects.select_for_update().get(pk=pk)
    except PayoutRun.DoesNotExist:
        raise PayoutValidationError(f"payout run {pk} does not exist", field="run") from None


def _require(run: PayoutRun, allowed: Iterable[str], action: str) -> None:
    allowed = tuple(allowed)
    if run.status not in allowed:
        names = ", ".join(Status(s).label.lower() for s in allowed)
        raise PayoutRunStateError(
            f"run #{run.pk} is {run.get_status_display().lower()}; only a run that is {names} can be {action}",
            field="status",
        )


def _audit(run: PayoutRun, action: str, actor: Any, before: str | None, reason: str = "", **after: Any) -> None:
    audit_record(action=f"payout_run.{action}", obj=run, actor=actor,
                 before={"status": before} if before else None, after={"status": run.status, **after},
                 reason=reason)


# --- the threshold ------------------------------------------------------------------------------------


def payout_run_threshold(*, currency: str, as_of: dt.date) -> tuple[int, str]:
    """The smallest payout of a run, in minor units, and where that figure comes from.

    A contributor's payable balance pools every program paying in the currency, so one figure applies per
    run: ``ROYALTIES_PAYOUT_THRESHOLD_MINOR`` when set, else the HIGHEST ``payout_threshold_minor`` among the
    programs' terms in force on ``as_of`` in that currency (no payout is smaller than any program allows),
    and never below one minor unit (Stripe moves no empty transfer).
    """
    currency = _currency(currency)
    configured = int(settings.ROYALTIES_PAYOUT_THRESHOLD_MINOR or 0)
    if configured > 0:
        return configured, "setting ROYALTIES_PAYOUT_THRESHOLD_MINOR"
    best: tuple[int, str] | None = None
    for program in RoyaltyProgram.objects.order_by("pk"):
        try:
            terms = program_terms_for(program=program, day=as_of)
        except TermsError:
            continue
        if terms.currency != currency:
            continue
        if best is None or terms.payout_threshold_minor > best[0]:
            best = (terms.payout_threshold_minor, f"{program.name} terms v{terms.version}")
    if best is None:
        return 1, f"no royalty program pays in {currency} on {as_of}: one minor unit"
    value, origin = best
    if value < 1:
        return 1, f"programs in force on {as_of} set no threshold: one minor unit"
    return value, f"highest payout threshold in force on {as_of} ({origin})"


# --- drafting -----------------------------------------------------------------------------------------


def _as_of(value: Any, currency: str) -> dt.date:
    today = utc_today()
    if value is None:
        value = today
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise PayoutValidationError(f"as_of must be a date, got {value!r}", field="as_of")
    if value > today:
        raise PayoutValidationError(f"as_of {value} is in the future (today is {today} UTC)", field="as_of")
    # Balances as of an earlier day would not yet reflect payouts already booked after it: paid twice.
    last_payout_day = JournalEntry.objects.filter(
        kind__in=[JournalEntry.Kind.PAYOUT, JournalEntry.Kind.PAYOUT_RETURN], metadata__currency=currency,
    ).aggregate(day=Max("period__day"))["day"]
    if last_payout_day is not None and value < last_payout_day:
        raise PayoutValidationError(
            f"as_of {value} is before {last_payout_day}, the day of the latest {currency} payout in the ledger; "
            "a run pays balances that already include every earlier payout", field="as_of")
    # Statements chain by period; a run may not reach back into a period already stated.
    last_stated = Statement.objects.filter(currency=currency).aggregate(day=Max("period_end"))["day"]
    if last_stated is not None and value < last_stated:
        raise PayoutValidationError(
            f"as_of {value} is before {last_stated}, the end of the latest {currency} statement period",
            field="as_of")
    return value


def _held_by_contributor(currency: str) -> dict[int, int]:
    """Contributor id -> micro-units currently on hold (held now, whatever the cut-off: a hold stops payment)."""
    raw = account_balances(kind=Account.Kind.HOLD, currency=currency)
    owners = dict(Account.objects.filter(pk__in=list(raw)).values_list("pk", "contributor_id"))
    return {owners[pk]: -total for pk, total in raw.items() if total < 0}


def _open_payouts(currency: str, contributor_ids: list[int]) -> dict[int, Payout]:
    """Payouts not finished in runs not cancelled: pending, sending, or failed and awaiting retry or release."""
    rows = (
        Payout.objects.filter(currency=currency, status__in=[*Payout.IN_FLIGHT_STATUSES, Payout.Status.FAILED])
        .exclude(run__status=Status.CANCELLED)
        .order_by("id")
    )
    found: dict[int, Payout] = {}
    wanted = set(contributor_ids)
    for payout in rows.only("id", "run_id", "contributor_id", "status"):
        if payout.contributor_id in wanted:
            found.setdefault(payout.contributor_id, payout)
    return found


@transaction.atomic
def payout_run_create(*, currency: str, created_by: Any, as_of: dt.date | None = None, note: str = "") -> PayoutRun:
    """Draft a run: every contributor owed at least the threshold, with a ready account and no hold.

    Everyone else with money owed or held is listed as an exclusion with the reason; their balances (and
    the sub-cent remainders of those paid) stay on the ledger and carry forward.
    """
    created_by = _finance_user(created_by, "created_by")
    currency = _currency(currency)
    if not isinstance(note, str):
        raise PayoutValidationError("note must be text", field="note")
    as_of = _as_of(as_of, currency)
    threshold, source = payout_run_threshold(currency=currency, as_of=as_of)

    owed = contributor_payable_balances(currency=currency, as_of=as_of)
    held = _held_by_contributor(currency)
    contributor_ids = sorted(set(owed) | set(held))
    accounts = {a.contributor_id: a for a in ConnectedAccount.objects.filter(contributor_id__in=contributor_ids)}
    open_payouts = _open_payouts(currency, contributor_ids)

    run = PayoutRun.objects.create(currency=currency, as_of=as_of, threshold_minor=threshold,
                                   threshold_source=source[:300], note=note.strip(), created_by=created_by)
    payouts: list[Payout] = []
    exclusions: list[PayoutExclusion] = []

    def exclude(cid: int, reason: str, balance: int, detail: str) -> None:
        exclusions.append(PayoutExclusion(run=run, contributor_id=cid, reason=reason, balance_micros=balance,
                                          detail=detail[:300]))

    for cid in contributor_ids:
        balance = owed.get(cid, 0)
        account = accounts.get(cid)
        if cid in open_payouts:
            other = open_payouts[cid]
            exclude(cid, Reason.IN_OPEN_PAYOUT, balance,
                    f"payout #{other.pk} in run #{other.run_id} is {other.status}: retry or release it first")
        elif held.get(cid, 0) > 0:
            exclude(cid, Reason.ON_HOLD, balance, f"{format_micros(held[cid], currency)} on hold")
        elif balance <= 0:
            exclude(cid, Reason.ZERO_BALANCE, balance,
                    "nothing owed" if balance == 0 else f"owes the platform {format_micros(-balance, currency)}")
        elif account is None:
            exclude(cid, Reason.NO_ACCOUNT, balance, "has not set up a Stripe payout account")
        elif account.transfers_capability != ConnectedAccount.Capability.ACTIVE:
            exclude(cid, Reason.ACCOUNT_NOT_READY, balance,
                    f"Stripe account {account.stripe_account_id}: transfers {account.transfers_capability}, "
                    f"status {account.payout_status}")
        else:
            conversion = micros_to_minor(amount_micros=balance, currency=currency)
            if conversion.amount_minor < threshold:
                exclude(cid, Reason.BELOW_THRESHOLD, balance,
                        f"{format_minor(conversion.amount_minor, currency)} is below the threshold of "
                        f"{format_minor(threshold, currency)}")
            else:
                payouts.append(Payout(
                    run=run, contributor_id=cid, connected_account=account,
                    stripe_account_id=account.stripe_account_id, currency=currency,
                    amount_minor=conversion.amount_minor, amount_micros=conversion.amount_micros,
                    balance_micros=balance, remainder_micros=conversion.remainder_micros,
                ))
    Payout.objects.bulk_create(payouts, batch_size=1_000)
    PayoutExclusion.objects.bulk_create(exclusions, batch_size=1_000)
    run.payout_count = len(payouts)
    run.total_minor = sum(p.amount_minor for p in payouts)
    run.remainder_micros = sum(p.remainder_micros for p in payouts)
    run.excluded_count = len(exclusions)
    run.save(update_fields=["payout_count", "total_minor", "remainder_micros", "excluded_count"])
    reasons: dict[str, int] = {}
    for row in exclusions:
        reasons[row.reason] = reasons.get(row.reason, 0) + 1
    _audit(run, "create", created_by, None, reason=note, currency=currency, as_of=as_of, threshold_minor=threshold,
           threshold_source=source, payouts=run.payout_count, total_minor=run.total_minor,
           remainder_micros=run.remainder_micros, excluded=reasons)
    logger.info("payout run %s drafted: %d payouts, %s %s, %d excluded", run.pk, run.payout_count, run.total_minor,
                currency, run.excluded_count)
    return run


# --- transitions --------------------------------------------------------------------------------------


@transaction.atomic
def payout_run_submit(*, run: PayoutRun | int, actor: Any) -> PayoutRun:
    """Put a draft forward for approval by a second finance user."""
    actor = _finance_user(actor, "actor")
    run = _lock(run)
    _require(run, [Status.DRAFT], "submitted for approval")
    if run.payout_count == 0:
        raise PayoutRunStateError(f"run #{run.pk} pays nobody; cancel it instead", field="status")
    before = run.status
    run.status, run.submitted_by, run.submitted_at = Status.PENDING_APPROVAL, actor, timezone.now()
    run.save(update_fields=["status", "submitted_by", "submitted_at"])
    _audit(run, "submit", actor, before, payouts=run.payout_count, total_minor=run.total_minor)
    return run


def payout_run_can_approve(*, run: PayoutRun, user: Any) -> bool:
    """Whether ``user`` may approve ``run`` (what pages use to show or hide the button)."""
    return (run.status == Status.PENDING_APPROVAL and user_has_role(user, FINANCE)
            and user.pk not in (run.created_by_id, run.submitted_by_id))


@transaction.atomic
def payout_run_approve(*, run: PayoutRun | int, actor: Any) -> PayoutRun:
    """The checker's approval: a finance user who neither created nor submitted the run."""
    actor = _finance_user(actor, "actor")
    run = _lock(run)
    if actor.pk == run.created_by_id:
        raise MakerCheckerError(f"run #{run.pk} was created by you; another finance user must approve it",
                                field="actor")
    if actor.pk == run.submitted_by_id:
        raise MakerCheckerError(f"run #{run.pk} was submitted by you; another finance user must approve it",
                                field="actor")
    _require(run, [Status.PENDING_APPROVAL], "approved")
    before = run.status
    run.status, run.approved_by, run.approved_at = Status.APPROVED, actor, timezone.now()
    run.save(update_fields=["status", "approved_by", "approved_at"])
    _audit(run, "approve", actor, before, payouts=run.payout_count, total_minor=run.total_minor,
           created_by=run.created_by_id)
    return run


@transaction.atomic
def payout_run_cancel(*, run: PayoutRun | int, actor: Any, reason: str) -> PayoutRun:
    """Cancel a run that has not started executing; its balances carry forward untouched."""
    actor = _finance_user(actor, "actor")
    if not isinstance(reason, str) or not reason.strip():
        raise PayoutValidationError("reason must say why the run is cancelled", field="reason")
    run = _lock(run)
    _require(run, [Status.DRAFT, Status.PENDING_APPROVAL, Status.APPROVED], "cancelled")
    before = run.status
    cancelled = run.payouts.filter(status=Payout.Status.PENDING).update(status=Payout.Status.CANCELLED,
                                                                         updated_at=timezone.now())
    run.status, run.cancelled_by, run.cancelled_at = Status.CANCELLED, actor, timezone.now()
    run.cancel_reason = reason.strip()
    run.save(update_fields=["status", "cancelled_by", "cancelled_at", "cancel_reason"])
    _audit(run, "cancel", actor, before, reason=run.cancel_reason, payouts_cancelled=cancelled)
    return run


def _enqueue_dispatch(run_id: int) -> None:
    from payouts.tasks import payout_run_dispatch_task

    payout_run_dispatch_task.delay(run_id)


@transaction.atomic
def payout_run_execute(*, run: PayoutRun | int, actor: Any) -> PayoutRun:
    """Start sending an approved run; the transfers go out from Celery tasks once this commits."""
    actor = _finance_user(actor, "actor")
    run = _lock(run)
    _require(run, [Status.APPROVED], "executed")
    before = run.status
    run.status, run.executed_by, run.execution_started_at = Status.EXECUTING, actor, timezone.now()
    run.save(update_fields=["status", "executed_by", "execution_started_at"])
    _audit(run, "execute", actor, before, payouts=run.payout_count, total_minor=run.total_minor)
    # After commit: a worker must find the run executing, never the state before.
    transaction.on_commit(lambda: _enqueue_dispatch(run.pk))
    return run


@transaction.atomic
def payout_run_retry_failed(*, run: PayoutRun | int, actor: Any) -> PayoutRun:
    """Send the failed payouts of a run again, each as a new attempt (a new idempotency key).

    Stripe keeps a refused request's answer under its key, so the same key would only replay the refusal;
    a failed payout moved no money, so a new key cannot pay twice.
    """
    actor = _finance_user(actor, "actor")
    run = _lock(run)
    _require(run, [Status.EXECUTING, Status.COMPLETED_WITH_FAILURES], "retried")
    failed = list(run.payouts.select_for_update().filter(status=Payout.Status.FAILED).order_by("id"))
    if not failed:
        raise PayoutRunStateError(f"run #{run.pk} has no failed payout to retry", field="status")
    before = run.status
    now = timezone.now()
    for payout in failed:
        audit_record(action="payout.retry", obj=payout, actor=actor,
                     before={"status": payout.status, "attempt": payout.attempt, "failure_code": payout.failure_code,
                             "failure_message": payout.failure_message},
                     after={"status": Payout.Status.PENDING, "attempt": payout.attempt + 1})
        payout.status, payout.attempt = Payout.Status.PENDING, payout.attempt + 1
        payout.failure_code, payout.failure_message, payout.failed_at, payout.updated_at = "", "", None, now
    Payout.objects.bulk_update(failed, ["status", "attempt", "failure_code", "failure_message", "failed_at",
                                        "updated_at"])
    run.status, run.completed_at = Status.EXECUTING, None
    run.save(update_fields=["status", "completed_at"])
    _audit(run, "retry_failed", actor, before, payouts_retried=len(failed))
    transaction.on_commit(lambda: _enqueue_dispatch(run.pk))
    return run


@transaction.atomic
def payout_run_release_failed(*, run: PayoutRun | int, actor: Any, reason: str) -> PayoutRun:
    """Give up on a run's failed payouts: they are cancelled and their balances carry forward to a later run."""
    actor = _finance_user(actor, "actor")
    if not isinstance(reason, str) or not reason.strip():
        raise PayoutValidationError("reason must say why the failed payouts are released", field="reason")
    run = _lock(run)
    _require(run, [Status.EXECUTING, Status.COMPLETED_WITH_FAILURES], "released")
    failed = list(run.payouts.select_for_update().filter(status=Payout.Status.FAILED).order_by("id"))
    if not failed:
        raise PayoutRunStateError(f"run #{run.pk} has no failed payout to release", field="status")
    now = timezone.now()
    for payout in failed:
        audit_record(action="payout.release", obj=payout, actor=actor, reason=reason.strip(),
                     before={"status": payout.status, "failure_code": payout.failure_code},
                     after={"status": Payout.Status.CANCELLED, "balance_micros_carried": payout.balance_micros})
        payout.status, payout.updated_at = Payout.Status.CANCELLED, now
    Payout.objects.bulk_update(failed, ["status", "updated_at"])
    _audit(run, "release_failed", actor, run.status, reason=reason.strip(), payouts_released=len(failed))
    if run.status == Status.EXECUTING:
        transaction.on_commit(lambda: _enqueue_dispatch(run.pk))  # may finish the run now
    return run


@transaction.atomic
def payout_run_resume(*, run: PayoutRun | int, actor: Any = None) -> int:
    """Queue again the unsent and in-doubt payouts of an executing run (a crashed worker, Stripe down).

    Safe to call at any time: a payout already paid is skipped, and one in doubt is resent with its own
    idempotency key, so Stripe answers with the transfer it already made instead of making another.
    """
    run = _lock(run)
    _require(run, [Status.EXECUTING], "resumed")
    waiting = run.payouts.filter(status__in=Payout.IN_FLIGHT_STATUSES).count()
    audit_record(action="payout_run.resume", obj=run, actor=actor, actor_label="" if actor else "payouts.resume",
                 after={"status": run.status, "payouts_waiting": waiting})
    transaction.on_commit(lambda: _enqueue_dispatch(run.pk))
    return waiting


def payout_runs_resume_stalled(*, older_than: dt.timedelta = dt.timedelta(minutes=10)) -> list[int]:
    """Periodic: resume executing runs with a payout pending or sending for longer than ``older_than``."""
    cutoff = timezone.now() - older_than
    stalled = set(
        Payout.objects.filter(run__status=Status.EXECUTING, status=Payout.Status.SENDING, sending_started_at__lt=cutoff)
        .values_list("run_id", flat=True)
    ) | set(
        Payout.objects.filter(run__status=Status.EXECUTING, status=Payout.Status.PENDING,
                              run__execution_started_at__lt=cutoff).values_list("run_id", flat=True)
    )
    resumed = []
    for run_id in sorted(stalled):
        try:
            payout_run_resume(run=run_id)
            resumed.append(run_id)
        except Exception:  # in-process mode runs the task here: one run must not stop the sweep
            logger.exception("payout run %s: resume failed", run_id)
    return resumed
