"""Contributors, their works, who owns what share of each work, opt-outs and disputes over content."""

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


class OptOut(models.Model):
    """One opt-out of a work from future training; withdrawn, never deleted, so model teams can replay it."""

    work = models.ForeignKey(Work, on_delete=models.PROTECT, related_name="opt_outs")
    # The owner who asked; empty when a catalog admin opted the work out on the owners' behalf.
    requested_by = models.ForeignKey(
        Contributor, on_delete=models.PROTECT, related_name="opt_outs", null=True, blank=True
    )
    opted_out_at = models.DateTimeField(db_index=True)
    reason = models.TextField(blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True, db_index=True)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-opted_out_at", "-id"]
        verbose_name = "opt-out"
        constraints = [
            # A work has at most one opt-out in force; Work.opted_out_at mirrors it.
            models.UniqueConstraint(
                fields=["work"], condition=models.Q(withdrawn_at__isnull=True), name="opt_out_one_active_per_work"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.work} opted out {self.opted_out_at:%Y-%m-%d %H:%M}"

    @property
    def is_active(self) -> bool:
        return self.withdrawn_at is None


class Dispute(models.Model):
    """Two registrations of the same content by different owners, waiting for (or after) a catalog admin's call.

    ``work`` is the earlier registration (the canonical record training manifests refer to), ``claim_work``
    the later one. Resolving always keeps ``work`` and retires ``claim_work`` (status removed, never deleted):
    upheld gives ``work`` to the claim's owners, split gives them ``claimant_bps`` of it, rejected leaves it
    with its owners.
    """

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        UPHELD = "upheld", "Upheld (claimant owns the work)"
        SPLIT = "split", "Split between the parties"
        REJECTED = "rejected", "Rejected (original owners keep it)"

    work = models.ForeignKey(Work, on_delete=models.PROTECT, related_name="disputes")
    claim_work = models.ForeignKey(Work, on_delete=models.PROTECT, related_name="claim_disputes")
    claimant = models.ForeignKey(Contributor, on_delete=models.PROTECT, related_name="disputes_claimed")
    sha256 = models.CharField(max_length=64, db_index=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True)
    # The claim's share of the work when the dispute is split (the original owners keep the rest).
    claimant_bps = models.PositiveIntegerField(null=True, blank=True)
    resolution_note = models.TextField(blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["work", "claim_work"], name="dispute_unique_pair"),
            models.CheckConstraint(condition=~models.Q(work=models.F("claim_work")), name="dispute_distinct_works"),
            models.CheckConstraint(
                condition=(
                    models.Q(status="open", resolved_at__isnull=True)
                    | (~models.Q(status="open") & models.Q(resolved_at__isnull=False))
                ),
                name="dispute_resolved_iff_closed",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(status="split", claimant_bps__gt=0, claimant_bps__lt=BPS_TOTAL)
                    | (~models.Q(status="split") & models.Q(claimant_bps__isnull=True))
                ),
                name="dispute_split_has_share",
            ),
        ]

    def __str__(self) -> str:
        return f"Dispute #{self.pk}: {self.claimant} claims {self.work}"

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN
