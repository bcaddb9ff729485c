"""manage.py run_nightly, the beat entry and the Celery task: the same night, started three ways."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from django.core.management import CommandError, call_command

from attribution.models import AttributionRun
from royalties.ledger.models import Period
from tests.attribution.nightly.conftest import DAY, accrual_entries


@pytest.fixture
def day_with_generations(world):
    alice = world.contributor()
    river = world.work("a quiet river runs through the forest", alice)
    ai_model, program = world.program()
    version = world.version(ai_model, [river])
    for i in range(5):
        world.generation(version, "river forest", revenue_micros=10_000 + i)
    return program


def test_the_command_runs_the_night_in_process_with_a_progress_bar(day_with_generations):
    out, err = io.StringIO(), io.StringIO()

    call_command("run_nightly", "--date", DAY.isoformat(), "--chunk-size", "2", stdout=out, stderr=err)

    run = AttributionRun.objects.get()
    assert (run.status, run.trigger, run.executor) == ("completed", "command", "in-process")
    assert run.chunks_scored == 3
    assert "3/3" in err.getvalue()  # the progress bar reached the last chunk
    text = out.getvalue()
    assert f"night of {DAY}: run #{run.pk} completed" in text
    assert f"entry #{accrual_entries(day_with_generations)[0].pk}" in text
    for stage in ("scoring", "writing", "aggregation", "posting"):
        assert stage in text
    assert Period.objects.get(day=DAY).is_closed


def test_the_command_prints_json_and_a_second_run_posts_nothing(day_with_generations):
    # date= as a keyword, as other code (the demo) calls it
    call_command("run_nightly", date=DAY.isoformat(), no_progress=True, stdout=io.StringIO())
    out = io.StringIO()

    call_command("run_nightly", "--date", DAY.isoformat(), "--no-progress", "--json", stdout=out)

    report = json.loads(out.getvalue())
    assert report["status"] == "completed"
    assert [p["outcome"] for p in report["programs"]] == ["unchanged"]
    assert report["generations"] == 0
    assert len(accrual_entries(day_with_generations)) == 1


@pytest.mark.parametrize(("value", "message"), [
    ("2024-13-01", "--date must be a day as YYYY-MM-DD"),
    ("yesterday", "--date must be a day as YYYY-MM-DD"),
])
def test_the_command_refuses_a_bad_date_naming_it(db, value, message):
    with pytest.raises(CommandError, match=message):
        call_command("run_nightly", "--date", value, stdout=io.StringIO())
    assert not AttributionRun.objects.exists()


def test_the_command_refuses_a_day_that_has_not_ended(db):
    today = dt.datetime.now(dt.UTC).date()
    with pytest.raises(CommandError, match="has not ended yet"):
        call_command("run_nightly", "--date", today.isoformat(), stdout=io.StringIO())
    with pytest.raises(CommandError, match="--chunk-size must be >= 1"):
        call_command("run_nightly", "--date", DAY.isoformat(), "--chunk-size", "0", stdout=io.StringIO())
    assert not AttributionRun.objects.exists()


def test_celery_needs_a_broker(day_with_generations):
    with pytest.raises(CommandError, match="--celery needs a broker"):
        call_command("run_nightly", "--date", DAY.isoformat(), "--celery", stdout=io.StringIO())


def test_beat_runs_the_previous_day_at_two_utc_through_the_same_task(day_with_generations, monkeypatch):
    from attribution.tasks import run_nightly
    from royalties.celery import BEAT_SCHEDULE

    entry = BEAT_SCHEDULE["attribution-nightly"]
    assert entry["task"] == "attribution.run_nightly"
    assert (entry["schedule"].hour, entry["schedule"].minute) == ({2}, {0})
    assert run_nightly.name == entry["task"]

    # Beat calls it with no argument: the previous UTC day. (Pinned here to the test's day via the clock.)
    import attribution.nightly.services as services

    monkeypatch.setattr(services, "utc_yesterday", lambda: DAY)
    result = run_nightly.apply().get()

    run = AttributionRun.objects.get(pk=result["run_id"])
    assert (run.day, run.trigger, run.executor, run.status) == (DAY, "beat", "celery", "completed")
    assert len(accrual_entries(day_with_generations)) == 1


def test_a_chunk_that_cannot_be_scored_fails_the_night_with_its_reason_and_writes_nothing(world):
    from pathlib import Path

    from attribution.models import AttributionChunk, Generation

    alice = world.contributor()
    river = world.work("a quiet river runs through the forest", alice)
    ai_model, program = world.program()
    version = world.version(ai_model, [river])
    world.generation(version, "river", revenue_micros=10_000)
    # Someone altered the index files after the build: scoring with them could pay the wrong people.
    target = next(p for p in sorted(Path(version.index_path).rglob("*")) if p.is_file() and p.suffix == ".npy")
    target.write_bytes(target.read_bytes() + b"tampered")

    with pytest.raises(CommandError, match=r"failed while scoring: chunk .* were altered"):
        call_command("run_nightly", "--date", DAY.isoformat(), "--no-progress", stdout=io.StringIO())

    run = AttributionRun.objects.get()
    assert run.status == AttributionRun.Status.FAILED
    assert "were altered" in run.errors[0]["message"]
    chunk = AttributionChunk.objects.get()
    assert chunk.status == AttributionChunk.Status.PLANNED
    assert "were altered" in chunk.last_error
    assert not accrual_entries(program)
    assert not Generation.objects.filter(attributed_at__isnull=False).exists()
