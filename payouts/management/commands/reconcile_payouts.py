"""``manage.py reconcile_payouts RUN [RUN ...]``: compare runs with Stripe; print every mismatch; exit 1 on any."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from payouts import stripe_client
from payouts.errors import PayoutValidationError
from payouts.services import payout_run_reconcile


class Command(BaseCommand):
    help = ("Reconcile payout runs with Stripe (transfers and balance transactions of their transfer group). "
            "Prints every mismatch and exits with status 1 if there is any.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("runs", nargs="+", type=int, metavar="RUN", help="payout run id(s)")

    def handle(self, *args, **options) -> None:
        total = 0
        for run_id in options["runs"]:
            try:
                result = payout_run_reconcile(run=run_id, actor_label="command:reconcile_payouts")
            except PayoutValidationError as exc:
                raise CommandError(f"run {run_id}: {exc.message}") from exc
            except stripe_client.StripeFailure as exc:
                raise CommandError(f"run {run_id}: Stripe could not be read: {exc}") from exc
            self.stdout.write(f"run {run_id}: {result.payouts_checked} payouts, {result.transfers_checked} transfers, "
                              f"{result.balance_transactions_checked} balance transactions, "
                              f"{len(result.mismatches)} mismatch(es)")
            for mismatch in result.mismatches:
                self.stdout.write(f"  {mismatch}")
            total += len(result.mismatches)
        if total:
            self.stderr.write(f"{total} mismatch(es) found")
            sys.exit(1)
        self.stdout.write(self.style.SUCCESS("no mismatch"))
