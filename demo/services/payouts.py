"""Paying the demo contributors: the local fake Stripe server, onboarding, and one payout run through the same
services the finance pages use (finance A creates and submits, finance B approves and executes).

The demo pays only through the local fake Stripe server (``STRIPE_API_BASE`` on this machine): it starts one
on that address, or uses the one already listening there (``manage.py fakestripe``, or a test's), and refuses
a remote Stripe. Everything is keyed so a second run pays nothing twice: onboarding is skipped for an active
account, and the run of the demo day is resumed, not drafted again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model

from contributors.models import Contributor
from demo.corpus import DEMO_PEOPLE, FINANCE_A, FINANCE_B

ACTOR = "command:demo"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
Say = Callable[[str], None]


class DemoStripeError(RuntimeError):
    """The demo cannot reach (or will not use) the Stripe server at STRIPE_API_BASE."""


def _stripe_problem(base: str) -> str | None:
    """None when a Stripe API (the fake) answers at ``base``, else what went wrong."""
    import requests

    try:
        response = requests.get(f"{base}/v1/balance", timeout=5,
                                headers={"Authorization": f"Bearer {settings.STRIPE_SECRET_KEY}"})
        if response.ok and response.json().get("object") == "balance":
            return None
        return f"GET /v1/balance answered {response.status_code}"
    except (requests.RequestException, ValueError) as exc:
        return f"GET /v1/balance failed: {type(exc).__name__}: {exc}"


@contextlib.contextmanager
def demo_fake_stripe(*, say: Say) -> Iterator[Any]:
    """The fake Stripe server at STRIPE_API_BASE: started here (yielded, stopped on exit) or already running
    (yields None). Its state is kept in ``<data dir>/fakestripe.json``, as ``manage.py fakestripe`` keeps it."""
    from payouts.fakestripe import FakeStripeServer

    base = settings.STRIPE_API_BASE.rstrip("/")
    parts = urlsplit(base)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK or not parts.port:
        raise DemoStripeError(
            f"STRIPE_API_BASE is {base!r}: the demo pays only through the local fake Stripe server "
            "(http://127.0.0.1:<port>); unset STRIPE_API_BASE to use the default"
        )
    secret = next((s.strip() for s in settings.STRIPE_WEBHOOK_SECRET.split(",") if s.strip()), None)
    try:
        server = FakeStripeServer(host=parts.hostname, port=parts.port, webhook_secret=secret,
                                  state_path=settings.DATA_DIR / "fakestripe.json",
                                  api_version=settings.STRIPE_API_VERSION)
    except OSError as exc:
        # The port is taken: by `manage.py fakestripe` (or a test's fake), which the demo then uses.
        problem = _stripe_problem(base)
        if problem is not None:
            raise DemoStripeError(f"cannot listen on {base} ({exc}), and what listens there is no Stripe: "
                                  f"{problem}") from exc
        server = None
    if server is None:
        say(f"  using the fake Stripe server already listening at {base}")
        yield None
        return
    server.start()
    say(f"  fake Stripe server listening at {server.url} (state in {settings.DATA_DIR / 'fakestripe.json'})")
    try:
        yield server
    finally:
        server.stop()


def _control(path: str) -> dict[str, Any]:
    """A test-control request to the fake (``/_fake/...``): what Stripe's hosted pages would have done."""
    import requests

    response = requests.post(f"{settings.STRIPE_API_BASE.rstrip('/')}/_fake/{path}", timeout=10)
    response.raise_for_status()
    return response.json()


def demo_onboarding_ensure(*, say: Say) -> int:
    """Every demo contributor meant to be paid finishes Stripe onboarding (once); returns how many did now."""
    from payouts.models import ConnectedAccount
    from payouts.services import connected_account_get_or_create, connected_account_sync

    onboarded = 0
    for person in DEMO_PEOPLE:
        if not person.onboard or person.role != "contributor":
            continue
        contributor = Contributor.objects.select_related("user").get(user__email=person.email)
        account = connected_account_get_or_create(contributor=contributor, actor=contributor.user)
        if account.transfers_capability == ConnectedAccount.Capability.ACTIVE:
            continue
        # The contributor fills in Stripe's hosted form; the fake's control API stands in for that form.
        _control(f"accounts/{account.stripe_account_id}/complete_onboarding")
        account = connected_account_sync(connected_account=account, actor=contributor.user,
                                         reason="demo: onboarding completed")
        onboarded += 1
        say(f"  {person.email}: Stripe account {account.stripe_account_id} onboarded, transfers "
            f"{account.transfers_capability}")
    return onboarded


