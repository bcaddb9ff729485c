"""What `make demo` runs, on a fresh data directory, as a separate process: migrate, then `manage.py demo --serve`.

The site must answer on the printed address with the fake Stripe server still running beside it (onboarding
links and payout execution need it), a person must be able to log in with the printed password, and Ctrl-C
must stop both.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from demo.corpus import ADA, DEMO_PASSWORD

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, log: Path, timeout: float = 240) -> requests.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the demo exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            return requests.get(url, timeout=5)
        except requests.ConnectionError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {timeout:.0f}s:\n{log.read_text()[-4000:]}")


def test_make_demo_serves_the_site_with_the_fake_stripe_running(tmp_path):
    site_port, stripe_port = free_port(), free_port()
    # The environment of a fresh clone: none of the test run's settings (its database, broker, secret key,
    # e-mail verification); only where the data goes and two free ports.
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("DJANGO_", "ROYALTIES_", "STRIPE_", "CELERY_")) and key != "DATABASE_URL"}
    env.update(DJANGO_DEBUG="1", ROYALTIES_DATA_DIR=str(tmp_path / "var"), PYTHONUNBUFFERED="1",
               STRIPE_API_BASE=f"http://127.0.0.1:{stripe_port}", ROYALTIES_SITE_URL=f"http://127.0.0.1:{site_port}")
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput"], cwd=REPO, env=env, check=True, capture_output=True)
    log = tmp_path / "demo.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([*manage, "demo", "--quick", "--threads=1", "--serve", "--port", str(site_port)],
                                   cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        home = wait_for(f"http://127.0.0.1:{site_port}/", process, log)
        assert home.status_code == 200
        printed = log.read_text()
        assert f"The platform is at http://127.0.0.1:{site_port}/" in printed
        assert DEMO_PASSWORD in printed

        # the fake Stripe server still answers while the site is served
        balance = requests.get(f"http://127.0.0.1:{stripe_port}/v1/balance", timeout=5,
                               headers={"Authorization": "Bearer sk_test_fake_local"})
        assert balance.json()["object"] == "balance"

        # a person logs in with the printed password and reaches their earnings
        session = requests.Session()
        login_page = session.get(f"http://127.0.0.1:{site_port}/accounts/login/", timeout=10)
        assert login_page.status_code == 200
        answer = session.post(f"http://127.0.0.1:{site_port}/accounts/login/", timeout=30,
                              data={"login": ADA, "password": DEMO_PASSWORD,
                                    "csrfmiddlewaretoken": session.cookies["csrftoken"]},
                              headers={"Referer": f"http://127.0.0.1:{site_port}/accounts/login/"})
        assert answer.url.endswith("/portal/")
        earnings = session.get(f"http://127.0.0.1:{site_port}/portal/earnings/", timeout=30)
        assert earnings.status_code == 200
        assert "Your earnings" in earnings.text
    finally:
        # Ctrl-C: runserver stops, and the fake Stripe server with it
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", stripe_port)) != 0, "the fake Stripe server outlived the demo"
