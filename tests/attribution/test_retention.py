"""Retention: prompt/output text of attributed generations is purged after N days; hashes and money stay."""

from __future__ import annotations

import base64
import datetime as dt
from io import StringIO

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone

from attribution.models import Generation
from attribution.services.retention import generation_text_purge
from audit.models import AuditEvent
from tests.attribution.conftest import make_generation_payload

# Relative to the real clock: the command, the task and the worker read it too.
NOW = timezone.now()


@pytest.fixture
def generations(api_key, model_version, post_generations):
    """Four generations: attributed 40 days ago, attributed 10 days ago, never attributed, already purged."""
    items = [make_generation_payload(model_version, prompt=f"private prompt {i}", output_text=f"private out {i}")
             for i in range(4)]
    response = post_generations(api_key.secret, {"generations": items})
    assert response.status_code == 201
    old, recent, pending, purged = (r["id"] for r in response.json()["generations"])
    Generation.objects.filter(pk=old).update(attributed_at=NOW - dt.timedelta(days=40))
    Generation.objects.filter(pk=recent).update(attributed_at=NOW - dt.timedelta(days=10))
    Generation.objects.filter(pk=purged).update(attributed_at=NOW - dt.timedelta(days=400), prompt="",
                                                output_text="", text_purged_at=NOW - dt.timedelta(days=1))
    return {"old": old, "recent": recent, "pending": pending, "purged": purged}


@pytest.mark.django_db
def test_purge_erases_text_of_generations_attributed_before_the_cutoff_only(generations):
    before = Generation.objects.get(pk=generations["old"])

    report = generation_text_purge(retention_days=30, now=NOW)

    assert (report.purged, report.cutoff) == (1, NOW - dt.timedelta(days=30))
    old = Generation.objects.get(pk=generations["old"])
    assert (old.prompt, old.output_text, old.text_purged_at) == ("", "", NOW)
    # What makes statements explainable stays: hashes, money, time, metadata.
    kept = ["prompt_sha256", "output_sha256", "revenue_micros", "currency", "generated_at", "metadata",
            "content_sha256", "attributed_at"]
    assert [getattr(old, f) for f in kept] == [getattr(before, f) for f in kept]
    assert Generation.objects.get(pk=generations["recent"]).prompt == "private prompt 1"
    assert Generation.objects.get(pk=generations["pending"]).prompt == "private prompt 2"
    assert Generation.objects.get(pk=generations["purged"]).text_purged_at == NOW - dt.timedelta(days=1)
    event = AuditEvent.objects.get(action="generation.text_purge")
    assert event.after["purged"] == 1


@pytest.mark.django_db
def test_purge_is_idempotent_and_zero_days_keeps_text_forever(generations):
    assert generation_text_purge(retention_days=0, now=NOW).purged == 0
    assert generation_text_purge(retention_days=30, now=NOW).purged == 1
    assert generation_text_purge(retention_days=30, now=NOW).purged == 0
    assert generation_text_purge(retention_days=5, now=NOW).purged == 1  # the recent one, now old enough


@pytest.mark.django_db
def test_a_replay_after_the_purge_is_still_recognised(api_key, model_version, payload, post_generations):
    body = payload(model_version)
    first = post_generations(api_key.secret, body)
    Generation.objects.update(attributed_at=NOW - dt.timedelta(days=100))
    generation_text_purge(retention_days=30, now=NOW)

    replay = post_generations(api_key.secret, body)

    # The fingerprint is over hashes, so the purge does not turn a retry into a conflict.
    assert replay.status_code == 200
    assert replay.json()["id"] == first.json()["id"]


@pytest.mark.django_db
def test_purge_deletes_an_uploaded_output_file_no_one_else_uses(api_key, model_version, payload, post_generations):
    shared, alone = b"shared image bytes", b"only this one"
    bodies = [
        payload(model_version, output_text=None, output_media={"mime_type": "image/png",
                                                               "content_base64": base64.b64encode(c).decode()})
        for c in (shared, shared, alone)
    ]
    ids = [r["id"] for r in post_generations(api_key.secret, {"generations": bodies}).json()["generations"]]
    names = dict(Generation.objects.values_list("pk", "output_media"))
    Generation.objects.filter(pk__in=[ids[0], ids[2]]).update(attributed_at=NOW - dt.timedelta(days=60))

    report = generation_text_purge(retention_days=30, now=NOW)

    assert (report.purged, report.files_deleted) == (2, 1)
    assert not default_storage.exists(names[ids[2]])
    assert default_storage.exists(names[ids[0]])  # generation ids[1] still points at the shared file
    assert Generation.objects.get(pk=ids[0]).output_media.name == ""


@pytest.mark.django_db
def test_the_command_reports_and_supports_dry_run(generations, settings):
    settings.ROYALTIES_GENERATION_TEXT_RETENTION_DAYS = 30
    Generation.objects.filter(pk=generations["old"]).update(attributed_at=timezone.now() - dt.timedelta(days=31))
    out = StringIO()

    call_command("purge_generation_text", "--dry-run", stdout=out)
    call_command("purge_generation_text", stdout=out)

    assert "would purge the text of 1 generation(s)" in out.getvalue()
    assert "purged the text of 1 generation(s)" in out.getvalue()
    assert Generation.objects.get(pk=generations["old"]).prompt == ""


@pytest.mark.django_db
def test_the_task_uses_the_setting(generations, settings):
    from attribution.tasks import purge_generation_text

    settings.ROYALTIES_GENERATION_TEXT_RETENTION_DAYS = 30
    Generation.objects.filter(pk=generations["recent"]).update(attributed_at=timezone.now() - dt.timedelta(days=31))

    result = purge_generation_text.delay().get()

    assert result["purged"] == 2  # "old" (attributed 40 days ago) and "recent", moved to 31 days ago
    assert Generation.objects.filter(text_purged_at__isnull=False).count() == 3


def test_the_purge_is_scheduled_daily():
    from royalties.celery import BEAT_SCHEDULE

    entry = BEAT_SCHEDULE["attribution-purge-generation-text"]
    assert entry["task"] == "attribution.purge_generation_text"
    assert entry["schedule"].hour == {3}


@pytest.mark.celery_worker
def test_a_real_worker_runs_the_purge(celery_worker, generations):
    from attribution.tasks import purge_generation_text

    # The worker runs with the default retention (90 days): move "old" past it.
    Generation.objects.filter(pk=generations["old"]).update(attributed_at=timezone.now() - dt.timedelta(days=91))

    result = purge_generation_text.delay().get(timeout=60)

    assert result["purged"] == 1
    assert Generation.objects.get(pk=generations["old"]).text_purged_at is not None
