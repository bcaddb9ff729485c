"""``manage.py demo [--quick] [--serve]``: the whole story on this machine, offline, idempotent.

1. people of every role and a catalog of works from data shipped in installed packages (co-owned works, an
   opt-out, a duplicate upload that opens a dispute);
2. the two reference models trained locally on those works, registered with their manifests, royalty programs
   and attribution indexes;
3. a model service logging a few hundred generations over a week (two days with --quick) over the real REST API
   with an API key;
4. the nightly attribution of each of those days, posting the ledger entries;
5. the fake Stripe server, onboarding, a payout run created by finance A, approved by finance B, executed,
   its statements issued and reconciled;
6. with ``--serve``: the site, served with the fake Stripe server still running, and the logins printed.

Every step finds what an earlier run made (stable natural keys) and makes nothing twice.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from accounts.roles import STAFF_ROLES
from demo.corpus import DEMO_PASSWORD, DEMO_PEOPLE, FULL, QUICK, demo_totp_secret

# The services log every Stripe call, task and chunk at INFO: useful in production, noise around the demo's own
# progress lines. Verbosity 2 (-v 2) keeps them.
CHATTY_LOGGERS = {"payouts": logging.WARNING, "attribution": logging.WARNING, "celery": logging.WARNING,
                  "royalties": logging.WARNING, "kombu": logging.ERROR}


@contextlib.contextmanager
def quiet_logs(enabled: bool) -> Iterator[None]:
    loggers = {name: logging.getLogger(name) for name in CHATTY_LOGGERS} if enabled else {}
    saved = {name: logger.level for name, logger in loggers.items()}
    for name, logger in loggers.items():
        logger.setLevel(CHATTY_LOGGERS[name])
    try:
        yield
    finally:
        for name, logger in loggers.items():
            logger.setLevel(saved[name])


class Command(BaseCommand):
    help = (
        "Run the whole story on the embedded default: people, catalog, locally trained models, generations "
        "logged over the REST API, the nightly attribution, a payout run approved by a second finance user, "
        "statements. Safe to run again: it creates nothing twice. With --serve, then serve the site."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--quick", action="store_true",
                            help="a small catalog, tiny models and a few dozen generations (for tests)")
        parser.add_argument("--serve", action="store_true",
                            help="then serve the site (runserver, no reloader) with the fake Stripe server running")
        parser.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1)")
        parser.add_argument("--port", default="8000", help="port to serve on (default 8000)")
        parser.add_argument("--threads", type=int, default=None,
                            help="torch threads for training and sampling (default: half the CPUs, at least 1)")

    def say(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()

    @contextlib.contextmanager
    def step(self, number: int, title: str, label: str) -> Iterator[None]:
        self.say(self.style.MIGRATE_HEADING(f"[{number}/6] {title}"))
        started = time.perf_counter()
        yield
        seconds = time.perf_counter() - started
        self.timings.append((label, seconds))
        self.say(f"  done in {seconds:.1f}s")

    def handle(self, *args, quick: bool, serve: bool, host: str, port: str, threads: int | None, **options) -> None:
        from demo.services.models import DEMO_MODELS
        from demo.services.payouts import DemoStripeError, demo_fake_stripe

        if threads is not None and threads < 1:
            raise CommandError(f"--threads must be at least 1, got {threads}")
        import torch

        # Half the CPUs: torch's own default (every core) spins its threads against the web server and SQLite
        # working beside it, which on two busy cores made training three times slower than one thread.
        torch.set_num_threads(threads or max(1, (os.cpu_count() or 2) // 2))
        self.timings: list[tuple[str, float]] = []
        names = [m.name for m in DEMO_MODELS]
        site = f"http://{host}:{port}"
        began = time.perf_counter()
        try:
            with demo_fake_stripe(say=self.say) as fake:
                with quiet_logs(options["verbosity"] < 2):
                    self.story(quick=quick, names=names, began=began)
                if serve:
                    self.serve(fake=fake, host=host, port=port, site=site, quiet=options["verbosity"] < 2)
                else:
                    self.logins(site, serving=False)
        except DemoStripeError as exc:
            raise CommandError(str(exc)) from exc

    def story(self, *, quick: bool, names: list[str], began: float) -> None:
        from demo.services.catalog import demo_catalog_ensure
        from demo.services.model_service import demo_days, demo_traffic_send
        from demo.services.models import demo_models_ensure
        from demo.services.night import demo_night_run
        from demo.services.payouts import demo_onboarding_ensure, demo_payout_run_ensure
        from demo.services.people import demo_people_ensure

        with self.step(1, "People and catalog", "catalog"):
            demo_people_ensure(say=self.say)
            catalog = demo_catalog_ensure(size=QUICK if quick else FULL, say=self.say)
        days = demo_days(model_names=names, quick=quick)
        span = f"{days[0]} to {days[-1]}"
        with self.step(2, "Models: training, registration, royalty programs, indexes", "models"):
            outcomes = demo_models_ensure(quick=quick, day=days[0], say=self.say)
        with self.step(3, f"A model service logs generations of {span} over the REST API", "generations"):
            traffic = demo_traffic_send(outcomes=outcomes, days=days, quick=quick, say=self.say)
        with self.step(4, f"The nightly attribution, night after night, {span}", "nights"):
            for day in days:
                demo_night_run(day=day, model_names=names, say=self.say)
        with self.step(5, "Payouts: onboarding, a run made by finance A, approved by B, executed", "payouts"):
            demo_onboarding_ensure(say=self.say)
            run = demo_payout_run_ensure(day=days[-1], say=self.say).run
        self.summary(catalog=catalog, outcomes=outcomes, traffic=traffic, run=run, span=span, began=began)

    def serve(self, *, fake, host: str, port: str, site: str, quiet: bool) -> None:
        """runserver in this process (no reloader: a reload would lose the fake Stripe thread) until Ctrl-C."""
        from demo.services.payouts import demo_webhooks_register

        with self.step(6, f"Serving the site at {site}/", "serve"), quiet_logs(quiet):
            if fake is not None:
                demo_webhooks_register(site_url=site, say=self.say)
            if settings.SITE_URL.rstrip("/") != site:
                self.say(self.style.WARNING(
                    f"  ROYALTIES_SITE_URL is {settings.SITE_URL}: Stripe's return links lead there, not to {site} "
                    "(make demo sets it)"))
        self.logins(site, serving=True)
        call_command("runserver", f"{host}:{port}", use_reloader=False)

    def summary(self, *, catalog, outcomes, traffic, run, span: str, began: float) -> None:
        from attribution.models import Generation
        from contributors.models import Dispute, Work

        works = [w for _, w in catalog.works]
        co_owned = sum(1 for spec, _ in catalog.works if spec.shares)
        logged = Generation.objects.filter(model_version__in=[o.version for o in outcomes]).count()
        self.say(self.style.SUCCESS("\nThe demo is ready."))
        self.say(f"  {len(works)} works ({co_owned} co-owned, "
                 f"{sum(1 for w in works if w.opted_out_at)} opted out, "
                 f"{Dispute.objects.filter(status=Dispute.Status.OPEN, claim_work__in=works).count()} open dispute), "
                 f"{Work.objects.filter(kind='image', pk__in=[w.pk for w in works]).count()} of them images")
        for outcome in outcomes:
            self.say(f"  {outcome.version.ref}: checkpoint {outcome.checkpoint_dir.name}, "
                     f"{outcome.version.manifest_entries.count()} works in its manifest")
        self.say(f"  {logged} generations of {span} logged ({traffic.created} now, {traffic.near_copies} near-copies "
                 "sent now)")
        self.say(f"  payout run #{run.pk}: {run.get_status_display().lower()}")
        self.say("  step times: " + ", ".join(f"{label} {s:.1f}s" for label, s in self.timings)
                 + f"; total {time.perf_counter() - began:.1f}s")

    def logins(self, site: str, *, serving: bool) -> None:
        from demo.services.people import demo_otpauth_uri

        if serving:
            self.say(self.style.SUCCESS(f"\nThe platform is at {site}/"))
        else:
            self.say(self.style.SUCCESS(
                f"\nServe it with `make demo` (or `manage.py demo --serve`): it will be at {site}/"))
        self.say(f"Logins (password for everyone: {DEMO_PASSWORD}):")
        for person in DEMO_PEOPLE:
            self.say(f"  {person.email:26s} {person.label}")
        self.say("Staff also give a TOTP code. Their authenticators are enrolled with fixed demo secrets (add one to "
                 "an authenticator app, or print the current code with "
                 "`.venv/bin/python manage.py demo_totp EMAIL`):")
        for person in DEMO_PEOPLE:
            if person.role in STAFF_ROLES:
                secret = demo_totp_secret(person.email)
                self.say(f"  {person.email:26s} {secret}  {demo_otpauth_uri(email=person.email, secret=secret)}")
