"""Contributors, their works, and who owns what share of each work."""

from __future__ import annotations

from django.conf import settings
from django.db import models

BPS_TOTAL = 10_000  # a work's owners always hold exactly 10,000 basis points between them


class Contributor(models.Model):
    """A person (or estate, or collective) who owns works; one per user account."""

    class PayoutStatus(models.TextChoices):
        NONE = "none", "No payout account"
        ONBOARDING = "onboarding", "Onboarding with Stripe"
        ACTIVE = "active", "Can receive payouts"
        RESTRICTED = "restricted", "Restricted by Stripe"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="contributor")
    display_name = models.CharField(max_length=200)
    legal_name = models.CharField(max_length=200, blank=True)
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166-1 alpha-2")
    payout_status = models.CharField(max_length=20, choices=PayoutStatus.choices, default=PayoutStatus.NONE)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["display_name", "id"]

    def __str__(self) -> str:
        return self.display_name


class Work(models.Model):
    """One registered work: a file or a text body, identified by the SHA-256 of its content."""

    class Kind(models.TextChoices):
        TEXT = "text", "Text"
        IMAGE = "image", "Image"
        AUDIO = "audio", "Audio"
        CODE = "code", "Code"
        VIDEO = "video", "Video"
        OTHER = "other", "Other"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        DISPUTED = "disputed", "Disputed"
        REMOVED = "removed", "Removed"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    file = models.FileField(upload_to="works/%Y/%m/", blank=True)
    text_body = models.TextField(blank=True)
    size_bytes = models.BigIntegerField()
    mime_type = models.CharField(max_length=100)
    # Not unique: the same content claimed twice opens a dispute instead of being merged or dropped.
    sha256 = models.CharField(max_length=64, db_index=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    # Set when the owners opt the work out of future training; never cleared by deleting history.
    opted_out_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_by = models.ForeignKey(
        Contributor, on_delete=models.PROTECT, related_name="works_created", null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.title

    @property
    def is_opted_out(self) -> bool:
        return self.opted_out_at is not None


class Ownership(models.Model):
    """A contributor's share of a work in basis points; a work's shares sum to exactly 10,000."""

    work = models.ForeignKey(Work, on_delete=models.CASCADE, related_name="ownerships")
    contributor = models.ForeignKey(Contributor, on_delete=models.PROTECT, related_name="ownerships")
    bps = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["work_id", "-bps", "contributor_id"]
        constraints = [
            models.UniqueConstraint(fields=["work", "contributor"], name="ownership_unique_owner"),
            models.CheckConstraint(
                condition=models.Q(bps__gt=0) & models.Q(bps__lte=BPS_TOTAL), name="ownership_bps_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contributor} owns {self.bps / 100:.2f}% of {self.work}"
