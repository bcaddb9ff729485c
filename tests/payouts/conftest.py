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