@dataclass
class RunOutcome:
    run: Any
    created: bool
    statements: int


def _wait_finished(run: Any, *, timeout: float) -> Any:
    """Execution queues Celery tasks: in-process they are done already; with a broker, wait for a worker."""
    from payouts.models import PayoutRun

    finished = {PayoutRun.Status.COMPLETED, PayoutRun.Status.COMPLETED_WITH_FAILURES}
    deadline = time.monotonic() + timeout
    run.refresh_from_db()
    while run.status not in finished:
        if time.monotonic() > deadline:
            raise RuntimeError(f"payout run #{run.pk} is still {run.status} after {timeout:.0f}s: is a Celery worker "
                               "running? (the embedded default runs tasks in-process)")
        time.sleep(0.5)
        run.refresh_from_db()
    return run


def demo_payout_run_ensure(*, day: dt.date, say: Say, timeout: float = 300) -> RunOutcome:
    """The demo day's payout run, taken as far as it goes: created by A, approved by B, executed, stated."""
    from payouts.errors import MakerCheckerError
    from payouts.models import PayoutRun
    from payouts.money import format_minor
    from payouts.services import (
        payout_run_approve,
        payout_run_create,
        payout_run_execute,
        payout_run_reconcile,
        payout_run_submit,
        statements_issue_for_run,
    )

    User = get_user_model()
    finance_a, finance_b = User.objects.get(username=FINANCE_A), User.objects.get(username=FINANCE_B)
    currency = settings.ROYALTIES_CURRENCY
    # The demo's own run: finance A's for the day. A run someone made by hand in the served site is theirs to finish.
    run = (PayoutRun.objects.filter(currency=currency, as_of=day, created_by=finance_a)
           .exclude(status=PayoutRun.Status.CANCELLED).order_by("id").first())
    created = run is None
    if created:
        run = payout_run_create(currency=currency, as_of=day, created_by=finance_a,
                                note=f"Demo: royalties of {day}")
        say(f"  {FINANCE_A} drafted run #{run.pk}: {run.payout_count} payouts, "
            f"{format_minor(run.total_minor, currency)}, {run.excluded_count} left out")
    else:
        say(f"  run #{run.pk} of {day} exists ({run.get_status_display().lower()})")
    if run.status == PayoutRun.Status.DRAFT:
        run = payout_run_submit(run=run, actor=finance_a)
        say(f"  {FINANCE_A} submitted it for approval")
    if run.status == PayoutRun.Status.PENDING_APPROVAL:
        try:
            payout_run_approve(run=run, actor=finance_a)
        except MakerCheckerError as exc:
            say(f"  {FINANCE_A} may not approve it: {exc.message}")
        else:  # the maker-checker rule is the point of this step: never let it pass silently
            raise RuntimeError(f"finance user A approved their own run #{run.pk}")
        run = payout_run_approve(run=run, actor=finance_b)
        say(f"  {FINANCE_B} approved it")
    if run.status == PayoutRun.Status.APPROVED:
        run = payout_run_execute(run=run, actor=finance_b)
        say(f"  {FINANCE_B} executed it: transfers sent to the fake Stripe server")
    run = _wait_finished(run, timeout=timeout)
    issued = statements_issue_for_run(run=run)
    statements = run.payouts.filter(statement__isnull=False).count()
    say(f"  run #{run.pk} {run.get_status_display().lower()}: {statements} statements "
        f"({issued['issued']} issued now)")
    if not run.reconciliations.exists():
        result = payout_run_reconcile(run=run, actor=finance_a)
        say(f"  reconciliation with Stripe: {'no mismatch' if result.ok else f'{len(result.mismatches)} mismatches'}")
    return RunOutcome(run=run, created=created, statements=statements)


def demo_webhooks_register(*, site_url: str, say: Say) -> None:
    """Point the fake's webhook endpoints (platform and Connect) at the served site, unless they already do."""
    from payouts import stripe_client
    from payouts.services import stripe_webhook_endpoints_register
    from payouts.services.webhook_endpoints import ENDPOINT_KIND_KEY

    url = site_url.rstrip("/") + "/webhooks/stripe/"
    listed = stripe_client.get_client().v1.webhook_endpoints.list(params={"limit": 100}).data
    kinds = {ep.metadata.to_dict().get(ENDPOINT_KIND_KEY) for ep in listed if ep.url == url}
    if {"platform", "connect"} <= kinds:
        return
    stripe_webhook_endpoints_register(base_url=site_url)
    say(f"  fake Stripe delivers webhooks to {url}")
