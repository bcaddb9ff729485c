"""``manage.py issue_statements --month YYYY-MM``: the monthly statements of a month that has ended (idempotent)."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from payouts.services import statements_issue_monthly
from payouts.services.runs import utc_today


class Command(BaseCommand):
    help = "Issue the monthly statements of contributors not paid in a month (default: the previous month)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--month", help="the month, YYYY-MM (default: the previous calendar month, UTC)")

    def handle(self, *args, **options) -> None:
        if options["month"]:
            try:
                month = dt.date.fromisoformat(f"{options['month']}-01")
            except ValueError:
                raise CommandError(f"--month must be YYYY-MM, got {options['month']!r}") from None
        else:
            month = (utc_today().replace(day=1) - dt.timedelta(days=1)).replace(day=1)
        last = (month + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
        if last >= utc_today():
            raise CommandError(f"{month:%Y-%m} has not ended yet (UTC); statements are issued after the month")
        result = statements_issue_monthly(month=month)
        self.stdout.write(f"{month:%Y-%m}: {result['issued']} issued, {result['skipped']} skipped (nothing to say "
                          f"or already stated), {result['failed']} failed")
        if result["failed"]:
            raise CommandError(f"{result['failed']} statement(s) could not be issued; see the log")
