from __future__ import annotations

import pytest
from django.conf import settings
from django.test import override_settings


@pytest.mark.django_db
def test_healthz_reports_database_and_eager_tasks(client):
    with override_settings(CELERY_BROKER_URL=""):
        response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True
    # With no broker configured, tasks run in-process: the health check says so instead of failing.
    assert body["broker"] == {"ok": True, "configured": False, "mode": "in-process (eager)"}


@pytest.mark.django_db
def test_healthz_is_503_when_the_broker_is_down(client):
    # Port 1 on loopback: nothing listens there, so the connection is refused at once.
    with override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0"):
        response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["broker"]["ok"] is False
    assert body["broker"]["configured"] is True
    assert body["database"]["ok"] is True


@pytest.mark.celery_worker
@pytest.mark.django_db
def test_healthz_checks_a_configured_broker(client):
    with override_settings(CELERY_BROKER_URL=settings.TEST_CELERY_BROKER_URL):
        response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["broker"]["ok"] is True
    assert response.json()["broker"]["configured"] is True


@pytest.mark.django_db
def test_healthz_is_503_when_the_database_fails(client, monkeypatch):
    from royalties import health

    def broken_cursor(*args, **kwargs):
        raise health.connections["default"].Database.OperationalError("connection refused")

    monkeypatch.setattr(health.connections["default"], "cursor", broken_cursor)
    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["database"]["ok"] is False
    assert "connection refused" in response.json()["database"]["error"]


def test_healthz_refuses_post(client):
    assert client.post("/healthz").status_code == 405
