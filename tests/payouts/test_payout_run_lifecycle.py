"""The run's lifecycle: transitions only through services, each audited; maker-checker in the service and the
database alike."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from audit.models import AuditEvent
from payouts.errors import MakerCheckerError, PayoutRunStateError, PayoutValidationError
from payouts.models import PayoutRun
from payouts.services import (
    payout_run_approve,
    payout_run_can_approve,
    payout_run_cancel,
    payout_run_create,
    payout_run_execute,
    payout_run_submit,
)
from tests.conftest import make_user


@pytest.fixture
def run(accrue, make_ready_contributor, finance_user):
    accrue({make_ready_contributor(): 25_000_000})
    return payout_run_create(currency="USD", created_by=finance_user)


def test_draft_to_approved_records_who_and_when_at_each_step(run, finance_user, finance_user_b):
    payout_run_submit(run=run, actor=finance_user)
    run.refresh_from_db()
    assert (run.status, run.submitted_by) == ("pending_approval", finance_user)
    assert payout_run_can_approve(run=run, user=finance_user_b)
    assert not payout_run_can_approve(run=run, user=finance_user)

    payout_run_approve(run=run, actor=finance_user_b)

    run.refresh_from_db()
    assert (run.status, run.approved_by) == ("approved", finance_user_b)
    assert run.created_at <= run.submitted_at <= run.approved_at
    trail = list(AuditEvent.objects.filter(object_type="payouts.payoutrun", object_id=str(run.pk))
                 .order_by("id").values_list("action", "actor_id", "before", "after"))
    assert [(a, actor) for a, actor, _, _ in trail] == [
        ("payout_run.create", finance_user.pk), ("payout_run.submit", finance_user.pk),
        ("payout_run.approve", finance_user_b.pk)]
    assert trail[2][2] == {"status": "pending_approval"}
    assert trail[2][3]["status"] == "approved"


def test_the_creator_cannot_approve_their_own_run(run, finance_user):
    payout_run_submit(run=run, actor=finance_user)

    with pytest.raises(MakerCheckerError, match="another finance user must approve it") as exc:
        payout_run_approve(run=run, actor=finance_user)

    assert exc.value.field == "actor"
    run.refresh_from_db()
    assert (run.status, run.approved_by) == ("pending_approval", None)
    assert not AuditEvent.objects.filter(action="payout_run.approve").exists()


def test_whoever_submitted_cannot_approve_either(run, finance_user, finance_user_b):
    payout_run_submit(run=run, actor=finance_user_b)

    with pytest.raises(MakerCheckerError, match="submitted by you"):
        payout_run_approve(run=run, actor=finance_user_b)
    payout_run_approve(run=run, actor=make_user("finance"))


def test_only_finance_users_approve(run, finance_user, catalog_admin_user, contributor_user):
    payout_run_submit(run=run, actor=finance_user)
    for user in (catalog_admin_user, contributor_user):
        with pytest.raises(MakerCheckerError, match="finance role"):
            payout_run_approve(run=run, actor=user)


def test_the_database_refuses_a_run_approved_by_its_creator_whatever_the_path(run, finance_user):
    with pytest.raises(IntegrityError), transaction.atomic():
        PayoutRun.objects.filter(pk=run.pk).update(approved_by=finance_user, status="approved")


@pytest.mark.parametrize("step", ["approve", "execute"])
def test_steps_out_of_order_are_refused_naming_the_state(run, finance_user, finance_user_b, step):
    transition = payout_run_approve if step == "approve" else payout_run_execute

    with pytest.raises(PayoutRunStateError) as exc:
        transition(run=run, actor=finance_user_b)

    assert exc.value.field == "status"
    assert f"run #{run.pk} is draft" in exc.value.message


def test_cancelling_keeps_every_balance_and_a_cancelled_run_goes_nowhere(run, finance_user, finance_user_b):
    payout_run_submit(run=run, actor=finance_user)
    with pytest.raises(PayoutValidationError) as exc:
        payout_run_cancel(run=run, actor=finance_user_b, reason="")
    assert exc.value.field == "reason"

    payout_run_cancel(run=run, actor=finance_user_b, reason="wrong cut-off")

    run.refresh_from_db()
    assert (run.status, run.cancelled_by, run.cancel_reason) == ("cancelled", finance_user_b, "wrong cut-off")
    assert set(run.payouts.values_list("status", flat=True)) == {"cancelled"}
    for transition in (lambda: payout_run_approve(run=run, actor=finance_user_b),
                       lambda: payout_run_submit(run=run, actor=finance_user),
                       lambda: payout_run_cancel(run=run, actor=finance_user, reason="again")):
        with pytest.raises(PayoutRunStateError):
            transition()
    # a new draft pays the same contributor: cancelling moved no money
    assert payout_run_create(currency="USD", created_by=finance_user).payout_count == 1
    assert AuditEvent.objects.get(action="payout_run.cancel").reason == "wrong cut-off"


def test_an_empty_run_cannot_be_submitted(finance_user, db):
    run = payout_run_create(currency="USD", created_by=finance_user)

    with pytest.raises(PayoutRunStateError, match="pays nobody"):
        payout_run_submit(run=run, actor=finance_user)
