"""Payout runs: who gets paid how much in one batch, who was left out and why, and what reconciliation found.

A run's rows change only through ``payouts.services`` (each change audited). Amounts are integers: the
payout in the currency's minor unit (what Stripe moves), with the micro-unit balance it came from and the
sub-cent remainder that stays on the contributor's payable balance.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class PayoutRun(models.Model):
    """One batch of payouts in one currency, from draft through maker-checker approval to execution."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PENDING_APPROVAL = "pending_approval", "Pending approval"
        APPROVED = "approved", "Approved"
        EXECUTING = "executing", "Executing"
        COMPLETED = "completed", "Completed"
        COMPLETED_WITH_FAILURES = "completed_with_failures", "Completed with failures"
        CANCELLED = "cancelled", "Cancelled"

    # A contributor in a run that has not finished cannot be drafted into another one (no double spend).
    OPEN_STATUSES = (Status.DRAFT, Status.PENDING_APPROVAL, Status.APPROVED, Status.EXECUTING)
    FINISHED_STATUSES = (Status.COMPLETED, Status.COMPLETED_WITH_FAILURES)

    status = models.CharField(max_length=30, choices=Status.choices, default=Status.DRAFT, db_index=True)
    currency = models.CharField(max_length=3)
    # The last ledger day whose postings count towards the balances paid (inclusive).
    as_of = models.DateField()
    # Balances that convert to fewer minor units carry forward; where the figure came from is kept beside it.
    threshold_minor = models.BigIntegerField()
    threshold_source = models.CharField(max_length=300)
    note = models.TextField(blank=True)

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="+")
    submitted_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")
    approved_at = models.DateTimeField(null=True, blank=True)
    executed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")
    execution_started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="+")
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.TextField(blank=True)

    # Totals of the draft (what was approved); live progress is counted from the payouts.
    payout_count = models.PositiveIntegerField(default=0)
    total_minor = models.BigIntegerField(default=0)
    excluded_count = models.PositiveIntegerField(default=0)
    # Micro-units left on the payable balances of the paid contributors (sub-cent remainders).
    remainder_micros = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # Maker-checker at the bottom of the house: whatever path a write takes, the database refuses a
            # run approved by the person who created it.
            models.CheckConstraint(
                condition=models.Q(approved_by__isnull=True) | ~models.Q(approved_by=models.F("created_by")),
                name="payout_run_approver_not_creator",
            ),
            models.CheckConstraint(condition=models.Q(threshold_minor__gte=1), name="payout_run_threshold_positive"),
        ]

    def __str__(self) -> str:
        return f"Payout run #{self.pk} ({self.currency}, {self.get_status_display()})"

    @property
    def transfer_group(self) -> str:
        """Stripe's ``transfer_group`` of every transfer of this run: what reconciliation lists by."""
        return f"payout-run-{self.pk}"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


