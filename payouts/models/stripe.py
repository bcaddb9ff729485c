"""Stripe Connect accounts of contributors, Stripe events, and mirrors of Stripe transfers and payouts.

Mirrors hold what Stripe last told us (always re-fetched, never taken from an event's snapshot), so the
payout-run code can reconcile against them without a Stripe round trip.
"""

from __future__ import annotations

from django.db import models


class ConnectedAccount(models.Model):
    """A contributor's Stripe Express account: where their payouts are transferred."""

    class Capability(models.TextChoices):
        UNREQUESTED = "unrequested", "Not requested"
        INACTIVE = "inactive", "Inactive"
        PENDING = "pending", "Pending"
        ACTIVE = "active", "Active"

    contributor = models.OneToOneField(
        "contributors.Contributor", on_delete=models.PROTECT, related_name="connected_account"
    )
    stripe_account_id = models.CharField(max_length=255, unique=True)
    country = models.CharField(max_length=2, blank=True)
    default_currency = models.CharField(max_length=3, blank=True)
    details_submitted = models.BooleanField(default=False)
    charges_enabled = models.BooleanField(default=False)
    payouts_enabled = models.BooleanField(default=False)
    transfers_capability = models.CharField(
        max_length=20, choices=Capability.choices, default=Capability.UNREQUESTED
    )
    # Fields Stripe still needs (currently_due and past_due), and those it is verifying.
    requirements_due = models.JSONField(default=list, blank=True)
    requirements_pending_verification = models.JSONField(default=list, blank=True)
    requirements_deadline = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=100, blank=True)
    # When the Stripe state stored here was read (the start of that read): an older read never overwrites
    # a newer one, whatever order webhooks and page visits arrive in.
    stripe_synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.stripe_account_id} ({self.contributor_id})"

    @property
    def payout_status(self) -> str:
        """The contributor-facing status: none, onboarding, active or restricted (Contributor.PayoutStatus)."""
        if self.disabled_reason.startswith("rejected."):
            return "restricted"
        if self.transfers_capability == self.Capability.ACTIVE:
            return "active"
        if not self.details_submitted:
            return "onboarding"
        if self.transfers_capability == self.Capability.PENDING or self.disabled_reason in (
            "", "requirements.pending_verification", "under_review",
        ):
            return "onboarding"
        return "restricted"

    @property
    def is_pending_verification(self) -> bool:
        return self.details_submitted and self.payout_status == "onboarding"


class StripeEvent(models.Model):
    """One Stripe event, stored once by its id: a redelivery finds the row and does nothing."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored"
        FAILED = "failed", "Failed (will be retried)"

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100, db_index=True)
    # The connected account the event happened on; blank for the platform's own events (transfers).
    account = models.CharField(max_length=255, blank=True, db_index=True)
    api_version = models.CharField(max_length=50, blank=True)
    stripe_created_at = models.DateTimeField()
    livemode = models.BooleanField(default=False)
    payload = models.JSONField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    processing_error = models.TextField(blank=True)
    outcome = models.CharField(max_length=300, blank=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.event_id} {self.type}"

    @property
    def object_id(self) -> str:
        """The id of the object the event is about (``data.object.id``)."""
        return str(((self.payload.get("data") or {}).get("object") or {}).get("id") or "")


class StripeTransfer(models.Model):
    """A transfer from the platform to a connected account, as Stripe last reported it."""

    stripe_transfer_id = models.CharField(max_length=255, unique=True)
    destination_account_id = models.CharField(max_length=255, db_index=True)
    amount_minor = models.BigIntegerField()
    amount_reversed_minor = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3)
    reversed = models.BooleanField(default=False)
    transfer_group = models.CharField(max_length=500, blank=True, db_index=True)
    metadata = models.JSONField(default=dict, blank=True)
    balance_transaction_id = models.CharField(max_length=255, blank=True)
    stripe_created_at = models.DateTimeField()
    stripe_synced_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-stripe_created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount_minor__gt=0)
                & models.Q(amount_reversed_minor__gte=0)
                & models.Q(amount_reversed_minor__lte=models.F("amount_minor")),
                name="stripe_transfer_amounts_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.stripe_transfer_id} {self.amount_minor} {self.currency}"

    @property
    def net_amount_minor(self) -> int:
        return self.amount_minor - self.amount_reversed_minor


class BankPayout(models.Model):
    """A Stripe payout from a contributor's connected account to their bank (not our payout to them)."""

    stripe_payout_id = models.CharField(max_length=255, unique=True)
    connected_account = models.ForeignKey(ConnectedAccount, on_delete=models.PROTECT, related_name="bank_payouts")
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=20)
    failure_code = models.CharField(max_length=100, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    arrival_date = models.DateTimeField(null=True, blank=True)
    stripe_created_at = models.DateTimeField()
    stripe_synced_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-stripe_created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.stripe_payout_id} {self.status}"
