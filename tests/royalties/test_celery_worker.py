"""A real worker process on a real broker runs our tasks (not the in-process eager mode)."""

from __future__ import annotations

import pytest

from royalties.celery import app, ping


@pytest.mark.celery_worker
def test_a_real_worker_runs_a_task_through_the_broker(celery_worker):
    result = ping.delay()

    assert result.get(timeout=30) == "pong"
    # The task ran in the worker process, not here: its result went through the result backend.
    assert result.status == "SUCCESS"
    assert result.task_id
    replies = app.control.ping(timeout=2)
    assert replies, "the worker should answer a control ping over the broker"


def test_celery_is_configured_for_json_late_acks_and_time_limits():
    conf = app.conf
    assert conf.task_serializer == "json"
    assert conf.result_serializer == "json"
    assert list(conf.accept_content) == ["json"]
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.task_time_limit > conf.task_soft_time_limit > 0


def test_eager_mode_runs_tasks_in_process_when_no_broker_is_set():
    # tests run eagerly unless marked celery_worker; the in-process path must give the same answer.
    assert ping.delay().get(timeout=5) == "pong"