class Payout(models.Model):
    """One contributor's payout in a run: one Stripe transfer at most, one ledger entry once confirmed."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        PAID = "paid", "Paid"
        FAILED = "failed", "Failed"
        REVERSED = "reversed", "Reversed"
        CANCELLED = "cancelled", "Cancelled"

    # Stripe may hold a transfer for these: the contributor's balance must keep them reserved.
    IN_FLIGHT_STATUSES = (Status.PENDING, Status.SENDING)
    SETTLED_STATUSES = (Status.PAID, Status.REVERSED)

    run = models.ForeignKey(PayoutRun, on_delete=models.PROTECT, related_name="payouts")
    contributor = models.ForeignKey("contributors.Contributor", on_delete=models.PROTECT, related_name="payouts")
    connected_account = models.ForeignKey("payouts.ConnectedAccount", on_delete=models.PROTECT,
                                          related_name="payouts")
    # The destination as it was when the run was drafted and approved (what the approver saw).
    stripe_account_id = models.CharField(max_length=255)
    currency = models.CharField(max_length=3)
    amount_minor = models.BigIntegerField()
    amount_micros = models.BigIntegerField()
    # The payable balance at the cut-off, and what stays on it: balance = amount + remainder, exactly.
    balance_micros = models.BigIntegerField()
    remainder_micros = models.BigIntegerField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    # 1 for the first send (idempotency key transfer:<id>), n for the n-th after failures (transfer:<id>:<n>).
    attempt = models.PositiveIntegerField(default=1)
    stripe_transfer_id = models.CharField(max_length=255, blank=True)
    ledger_entry = models.OneToOneField("ledger.JournalEntry", null=True, blank=True, on_delete=models.PROTECT,
                                        related_name="payout")
    amount_reversed_minor = models.BigIntegerField(default=0)
    failure_code = models.CharField(max_length=100, blank=True)
    failure_message = models.TextField(blank=True)
    # Stripe could not be reached and the outcome of the send is unknown: it is resent with the same key.
    last_error = models.TextField(blank=True)
    sending_started_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["run_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "contributor"], name="payout_one_per_contributor_per_run"),
            models.UniqueConstraint(fields=["stripe_transfer_id"], condition=~models.Q(stripe_transfer_id=""),
                                    name="payout_unique_stripe_transfer"),
            models.CheckConstraint(condition=models.Q(amount_minor__gt=0), name="payout_amount_positive"),
            models.CheckConstraint(
                condition=models.Q(balance_micros=models.F("amount_micros") + models.F("remainder_micros")),
                name="payout_balance_splits_exactly",
            ),
            # Paid means confirmed by Stripe and booked: both the transfer id and the ledger entry are set.
            models.CheckConstraint(
                condition=~models.Q(status__in=["paid", "reversed"])
                | (~models.Q(stripe_transfer_id="") & models.Q(ledger_entry__isnull=False)),
                name="payout_settled_has_transfer_and_entry",
            ),
            models.CheckConstraint(
                condition=models.Q(amount_reversed_minor__gte=0)
                & models.Q(amount_reversed_minor__lte=models.F("amount_minor")),
                name="payout_reversed_within_amount",
            ),
        ]
        indexes = [models.Index(fields=["contributor", "currency", "status"])]

    def __str__(self) -> str:
        return f"Payout #{self.pk} to contributor {self.contributor_id}: {self.amount_minor} {self.currency}"

    @property
    def is_settled(self) -> bool:
        return self.status in self.SETTLED_STATUSES

    @property
    def net_amount_minor(self) -> int:
        return self.amount_minor - self.amount_reversed_minor


class PayoutExclusion(models.Model):
    """A contributor with money owed who is not in the run, and why: their balance carries forward."""

    class Reason(models.TextChoices):
        BELOW_THRESHOLD = "below_threshold", "Balance below the payout threshold"
        NO_ACCOUNT = "no_account", "No Stripe payout account"
        ACCOUNT_NOT_READY = "account_not_ready", "Stripe account cannot receive transfers yet"
        ON_HOLD = "on_hold", "Part of the balance is on hold"
        ZERO_BALANCE = "zero_balance", "Nothing owed"
        IN_OPEN_PAYOUT = "in_open_payout", "A payout in another run is not finished"

    run = models.ForeignKey(PayoutRun, on_delete=models.CASCADE, related_name="exclusions")
    contributor = models.ForeignKey("contributors.Contributor", on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=30, choices=Reason.choices)
    balance_micros = models.BigIntegerField()
    detail = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["run_id", "reason", "contributor_id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "contributor"], name="payout_exclusion_one_per_contributor"),
        ]

    def __str__(self) -> str:
        return f"{self.contributor_id} left out of run {self.run_id}: {self.reason}"


class PayoutRunReconciliation(models.Model):
    """One comparison of a run's ledger postings and payouts with Stripe's transfers and balance transactions."""

    run = models.ForeignKey(PayoutRun, on_delete=models.PROTECT, related_name="reconciliations")
    ran_at = models.DateTimeField(auto_now_add=True, db_index=True)
    ran_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                               related_name="+")
    ran_by_label = models.CharField(max_length=200, blank=True)
    mismatch_count = models.PositiveIntegerField()
    # [{"code": ..., "payout_id": ..., "stripe_transfer_id": ..., "message": ...}, ...]
    mismatches = models.JSONField(default=list)
    payouts_checked = models.PositiveIntegerField(default=0)
    transfers_checked = models.PositiveIntegerField(default=0)
    balance_transactions_checked = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-ran_at", "-id"]

    def __str__(self) -> str:
        return f"Reconciliation of run {self.run_id} at {self.ran_at:%Y-%m-%d %H:%M}: {self.mismatch_count} mismatches"

    @property
    def ok(self) -> bool:
        return self.mismatch_count == 0
