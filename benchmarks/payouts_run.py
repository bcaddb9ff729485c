"""Execute a payout run of 2,000 payouts against the fake Stripe server rate-limited to 25 requests/s.

The issue's budget: within 1.2x of the 80 s the limit allows (one request per payout, concurrency up to the
limit, 429s handled without losing a payout). Then the same again with the limit lifted, in payouts/s.

What runs, all real: a fresh database migrated for the run (PostgreSQL ``royalties_bench_payouts`` with
DATABASE_URL, else SQLite); the fake Stripe server as a separate process (so its HTTP handling does not share
this process's GIL with the senders; the server ``manage.py fakestripe`` runs); 2,000 contributors with Express accounts onboarded on the fake and
payable balances posted through the ledger's ``accrual_post``; a run drafted, submitted, approved by a second
finance user and executed through the services, exactly as the finance pages do (tasks in-process, the
embedded default: batches of ``PAYOUTS_BATCH_SIZE`` payouts, each sent by ``PAYOUTS_EXECUTION_THREADS``
threads). Timed: ``execution_started_at`` to ``completed_at`` of the run (statements are issued after the run
completes and are timed separately), 429s counted from our client's retry log, then checked: every payout
paid, one transfer per payout in Stripe's transfer group, one ledger entry per payout, and a reconciliation
with no mismatch.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/royalties .venv/bin/python benchmarks/payouts_run.py
    .venv/bin/python benchmarks/payouts_run.py --payouts 500          # quicker, SQLite

Prints one JSON line per stage.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import random
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "royalties.settings_test")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402

from accounts.roles import FINANCE, role_grant  # noqa: E402
from attribution.models import AIModel  # noqa: E402
from contributors.models import Contributor, Work  # noqa: E402
from payouts import stripe_client  # noqa: E402
from payouts.models import ConnectedAccount, Payout, PayoutRun  # noqa: E402
from payouts.services import (  # noqa: E402
    payout_run_approve,
    payout_run_create,
    payout_run_execute,
    payout_run_reconcile,
    payout_run_submit,
)
from royalties.ledger.models import JournalEntry  # noqa: E402
from royalties.ledger.services import accrual_post, royalty_program_create  # noqa: E402

DAY = dt.date(2024, 6, 1)
RATIO_LIMIT = 1.2


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


class RetryCounter(logging.Handler):
    """Counts the 429s our Stripe client retried (its retry log line names the HTTP status)."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.rate_limited = 0
        self.exhausted = 0

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "(HTTP 429); retry" in message:
            self.rate_limited += 1
        elif "failed after" in message:
            self.exhausted += 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def control(url: str, path: str, payload: dict | None = None) -> dict:
    data = json.dumps(payload or {}).encode()
    request = urllib.request.Request(f"{url}/_fake/{path}", data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


# The fake in its own process (it imports no Django): what ``manage.py fakestripe --state '' --no-webhooks``
# serves, without the command's settings and URL loading.
FAKE_SERVER = """
import sys
from payouts.fakestripe import FakeStripeServer
server = FakeStripeServer(host="127.0.0.1", port=int(sys.argv[1])).start()
server.wait()
"""


def start_fake() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", FAKE_SERVER, str(port)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"fakestripe exited: {proc.stderr.read().decode()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("fakestripe did not start within 60 s")


def seed(n: int, fake_url: str, rng: random.Random, *, threads: int = 8) -> list[Contributor]:
    """Contributors with users, works, and onboarded Express accounts (created on the fake through our client)."""
    users = get_user_model().objects.bulk_create(
        [get_user_model()(username=f"payee{i}", email=f"payee{i}@example.org") for i in range(n)], batch_size=1_000)
    contributors = Contributor.objects.bulk_create(
        [Contributor(user=u, display_name=f"Payee {i}", country="US") for i, u in enumerate(users)], batch_size=1_000)

    def onboard(contributor: Contributor) -> ConnectedAccount:
        account = stripe_client.account_create(contributor_id=contributor.pk, country="US")
        control(fake_url, f"accounts/{account.id}/complete_onboarding")
        return ConnectedAccount(contributor=contributor, stripe_account_id=account.id, country="US",
                                default_currency="usd", details_submitted=True, charges_enabled=True,
                                payouts_enabled=True, transfers_capability=ConnectedAccount.Capability.ACTIVE)

    with ThreadPoolExecutor(threads) as pool:
        accounts = list(pool.map(onboard, contributors))
    ConnectedAccount.objects.bulk_create(accounts, batch_size=1_000)
    Contributor.objects.filter(pk__in=[c.pk for c in contributors]).update(payout_status="active")
    return contributors


def accrue(program, contributors: list[Contributor], works: dict[int, int], day: dt.date,
           rng: random.Random) -> None:
    # Between 10.00 and 500.00 USD each, with sub-cent parts: every payout leaves a remainder behind.
    rows = [(c.pk, works[c.pk], rng.randint(10_000_000, 500_000_000), rng.randint(1, 5_000), 0) for c in contributors]
    accrual_post(program=program, period=day, allocations=rows, expense_total_micros=sum(r[2] for r in rows),
                 created_by_label="benchmark")


def execute(label: str, *, program, contributors, works, day, maker, checker, fake_url: str, rate_limit: float,
            counter: RetryCounter, rng: random.Random) -> dict:
    accrue(program, contributors, works, day, rng)
    run = payout_run_create(currency="USD", created_by=maker, note=label)
    payout_run_submit(run=run, actor=maker)
    payout_run_approve(run=run, actor=checker)
    control(fake_url, "rate_limit", {"requests_per_second": rate_limit})
    counter.rate_limited = counter.exhausted = 0
    wall, cpu = time.perf_counter(), time.process_time()
    payout_run_execute(run=run, actor=maker)  # in-process: returns once the run and its statements are done
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    control(fake_url, "rate_limit", {"requests_per_second": 0})
    run.refresh_from_db()
    seconds = (run.completed_at - run.execution_started_at).total_seconds() if run.completed_at else None
    transfers = list(stripe_client.transfer_list(transfer_group=run.transfer_group))
    paid = run.payouts.filter(status=Payout.Status.PAID).count()
    entries = JournalEntry.objects.filter(kind=JournalEntry.Kind.PAYOUT, metadata__run_id=run.pk).count()
    t0 = time.perf_counter()
    reconciliation = payout_run_reconcile(run=run, actor_label="benchmark")
    return {"run": run.pk, "status": run.status, "payouts": run.payout_count, "paid": paid, "seconds": seconds,
            "wall_seconds": round(wall, 2), "process_cpu_seconds": round(cpu, 2), "statements_seconds": round(wall - (seconds or 0), 2),
            "http_429": counter.rate_limited, "retries_exhausted": counter.exhausted,
            "transfers_in_stripe": len(transfers), "ledger_entries": entries,
            "reconciliation_mismatches": len(reconciliation.mismatches),
            "reconcile_seconds": round(time.perf_counter() - t0, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payouts", type=int, default=2_000)
    parser.add_argument("--rate-limit", type=float, default=25.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-unlimited", action="store_true")
    args = parser.parse_args()

    connection.settings_dict.setdefault("TEST", {})
    if connection.vendor == "postgresql":
        connection.settings_dict["TEST"]["NAME"] = "royalties_bench_payouts"
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    fake, url = start_fake()
    try:
        run(args, url)
    finally:
        fake.terminate()
        fake.wait(timeout=10)
        connection.creation.destroy_test_db(old_name, verbosity=0)


def run(args, fake_url: str) -> None:
    rng = random.Random(args.seed)
    settings.STRIPE_API_BASE = settings.STRIPE_CONNECT_BASE = fake_url
    logging.getLogger().setLevel(logging.WARNING)  # the per-request INFO lines would dominate the run
    counter = RetryCounter()
    client_log = logging.getLogger("payouts.stripe_client")
    client_log.setLevel(logging.INFO)
    client_log.addHandler(counter)
    client_log.propagate = False

    t0 = time.perf_counter()
    maker, checker = (get_user_model().objects.create(username=n, email=f"{n}@example.org") for n in ("maker", "checker"))
    for user in (maker, checker):
        role_grant(user=user, role=FINANCE)
    contributors = seed(args.payouts, fake_url, rng)
    works = {w.created_by_id: w.pk for w in Work.objects.bulk_create(
        [Work(kind="text", title=f"Work of payee {c.pk}", size_bytes=10, mime_type="text/plain",
              sha256=f"{c.pk:064x}", created_by=c) for c in contributors], batch_size=1_000)}
    program = royalty_program_create(ai_model=AIModel.objects.create(name="bench-payouts", modality="text"),
                                     name="Benchmark program", effective_from=dt.date(2024, 1, 1), currency="USD",
                                     pool_bps=2_000, top_k=8, payout_threshold_minor=1_000,
                                     created_by_label="benchmark")
    emit(stage="setup", database=connection.vendor, payouts=args.payouts, seconds=round(time.perf_counter() - t0, 1),
         threads=settings.PAYOUTS_EXECUTION_THREADS, batch_size=settings.PAYOUTS_BATCH_SIZE,
         stripe_max_retries=settings.STRIPE_MAX_RETRIES)

    common = {"program": program, "contributors": contributors, "works": works, "maker": maker, "checker": checker,
              "fake_url": fake_url, "counter": counter, "rng": rng}
    limited = execute("rate-limited", day=DAY, rate_limit=args.rate_limit, **common)
    floor = args.payouts / args.rate_limit
    ratio = (limited["seconds"] / floor) if limited["seconds"] else None
    emit(stage="rate_limited", rate_limit=args.rate_limit, limit_floor_s=round(floor, 1),
         ratio=round(ratio, 3) if ratio else None, within_budget=bool(ratio and ratio <= RATIO_LIMIT),
         payouts_per_s=round(args.payouts / limited["seconds"], 1) if limited["seconds"] else None, **limited)
    if args.skip_unlimited:
        return
    unlimited = execute("no rate limit", day=DAY + dt.timedelta(days=1), rate_limit=0, **common)
    emit(stage="unlimited", rate_limit=None,
         payouts_per_s=round(args.payouts / unlimited["seconds"], 1) if unlimited["seconds"] else None, **unlimited)
    assert PayoutRun.objects.filter(status=PayoutRun.Status.COMPLETED).count() == 2


if __name__ == "__main__":
    main()
