"""Statements: what a contributor was owed, earned, and paid, line by line, issued once and never changed.

A statement covers a set of ledger entries on the contributor's payable account (``StatementEntry``, each
entry covered by one statement at most, enforced by the database), so statements chain exactly:
``opening = previous closing`` and ``opening + movements - transfer = closing``, whatever order entries
were posted in. The PDF and CSV are written once to private storage (outside MEDIA_ROOT, so never served
as media) with their SHA-256 stored beside them; a download checks the hash before sending the bytes.
"""

from __future__ import annotations

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.db import models

from payouts.errors import StatementImmutableError


def statement_storage() -> FileSystemStorage:
    """Private storage for statement files (a callable, so tests that move the data directory follow it)."""
    return FileSystemStorage(location=settings.DATA_DIR / "statements", base_url=None)


class StatementQuerySet(models.QuerySet):
    def update(self, **kwargs):  # type: ignore[override]
        raise StatementImmutableError("statements are immutable: they cannot be updated")

    def delete(self):  # type: ignore[override]
        raise StatementImmutableError("statements are immutable: they cannot be deleted")

    def bulk_update(self, objs, fields, batch_size=None):  # type: ignore[override]
        raise StatementImmutableError("statements are immutable: they cannot be updated")


class Statement(models.Model):
    """One statement: for a payout (its transfer explained) or monthly (a balance that was not paid)."""

    class Kind(models.TextChoices):
        PAYOUT = "payout", "Payout statement"
        MONTHLY = "monthly", "Monthly statement"

    number = models.CharField(max_length=50, unique=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    contributor = models.ForeignKey("contributors.Contributor", on_delete=models.PROTECT, related_name="statements")
    currency = models.CharField(max_length=3)
    payout = models.OneToOneField("payouts.Payout", null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="statement")
    period_start = models.DateField()
    period_end = models.DateField()
    opening_balance_micros = models.BigIntegerField()
    accruals_micros = models.BigIntegerField()
    other_movements_micros = models.BigIntegerField()
    transfer_micros = models.BigIntegerField()
    closing_balance_micros = models.BigIntegerField()
    # The lines as shown on the PDF and in the CSV (the files are rendered from exactly this).
    lines = models.JSONField()
    csv_file = models.FileField(storage=statement_storage, upload_to="csv/%Y/%m/")
    pdf_file = models.FileField(storage=statement_storage, upload_to="pdf/%Y/%m/")
    csv_sha256 = models.CharField(max_length=64)
    pdf_sha256 = models.CharField(max_length=64)
    issued_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = StatementQuerySet.as_manager()

    class Meta:
        ordering = ["-period_end", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(closing_balance_micros=models.F("opening_balance_micros")
                                   + models.F("accruals_micros") + models.F("other_movements_micros")
                                   - models.F("transfer_micros")),
                name="statement_lines_add_up",
            ),
            models.CheckConstraint(
                condition=(models.Q(kind="payout", payout__isnull=False)
                           | models.Q(kind="monthly", payout__isnull=True, transfer_micros=0)),
                name="statement_kind_matches_payout",
            ),
            models.UniqueConstraint(fields=["contributor", "currency", "period_end"],
                                    condition=models.Q(kind="monthly"), name="statement_one_monthly_per_period"),
        ]
        indexes = [models.Index(fields=["contributor", "currency", "issued_at"])]

    def __str__(self) -> str:
        return f"Statement {self.number}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise StatementImmutableError(f"statement {self.number} is immutable: it cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise StatementImmutableError(f"statement {self.number} is immutable: it cannot be deleted")


class StatementEntry(models.Model):
    """A ledger entry on a contributor's payable account, covered by exactly one statement."""

    statement = models.ForeignKey(Statement, on_delete=models.PROTECT, related_name="entries")
    account = models.ForeignKey("ledger.Account", on_delete=models.PROTECT, related_name="+")
    journal_entry = models.ForeignKey("ledger.JournalEntry", on_delete=models.PROTECT, related_name="+")
    # The entry's net effect on what the contributor is owed (credit to payable = positive).
    owed_micros = models.BigIntegerField()

    class Meta:
        ordering = ["statement_id", "journal_entry_id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "journal_entry"], name="statement_entry_covered_once"),
        ]

    def __str__(self) -> str:
        return f"entry {self.journal_entry_id} in statement {self.statement_id}"
