"""``manage.py check_ledger``: verify every ledger invariant; print each breach; exit 1 if there is any."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from royalties.ledger.checks import ledger_check, ledger_span


class Command(BaseCommand):
    help = (
        "Verify the royalty ledger: entries balance per currency, content hashes match their rows, nothing was "
        "posted to a closed period after closing, reversals negate exactly their original (at most once), "
        "balances equal sums of postings, accrual detail explains its entry, terms were not changed "
        "retroactively, idempotency keys are unique and the immutability triggers are in place. "
        "Exits with status 1 on any breach."
    )

    def handle(self, *args, **options) -> None:
        result = ledger_check()
        for breach in result.breaches:
            self.stderr.write(str(breach))
        span = ledger_span()
        summary = (
            f"{result.entries} entries, {result.postings} postings, {result.accruals} accrual rows "
            f"({span['first'] or '-'} .. {span['last'] or '-'})"
        )
        if result.breaches:
            raise CommandError(f"ledger check FAILED: {len(result.breaches)} breach(es) in {summary}", returncode=1)
        self.stdout.write(self.style.SUCCESS(f"ledger check passed: {summary}"))
