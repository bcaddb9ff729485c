"""manage.py run_nightly [--date YYYY-MM-DD]: the nightly attribution job, in this process, with a progress bar."""

from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError

from attribution.models import AttributionChunk, AttributionRun


class Command(BaseCommand):
    help = (
        "Run the nightly attribution job for one UTC day (default: yesterday): score the day's generations (and "
        "late ones of closed days) against each model version's attribution index, write the attribution rows, "
        "post one accrual per royalty program and close the day. Runs in this process (the embedded default); "
        "--celery hands the chunks to the Celery workers instead and follows their progress. Safe to run again: "
        "scored chunks are skipped and a day already posted posts nothing."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--date", dest="day", default=None, help="the UTC day, YYYY-MM-DD (default: yesterday)")
        parser.add_argument("--chunk-size", type=int, default=None,
                            help="generations per chunk (default: ROYALTIES_NIGHTLY_CHUNK_SIZE)")
        parser.add_argument("--no-close", action="store_true", help="leave the day's ledger period open")
        parser.add_argument("--celery", action="store_true",
                            help="fan the chunks out to Celery workers (needs CELERY_BROKER_URL) and wait")
        parser.add_argument("--timeout", type=float, default=6 * 3600, help="with --celery: seconds to wait")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar (e.g. in logs)")
        parser.add_argument("--json", action="store_true", help="print the run's record as one JSON line")

    def handle(self, *args, **options) -> None:
        from attribution.nightly.errors import ChunkScoringError, NightlyError
        from attribution.nightly.services import night_day_parse, night_run, night_start

        try:
            day = night_day_parse(options["day"], field="--date")
        except NightlyError as exc:
            raise CommandError(exc.message) from exc
        if options["chunk_size"] is not None and options["chunk_size"] < 1:
            raise CommandError(f"--chunk-size must be >= 1, got {options['chunk_size']}")
        bar = None if options["no_progress"] else self._bar(day)
        try:
            if options["celery"]:
                from royalties.celery import app

                if app.conf.task_always_eager:
                    raise CommandError("--celery needs a broker: set CELERY_BROKER_URL (workers consume from it)")
                run = night_start(day=day, trigger=AttributionRun.Trigger.COMMAND,
                                  close_period=not options["no_close"], chunk_size=options["chunk_size"],
                                  actor_label="command:run_nightly")
                run = self._follow(run, bar, options["timeout"])
            else:
                run = night_run(
                    day=day, trigger=AttributionRun.Trigger.COMMAND, close_period=not options["no_close"],
                    chunk_size=options["chunk_size"], progress=bar.update_to if bar is not None else None,
                    actor_label="command:run_nightly",
                )
        except NightlyError as exc:
            raise CommandError(exc.message) from exc
        except ChunkScoringError as exc:
            raise CommandError(f"the night of {day} failed while scoring: {exc}. Fix the cause and run the "
                               "command again: chunks already scored are kept.") from exc
        finally:
            if bar is not None:
                bar.close()
        self._report(run, options["json"])
        if run.status != AttributionRun.Status.COMPLETED:
            raise CommandError(f"the night of {day} did not complete (run #{run.pk}, {run.status}): "
                               + "; ".join(e["message"] for e in run.errors))

    def _bar(self, day):
        from tqdm import tqdm

        class Bar(tqdm):
            def update_to(self, done: int, total: int) -> None:
                self.total = total
                self.update(done - self.n)
                if done == total:
                    self.refresh()

        return Bar(total=0, desc=f"night {day}", unit="chunk", file=self.stderr._out, leave=True)

    def _follow(self, run: AttributionRun, bar, timeout: float) -> AttributionRun:
        """Poll the database until the workers' chord has settled the night (or the run failed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run.refresh_from_db()
            chunks = AttributionChunk.objects.filter(day=run.day)
            if bar is not None:
                bar.update_to(chunks.filter(status=AttributionChunk.Status.SCORED).count(), chunks.count())
            if run.is_finished:
                return run
            time.sleep(0.5)
        raise CommandError(f"run #{run.pk} did not finish within {timeout:.0f}s; it goes on in the workers "
                           "(see its record in the admin), and running the command again resumes it")

    def _report(self, run: AttributionRun, as_json: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps({
                "run_id": run.pk, "day": run.day.isoformat(), "status": run.status, "executor": run.executor,
                "generations": run.generation_count, "late": run.late_generation_count,
                "chunks_scored": run.chunks_scored, "chunks_skipped": run.chunks_skipped,
                "attributions": run.attribution_count, "timings": run.timings, "programs": run.programs,
                "skipped": run.skipped, "warnings": run.warnings, "errors": run.errors,
            }, default=str))
            return
        style = self.style.SUCCESS if run.status == AttributionRun.Status.COMPLETED else self.style.ERROR
        self.stdout.write(style(
            f"night of {run.day}: run #{run.pk} {run.status} ({run.executor}); {run.generation_count} generation(s) "
            f"taken ({run.late_generation_count} late), {run.chunks_scored} chunk(s) scored, "
            f"{run.chunks_skipped} already scored, {run.attribution_count} attribution row(s) written"
        ))
        stages = ("plan", "load", "scoring", "writing", "fanout", "aggregation", "amounts", "posting", "close",
                  "total")
        self.stdout.write("  seconds: " + ", ".join(f"{k} {run.timings[k]:.2f}" for k in stages if k in run.timings))
        for p in run.programs:
            entry = f"entry #{p['entry_id']}" if p.get("entry_id") else "no entry"
            self.stdout.write(
                f"  program {p['program_id']} {p.get('program', '')}: {p['outcome']}, {entry}, "
                f"{p.get('generations', 0)} generation(s), pool {p.get('pool_micros', 0)} / accrued "
                f"{p.get('expense_micros', 0)} micro-{p.get('currency', '')}"
                + (f" ({p['message']})" if p.get("message") else "")
            )
        for s in run.skipped:
            self.stdout.write(self.style.WARNING(
                f"  skipped {s['label']}: {s['generations']} generation(s) left unattributed: {s['reason']}"
            ))
        for w in run.warnings:
            self.stdout.write(self.style.WARNING(f"  warning: {w}"))
        for e in run.errors:
            self.stdout.write(self.style.ERROR(f"  error ({e['stage']}): {e['message']}"))
