"""Fixtures of the payouts tests: contributors with logins, and helpers to watch Stripe events arrive."""

from __future__ import annotations

import time

import pytest

from tests.conftest import make_user


@pytest.fixture
def make_contributor(db):
    """``make_contributor(display_name=..., country=...)``: a contributor-role user with a Contributor row."""
    from contributors.models import Contributor

    def _make(display_name: str = "Ada Palmer", country: str = "US", user=None):
        user = user or make_user("contributor")
        return Contributor.objects.create(user=user, display_name=display_name, country=country)

    return _make


@pytest.fixture
def contributor(make_contributor):
    return make_contributor()


def wait_for(predicate, *, timeout: float = 15.0, interval: float = 0.05, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy (webhooks arrive on another thread)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# --- payout runs --------------------------------------------------------------------------------------

DAY = __import__("datetime").date(2024, 5, 1)


@pytest.fixture(autouse=True)
def _payouts_in_one_thread(settings):
    """Tests run inside a transaction no other thread can see: send in the test's own thread unless a test
    (on transactional_db) asks for a pool."""
    settings.PAYOUTS_EXECUTION_THREADS = 1
    settings.ROYALTIES_PAYOUT_THRESHOLD_MINOR = 0


@pytest.fixture
def program(db):
    """A USD royalty program paying out from 10.00 USD (payout_threshold_minor 1,000)."""
    from tests.royalties.ledger.factories import make_program

    return make_program(payout_threshold_minor=1_000)


@pytest.fixture
def accrue(program):
    """``accrue({contributor: micros, ...}, day=DAY, works=None)``: one day's accrual through the ledger service.

    Each contributor earns from a work of their own (created unless ``works`` maps them to one), with
    generation counts derived from the amount so statements have something to show.
    """
    from royalties.ledger.services import accrual_post
    from tests.royalties.ledger.factories import make_work

    made: dict[int, object] = {}

    def _accrue(amounts: dict, *, day=DAY, works: dict | None = None, target_program=None):
        rows = []
        for contributor, micros in amounts.items():
            work = (works or {}).get(contributor) or made.get(contributor.pk)
            if work is None:
                work = made[contributor.pk] = make_work(owner=contributor, title=f"{contributor.display_name}'s work")
            rows.append((contributor.pk, work.pk, micros, 1 + micros % 7, 0))
        return accrual_post(program=target_program or program, period=day, allocations=rows,
                            expense_total_micros=sum(r[2] for r in rows))

    return _accrue


@pytest.fixture
def make_ready_contributor(fake_stripe, make_contributor):
    """A contributor whose Stripe account finished onboarding (transfers active), known to our database."""
    from payouts.services import connected_account_get_or_create, connected_account_sync

    def _make(display_name: str = "Ada Palmer", *, state: str = "active"):
        contributor = make_contributor(display_name=display_name)
        account = connected_account_get_or_create(contributor=contributor)
        if state == "active":
            fake_stripe.complete_onboarding(account.stripe_account_id)
        elif state == "pending":
            fake_stripe.complete_onboarding(account.stripe_account_id, pending_verification=True)
        connected_account_sync(connected_account=account)
        return contributor

    return _make


@pytest.fixture
def approve(finance_user, finance_user_b):
    """``approve(run)``: submitted by its creator (finance_user), approved by finance_user_b."""
    from payouts.services import payout_run_approve, payout_run_submit

    def _approve(run):
        payout_run_submit(run=run, actor=finance_user)
        return payout_run_approve(run=run, actor=finance_user_b)

    return _approve


@pytest.fixture
def execute(finance_user, django_capture_on_commit_callbacks):
    """``execute(run)``: press execute and let the queued tasks run (in-process), as the embedded default does."""
    from payouts.services import payout_run_execute

    def _execute(run):
        with django_capture_on_commit_callbacks(execute=True):
            payout_run_execute(run=run, actor=finance_user)
        run.refresh_from_db()
        return run

    return _execute
