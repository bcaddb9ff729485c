"""The Celery app: JSON only, late acks, time limits, tasks autodiscovered from the installed apps."""

from __future__ import annotations

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "royalties.settings")

app = Celery("royalties")
# Every CELERY_* Django setting configures the app (broker, eager mode, serialisers, acks_late, limits).
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The beat schedule: one entry per periodic job, all times UTC. The apps' jobs register here.
BEAT_SCHEDULE: dict[str, dict] = {
    "celery-results-cleanup": {
        # django-celery-results keeps task results in the database; expire them daily.
        "task": "celery.backend_cleanup",
        "schedule": crontab(hour=4, minute=0),
    },
    "attribution-nightly": {
        # The previous UTC day: score its generations, post one accrual per royalty program, close the day.
        "task": "attribution.run_nightly",
        "schedule": crontab(hour=2, minute=0),
    },
    "attribution-purge-generation-text": {
        # Retention: erase prompt/output text of generations attributed more than N days ago.
        "task": "attribution.purge_generation_text",
        "schedule": crontab(hour=3, minute=30),
    },
    "payouts-stripe-events-retry": {
        # Stripe events stored but never processed (a lost task, a broker outage, Stripe down) are retried.
        "task": "payouts.stripe_events_retry_pending",
        "schedule": crontab(minute="*/10"),
    },
    "payouts-resume-stalled-runs": {
        # Payouts left pending or in doubt (a killed worker, Stripe unreachable) are resent with their own key.
        "task": "payouts.payout_runs_resume_stalled",
        "schedule": crontab(minute="5-59/10"),
    },
    "payouts-monthly-statements": {
        # The 1st of each month: statements of the month just ended for contributors it did not pay.
        "task": "payouts.statements_issue_monthly",
        "schedule": crontab(day_of_month="1", hour=5, minute=0),
    },
}
app.conf.beat_schedule = BEAT_SCHEDULE


@app.task(name="royalties.ping")
def ping() -> str:
    """A task with no side effects: health checks and the worker integration test run it."""
    return "pong"
