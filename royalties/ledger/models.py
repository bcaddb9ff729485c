"""The royalty ledger: programs and their versioned terms, daily periods, accounts, journal entries, postings,
and the accrual detail that explains every micro-unit.

Sign convention: ``amount_micros`` is signed, debit positive and credit negative, so an entry balances when
its postings sum to zero in each currency and an account's raw balance is the plain sum of its postings.
Normal balances: royalty expense, Stripe clearing and cash are debit-normal (their raw balance is positive);
contributor payable and hold accounts are liabilities, credit-normal (raw balance negative: what we owe).

Journal entries, postings and accrual details are append-only: the ORM refuses update and delete here, and
database triggers (migration 0002) refuse them on PostgreSQL and SQLite as well. A mistake is corrected by
a reversal entry, never by an edit.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models

from royalties.ledger.errors import ImmutableRecordError

BPS_TOTAL = 10_000


class AppendOnlyQuerySet(models.QuerySet):
    """Refuses bulk update and delete: the rows of these tables are written once and kept forever."""

    def update(self, **kwargs):  # type: ignore[override]
        raise ImmutableRecordError(f"{self.model._meta.label} rows are immutable: they cannot be updated.")

    def delete(self):  # type: ignore[override]
        raise ImmutableRecordError(f"{self.model._meta.label} rows are immutable: post a reversal instead.")

    def bulk_update(self, objs, fields, batch_size=None):  # type: ignore[override]
        raise ImmutableRecordError(f"{self.model._meta.label} rows are immutable: they cannot be updated.")


class AppendOnlyModel(models.Model):
    """A row that can be inserted and never changed or deleted through the ORM."""

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ImmutableRecordError(f"{self._meta.label} rows are immutable: they cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableRecordError(f"{self._meta.label} rows are immutable: post a reversal instead.")


# --- programs -----------------------------------------------------------------------------------------


class RoyaltyProgram(models.Model):
    """The royalty program of one AI model; what it pays is in its versioned terms."""

    ai_model = models.OneToOneField("attribution.AIModel", on_delete=models.PROTECT, related_name="royalty_program")
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_by_label = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class RoyaltyProgramTerms(AppendOnlyModel):
    """One version of a program's terms, in force from ``effective_from`` until a later version starts.

    Rows are never edited: a change is a new row, and it may only take effect on a day that has not been
    closed or accrued yet, so every period stays computed under the terms that were in force for it.
    """

    class PoolKind(models.TextChoices):
        REVENUE_SHARE = "revenue_share", "Share of generation revenue"
        FIXED = "fixed", "Fixed amount per day"

    program = models.ForeignKey(RoyaltyProgram, on_delete=models.PROTECT, related_name="terms")
    version = models.PositiveIntegerField()
    effective_from = models.DateField()
    currency = models.CharField(max_length=3)
    pool_kind = models.CharField(max_length=20, choices=PoolKind.choices)
    # Revenue share: this many basis points of each generation's revenue form the pool.
    pool_bps = models.PositiveIntegerField(null=True, blank=True)
    # Fixed: this many micro-units form the pool of each UTC day (each ledger period).
    pool_fixed_micros = models.BigIntegerField(null=True, blank=True)
    # Part of the pool spread over every work of the version's training manifest, pro rata per work.
    baseline_bps = models.PositiveIntegerField(default=0)
    # Attribution keeps at most this many works (positive score) per generation...
    top_k = models.PositiveIntegerField()
    # ...and drops those whose share of the kept scores is below this fraction (0 keeps all).
    min_share = models.DecimalField(max_digits=7, decimal_places=6, default=Decimal("0"))
    # Smallest payout, in the currency's minor unit; smaller balances carry forward.
    payout_threshold_minor = models.BigIntegerField(default=0)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_by_label = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["program_id", "-effective_from", "-version"]
        verbose_name = "royalty program terms"
        verbose_name_plural = "royalty program terms"
        constraints = [
            models.UniqueConstraint(fields=["program", "version"], name="ledger_terms_unique_version"),
            models.CheckConstraint(
                condition=(
                    models.Q(pool_kind="revenue_share", pool_bps__isnull=False, pool_bps__lte=BPS_TOTAL,
                             pool_fixed_micros__isnull=True)
                    | models.Q(pool_kind="fixed", pool_fixed_micros__isnull=False, pool_fixed_micros__gte=0,
                               pool_bps__isnull=True)
                ),
                name="ledger_terms_pool_kind",
            ),
            models.CheckConstraint(condition=models.Q(baseline_bps__lte=BPS_TOTAL), name="ledger_terms_baseline"),
            models.CheckConstraint(condition=models.Q(top_k__gte=1), name="ledger_terms_top_k"),
            models.CheckConstraint(
                condition=models.Q(min_share__gte=0, min_share__lte=1), name="ledger_terms_min_share"
            ),
            models.CheckConstraint(
                condition=models.Q(payout_threshold_minor__gte=0), name="ledger_terms_threshold"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.program} v{self.version} from {self.effective_from}"


# --- periods and accounts -----------------------------------------------------------------------------


class Period(models.Model):
    """One UTC calendar day of the ledger. Once closed, nothing more is posted to it, ever."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    day = models.DateField(unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    closed_by_label = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-day"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status="open", closed_at__isnull=True)
                | models.Q(status="closed", closed_at__isnull=False),
                name="ledger_period_closed_at",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day} ({self.status})"

    @property
    def is_closed(self) -> bool:
        return self.status == self.Status.CLOSED


