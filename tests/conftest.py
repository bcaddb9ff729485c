"""Fixtures every app's tests share: users by role (staff with TOTP), MFA-complete logins, a real Celery worker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from tests.factories import UserFactory

REPO = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery staple"


# --- people ---------------------------------------------------------------------------------------------


def make_user(role: str | None = None, *, username: str | None = None, mfa: bool | None = None):
    """A user holding ``role``; staff roles get a TOTP authenticator (MFA is mandatory for them)."""
    from accounts.roles import STAFF_ROLES, role_grant

    user = UserFactory(**({"username": username} if username else {}))
    if role:
        role_grant(user=user, role=role)
    if mfa if mfa is not None else role in STAFF_ROLES:
        from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

        TOTP.activate(user, generate_totp_secret())
    return user


def login(client, user) -> None:
    """Log ``client`` in as ``user`` as if they had passed the password and (for staff) the TOTP step."""
    from allauth.account.internal.flows.login import (
        _AUTHENTICATION_METHODS_USER_SESSION_KEY,
        AUTHENTICATION_METHODS_SESSION_KEY,
    )
    from allauth.account.internal.userkit import user_id_to_str

    client.force_login(user)
    session = client.session
    session[_AUTHENTICATION_METHODS_USER_SESSION_KEY] = user_id_to_str(user)
    session[AUTHENTICATION_METHODS_SESSION_KEY] = [
        {"method": "password", "at": time.time(), "email": user.email},
        {"method": "mfa", "at": time.time(), "type": "totp"},
    ]
    session.save()


@pytest.fixture
def make_role_user(db):
    return make_user


@pytest.fixture
def contributor_user(db):
    return make_user("contributor")


@pytest.fixture
def finance_user(db):
    return make_user("finance")


@pytest.fixture
def finance_user_b(db):
    return make_user("finance")


@pytest.fixture
def catalog_admin_user(db):
    return make_user("catalog_admin")


@pytest.fixture
def login_as(client):
    """``login_as(user)`` logs the test client in (MFA-complete) and returns it."""

    def _login(user):
        login(client, user)
        return client

    return _login


# --- a real Celery worker -------------------------------------------------------------------------------


def _broker_reachable(url: str) -> str | None:
    """None when the broker answers, else the reason it does not."""
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def pytest_collection_modifyitems(config, items) -> None:
    broker = settings.TEST_CELERY_BROKER_URL
    required = os.environ.get("REQUIRE_CELERY_WORKER") == "1"
    reason = None if broker else "no CELERY_BROKER_URL set: tests that need a real Celery worker are skipped"
    if broker and reason is None:
        problem = _broker_reachable(broker)
        if problem:
            reason = f"broker {broker} unreachable ({problem})"
    for item in items:
        if "celery_worker" in item.keywords and reason:
            if required:
                # CI's PostgreSQL pass must run these: turn the skip into a failure that says why.
                item.add_marker(pytest.mark.xfail(reason=reason, run=False, strict=True))
            else:
                item.add_marker(pytest.mark.skip(reason=reason))
        if "postgres" in item.keywords and not os.environ.get("DATABASE_URL"):
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL"))


class CeleryWorker:
    """A `celery worker` subprocess on the test database and broker; ``kill()`` ends it like a crash."""

    def __init__(self, *, concurrency: int = 1, queues: str | None = None, extra_env: dict | None = None):
        self.concurrency = concurrency
        self.queues = queues
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen | None = None
        self.log_path = Path(settings.DATA_DIR) / f"celery-worker-{os.getpid()}-{time.monotonic_ns()}.log"

    def env(self) -> dict:
        from django.db import connection

        env = {**os.environ, **self.extra_env}
        env["DJANGO_SETTINGS_MODULE"] = "royalties.settings_test"
        env["ROYALTIES_TEST_WORKER"] = "1"
        env["ROYALTIES_TEST_DB_NAME"] = str(connection.settings_dict["NAME"])
        env["ROYALTIES_DATA_DIR"] = str(settings.DATA_DIR)
        env["CELERY_BROKER_URL"] = settings.TEST_CELERY_BROKER_URL
        env["PYTHONPATH"] = str(REPO)
        return env

    def start(self, timeout: float = 60) -> CeleryWorker:
        from royalties.celery import app

        cmd = [
            sys.executable, "-m", "celery", "-A", "royalties", "worker", "--loglevel=INFO",
            f"--concurrency={self.concurrency}", "--pool=prefork", "--without-gossip", "--without-mingle",
            "--without-heartbeat", f"--hostname=test-{os.getpid()}-{time.monotonic_ns()}@%h",
        ]
        if self.queues:
            cmd.append(f"--queues={self.queues}")
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        # A new session makes the worker lead its own process group, so kill() can end its pool children too.
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, env=self.env(), stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery worker exited early:\n{self.log()}")
            replies = app.control.ping(timeout=0.5)
            if replies:
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"celery worker did not answer within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children): a crash, not a shutdown."""
        import signal

        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(os.getpgid(self.proc.pid), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        if getattr(self, "_log", None):
            self._log.close()


@pytest.fixture
def celery_app_live(transactional_db):
    """The Celery app switched from in-process execution to the real broker, with its queue purged."""
    from royalties.celery import app

    old = (app.conf.task_always_eager, app.conf.broker_url)
    app.conf.task_always_eager = False
    app.conf.broker_url = settings.TEST_CELERY_BROKER_URL
    app.control.purge()
    yield app
    app.control.purge()
    app.conf.task_always_eager, app.conf.broker_url = old


@pytest.fixture
def celery_worker(celery_app_live):
    """A real worker process (prefork, concurrency 1) consuming the test broker, stopped after the test."""
    worker = CeleryWorker(extra_env={"PYTHONUNBUFFERED": "1"})
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def celery_worker_factory(celery_app_live):
    """Start workers with custom options; all are stopped after the test."""
    started: list[CeleryWorker] = []

    def _start(**kwargs) -> CeleryWorker:
        worker = CeleryWorker(**kwargs).start()
        started.append(worker)
        return worker

    yield _start
    for worker in started:
        worker.stop()


# --- the fake Stripe server -----------------------------------------------------------------------------

FAKE_STRIPE_KEY = "sk_test_fixture_key"


@pytest.fixture(scope="session")
def fake_stripe_server():
    """One fake Stripe server per test process, on a free loopback port (real HTTP, real SDK)."""
    from payouts.fakestripe import FakeStripeServer

    server = FakeStripeServer(host="127.0.0.1", port=0, api_key=FAKE_STRIPE_KEY,
                              webhook_retry_delays=(0.1, 0.3, 1.0)).start()
    yield server
    server.stop()


@pytest.fixture
def fake_stripe(fake_stripe_server, settings):
    """The fake Stripe server, emptied, with the platform's Stripe settings pointing at it."""
    fake_stripe_server.reset()
    settings.STRIPE_API_BASE = fake_stripe_server.url
    settings.STRIPE_CONNECT_BASE = fake_stripe_server.url
    settings.STRIPE_SECRET_KEY = FAKE_STRIPE_KEY
    yield fake_stripe_server
    fake_stripe_server.reset()


@pytest.fixture
def fake_stripe_webhooks(fake_stripe, live_server, settings):
    """``fake_stripe`` plus webhook endpoints (platform and Connect) delivering to this test's live server,
    their signing secrets in STRIPE_WEBHOOK_SECRET: events flow as they would from Stripe."""
    from payouts.services import stripe_webhook_endpoints_register

    settings.STRIPE_WEBHOOK_SECRET = ",".join(stripe_webhook_endpoints_register(base_url=live_server.url))
    return fake_stripe
