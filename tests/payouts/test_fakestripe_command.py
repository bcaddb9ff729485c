"""``manage.py fakestripe``: the fake Stripe server as a foreground process (the demo's Stripe)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import stripe
from django.core.management import CommandError, call_command

from royalties.celery import app

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_command_serves_the_api_and_registers_both_webhook_endpoints(tmp_path):
    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "royalties.settings_test", "PYTHONUNBUFFERED": "1",
           "STRIPE_WEBHOOK_SECRET": "whsec_from_settings", "ROYALTIES_DATA_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "fakestripe", "--port", str(port), "--state", str(tmp_path / "fake.json"),
         "--webhook-url", "http://127.0.0.1:9/webhooks/stripe/"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        client = stripe.StripeClient("sk_test_demo", base_addresses={"api": f"http://127.0.0.1:{port}"},
                                     max_network_retries=0)
        deadline = time.monotonic() + 60
        while True:
            try:
                endpoints = client.v1.webhook_endpoints.list().data
                if len(endpoints) == 2:
                    break
            except stripe.APIConnectionError:
                pass
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "the fake did not start"
            time.sleep(0.2)

        account = client.v1.accounts.create(params={"type": "express",
                                                    "capabilities": {"transfers": {"requested": True}}})
        assert account.id.startswith("acct_")
        assert sorted((e.metadata["royalties_endpoint"], tuple(e.enabled_events)) for e in endpoints) == [
            ("connect", ("account.updated", "payout.failed", "payout.paid")),
            ("platform", ("transfer.created", "transfer.reversed", "transfer.updated")),
        ]
        assert {e.url for e in endpoints} == {"http://127.0.0.1:9/webhooks/stripe/"}
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=20)

    assert proc.returncode == 0, output
    assert f"fake Stripe listening on http://127.0.0.1:{port}" in output
    # The state file keeps what was made, for the next start of the demo.
    assert account.id in (tmp_path / "fake.json").read_text()


def test_a_port_in_use_is_a_clear_error():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        with pytest.raises(CommandError, match=f"cannot listen on 127.0.0.1:{port}"):
            call_command("fakestripe", port=port, state="", no_webhooks=True)


def test_the_event_retry_sweep_is_scheduled():
    entry = app.conf.beat_schedule["payouts-stripe-events-retry"]
    import payouts.tasks  # noqa: F401 - what autodiscovery loads in a worker


    assert entry["task"] == "payouts.stripe_events_retry_pending"
    assert entry["task"] in app.tasks