class Account(AppendOnlyModel):
    """A ledger account. Identity is (kind, program, contributor, currency); accounts are never changed."""

    class Kind(models.TextChoices):
        ROYALTY_EXPENSE = "royalty_expense", "Royalty expense (per program)"
        CONTRIBUTOR_PAYABLE = "contributor_payable", "Contributor payable"
        HOLD = "hold", "Held payable (per contributor)"
        STRIPE_CLEARING = "stripe_clearing", "Stripe clearing"
        CASH = "cash", "Cash"

    # +1: debit-normal (expense, assets), -1: credit-normal (liabilities). See the module docstring.
    NORMAL_SIGN: dict[str, int] = {
        Kind.ROYALTY_EXPENSE: 1,
        Kind.STRIPE_CLEARING: 1,
        Kind.CASH: 1,
        Kind.CONTRIBUTOR_PAYABLE: -1,
        Kind.HOLD: -1,
    }

    kind = models.CharField(max_length=30, choices=Kind.choices)
    currency = models.CharField(max_length=3)
    program = models.ForeignKey(
        RoyaltyProgram, null=True, blank=True, on_delete=models.PROTECT, related_name="accounts"
    )
    contributor = models.ForeignKey(
        "contributors.Contributor", null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_accounts"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "currency", "id"]
        constraints = [
            # Partial unique indexes, one per identity shape: a plain unique over nullable columns would
            # let PostgreSQL and SQLite store duplicates, because NULLs never compare equal.
            models.UniqueConstraint(
                fields=["program", "currency"], condition=models.Q(kind="royalty_expense"),
                name="ledger_account_unique_expense",
            ),
            models.UniqueConstraint(
                fields=["kind", "contributor", "currency"],
                condition=models.Q(kind__in=["contributor_payable", "hold"]),
                name="ledger_account_unique_contributor",
            ),
            models.UniqueConstraint(
                fields=["kind", "currency"], condition=models.Q(kind__in=["stripe_clearing", "cash"]),
                name="ledger_account_unique_platform",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(kind="royalty_expense", program__isnull=False, contributor__isnull=True)
                    | models.Q(kind__in=["contributor_payable", "hold"], program__isnull=True,
                               contributor__isnull=False)
                    | models.Q(kind__in=["stripe_clearing", "cash"], program__isnull=True, contributor__isnull=True)
                ),
                name="ledger_account_owner_matches_kind",
            ),
        ]

    def __str__(self) -> str:
        owner = f" program {self.program_id}" if self.program_id else ""
        owner += f" contributor {self.contributor_id}" if self.contributor_id else ""
        return f"{self.get_kind_display()}{owner} [{self.currency}]"

    @property
    def normal_sign(self) -> int:
        return self.NORMAL_SIGN[self.kind]


# --- entries ------------------------------------------------------------------------------------------


class JournalEntry(AppendOnlyModel):
    """One balanced, immutable transaction: a set of postings that sum to zero in each currency."""

    class Kind(models.TextChoices):
        ACCRUAL = "accrual", "Royalty accrual"
        REVERSAL = "reversal", "Reversal"
        HOLD = "hold", "Hold placed"
        HOLD_RELEASE = "hold_release", "Hold released"
        PAYOUT = "payout", "Payout transfer"
        PAYOUT_RETURN = "payout_return", "Payout returned"
        FUNDING = "funding", "Platform funding"
        ADJUSTMENT = "adjustment", "Adjustment"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    period = models.ForeignKey(Period, on_delete=models.PROTECT, related_name="entries")
    idempotency_key = models.CharField(max_length=200, unique=True)
    # SHA-256 of the entry's money content (kind, period, reversal link, sorted postings and accrual detail):
    # a replay with the same key must carry the same content, and check_ledger recomputes it from the rows.
    content_hash = models.CharField(max_length=64)
    memo = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_by_label = models.CharField(max_length=200, blank=True)
    # One-to-one: an entry is reversed at most once, enforced by the database.
    reverses = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by"
    )
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "journal entries"
        indexes = [models.Index(fields=["kind", "period"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind} {self.period.day if self.period_id else ''} {self.idempotency_key}"


class Posting(AppendOnlyModel):
    """One line of an entry: a signed amount (debit +, credit -) on one account, in the account's currency."""

    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="postings")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="postings")
    amount_micros = models.BigIntegerField()

    class Meta:
        ordering = ["entry_id", "id"]
        constraints = [models.CheckConstraint(condition=~models.Q(amount_micros=0), name="ledger_posting_nonzero")]
        indexes = [models.Index(fields=["account", "entry"])]

    def __str__(self) -> str:
        return f"{self.amount_micros:+d} on account {self.account_id}"


class Accrual(AppendOnlyModel):
    """What one contributor earned from one work on one day under one program, and why.

    ``period`` is the day the royalties were earned (the generations' day); the journal entry that booked
    them may sit in a later period when it is a correction. A reversal writes the negated rows, so sums over
    (contributor, work, period) always give what is currently owed. The generations behind a row are the
    ``attribution.Attribution`` rows of that work whose generation belongs to the program's AI model and
    was made on that day; ``attributed_micros`` is this owner's share of their amounts.
    """

    journal_entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="accruals")
    period = models.ForeignKey(Period, on_delete=models.PROTECT, related_name="accruals")
    program = models.ForeignKey(RoyaltyProgram, on_delete=models.PROTECT, related_name="accruals")
    contributor = models.ForeignKey("contributors.Contributor", on_delete=models.PROTECT, related_name="accruals")
    work = models.ForeignKey("contributors.Work", on_delete=models.PROTECT, related_name="accruals")
    amount_micros = models.BigIntegerField()
    # amount = baseline (the manifest-wide share) + attributed (from this day's generations)
    baseline_micros = models.BigIntegerField()
    attributed_micros = models.BigIntegerField()
    generation_count = models.IntegerField()
    # The contributor's share of the work when this was computed: the split stays explainable after the
    # work's ownership changes.
    ownership_bps = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["period_id", "work_id", "contributor_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["journal_entry", "contributor", "work"], name="ledger_accrual_unique"),
            models.CheckConstraint(
                condition=models.Q(amount_micros=models.F("baseline_micros") + models.F("attributed_micros")),
                name="ledger_accrual_parts_sum",
            ),
            models.CheckConstraint(
                condition=models.Q(ownership_bps__isnull=True)
                | models.Q(ownership_bps__gte=1, ownership_bps__lte=BPS_TOTAL),
                name="ledger_accrual_ownership_bps",
            ),
        ]
        indexes = [
            models.Index(fields=["contributor", "period"]),
            models.Index(fields=["program", "period", "work"]),
        ]

    def __str__(self) -> str:
        return f"{self.amount_micros} to contributor {self.contributor_id} for work {self.work_id}"
