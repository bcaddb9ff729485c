"""AI models, their versions and training manifests, and the generations model services log."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

# Model names cannot contain "@": the API names a version "<model>@<label>".
model_name_validator = RegexValidator(r"^[^@\s]+$", "A model name cannot contain '@' or whitespace.")


class AIModel(models.Model):
    """A generative model a service runs, e.g. "storyteller" (text) or "digit-painter" (image)."""

    class Modality(models.TextChoices):
        TEXT = "text", "Text"
        IMAGE = "image", "Image"
        AUDIO = "audio", "Audio"
        CODE = "code", "Code"
        VIDEO = "video", "Video"
        MULTIMODAL = "multimodal", "Multimodal"

    name = models.CharField(max_length=100, unique=True, validators=[model_name_validator])
    modality = models.CharField(max_length=20, choices=Modality.choices)
    owner_team = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "AI model"

    def __str__(self) -> str:
        return self.name


class ModelVersion(models.Model):
    """One trained checkpoint of a model, with the adapter that loads it and the works it was trained on."""

    ai_model = models.ForeignKey(AIModel, on_delete=models.PROTECT, related_name="versions")
    label = models.CharField(max_length=100)
    checkpoint_uri = models.CharField(max_length=500, blank=True)
    # Dotted path of the adapter class that loads this version for the attribution engine.
    adapter = models.CharField(max_length=300, blank=True)
    config = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The attribution index built for this version (see attribution/engine): where it is, its checksum,
    # what it was built from (manifest hash, checkpoint fingerprint, projection, layers), and when.
    index_path = models.CharField(max_length=500, blank=True)
    index_checksum = models.CharField(max_length=64, blank=True)
    index_meta = models.JSONField(default=dict, blank=True)
    index_built_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["ai_model__name", "-created_at"]
        constraints = [models.UniqueConstraint(fields=["ai_model", "label"], name="model_version_unique_label")]

    def __str__(self) -> str:
        return f"{self.ai_model.name}@{self.label}"

    @property
    def ref(self) -> str:
        """How the API names this version: ``<model>@<label>``."""
        return f"{self.ai_model.name}@{self.label}"


class ManifestEntry(models.Model):
    """A work a model version was trained on: its training-time provenance."""

    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="manifest_entries")
    work = models.ForeignKey("contributors.Work", on_delete=models.PROTECT, related_name="manifest_entries")
    # The content hash the manifest named (or the work's hash when it named an id), kept as trained.
    sha256 = models.CharField(max_length=64)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["model_version_id", "id"]
        constraints = [models.UniqueConstraint(fields=["model_version", "work"], name="manifest_unique_work")]
        verbose_name_plural = "manifest entries"

    def __str__(self) -> str:
        return f"{self.model_version} trained on work {self.work_id}"


class Generation(models.Model):
    """One output a model service produced and logged, with the revenue it earned."""

    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="generations")
    external_id = models.CharField(max_length=200)
    prompt = models.TextField(blank=True)
    output_text = models.TextField(blank=True)
    output_media = models.FileField(upload_to="generations/%Y/%m/", blank=True)
    output_mime_type = models.CharField(max_length=100, blank=True)
    prompt_sha256 = models.CharField(max_length=64)
    output_sha256 = models.CharField(max_length=64)
    revenue_micros = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    generated_at = models.DateTimeField(db_index=True)
    received_at = models.DateTimeField(auto_now_add=True)
    metadata = models.JSONField(default=dict, blank=True)
    # SHA-256 over everything the service sent except the text itself (hashes, revenue, currency, time,
    # metadata): a replay with the same external_id is "existing" only when this matches, else a conflict.
    content_sha256 = models.CharField(max_length=64, blank=True)
    # Which key logged it: with received_at, the provenance of every logged revenue figure.
    api_key = models.ForeignKey(
        "ApiKey", on_delete=models.PROTECT, related_name="generations", null=True, blank=True
    )
    # Set by the nightly job once the generation has attribution results; the retention job waits for it.
    attributed_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # Set when the retention job erased prompt and output text; hashes, revenue and attributions stay.
    text_purged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-generated_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["model_version", "external_id"], name="generation_unique_external_id"),
            models.CheckConstraint(condition=models.Q(revenue_micros__gte=0), name="generation_revenue_non_negative"),
        ]
        indexes = [models.Index(fields=["model_version", "generated_at"])]

    def __str__(self) -> str:
        return f"{self.model_version} / {self.external_id}"


class ApiKey(models.Model):
    """A model service's credential: scoped to one model version or to every version of one model.

    The key is shown once at creation; only its prefix (for lookup) and the SHA-256 of the whole key are
    stored. Keys are revoked, never deleted, so the generations they logged keep their provenance.
    """

    name = models.CharField(max_length=200, help_text="What the key is for, e.g. 'storyteller production'.")
    prefix = models.CharField(max_length=16, unique=True)
    secret_sha256 = models.CharField(max_length=64)
    ai_model = models.ForeignKey(
        AIModel, on_delete=models.PROTECT, related_name="api_keys", null=True, blank=True,
        help_text="Scope: every version of this model.",
    )
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="api_keys", null=True, blank=True,
        help_text="Scope: this one version only.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Updated at most once a minute per key, so authentication stays one read on the ingest path.
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API key"
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(ai_model__isnull=False, model_version__isnull=True)
                    | models.Q(ai_model__isnull=True, model_version__isnull=False)
                ),
                name="api_key_exactly_one_scope",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def scope_label(self) -> str:
        if self.model_version_id:
            return f"version {self.model_version}"
        return f"all versions of {self.ai_model}"


# --- the nightly job ------------------------------------------------------------------------------------
# Written only by attribution/nightly/ (services); see ARCHITECTURE.md, "Flow of one night".


class AttributionRun(models.Model):
    """One execution of the nightly job for one UTC day: what it did, how long each stage took, what went wrong.

    A day may have several runs (a crashed night is re-run; a finished one re-run posts nothing); each keeps its
    own record. Counts and timings are set as stages finish, so a run that died still shows how far it got.
    """

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        # A run that died (killed worker) and whose day a later run completed.
        SUPERSEDED = "superseded", "Superseded by a later run"

    class Trigger(models.TextChoices):
        BEAT = "beat", "Celery beat"
        COMMAND = "command", "manage.py run_nightly"
        TASK = "task", "Task called directly"

    day = models.DateField(db_index=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RUNNING, db_index=True)
    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    # "in-process" (the embedded default: every chunk scored in this process) or "celery" (a chord on workers).
    executor = models.CharField(max_length=12)
    close_period = models.BooleanField(default=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Generations this run took into chunks (late ones are also counted in late_generation_count).
    generation_count = models.PositiveIntegerField(default=0)
    late_generation_count = models.PositiveIntegerField(default=0)
    chunks_planned = models.PositiveIntegerField(default=0)
    # Chunks of the day this run scored, and those it found already scored by an earlier (crashed) run.
    chunks_scored = models.PositiveIntegerField(default=0)
    chunks_skipped = models.PositiveIntegerField(default=0)
    attribution_count = models.PositiveIntegerField(default=0)
    # Stage -> seconds: plan, load, scoring, writing (summed over chunks), fanout (wall clock of the chunk
    # stage), aggregation, amounts, posting, close, total.
    timings = models.JSONField(default=dict, blank=True)
    # Per program: outcome (posted / corrected / unchanged / nothing / failed), entry id, pool, expense...
    programs = models.JSONField(default=list, blank=True)
    # Model versions whose generations were left unattributed, and why (no program, no index, currency...).
    skipped = models.JSONField(default=list, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    errors = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["day", "status"])]

    def __str__(self) -> str:
        return f"night of {self.day} (run #{self.pk}, {self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status != self.Status.RUNNING


class AttributionChunk(models.Model):
    """A fixed slice of one model version's generations for one accrual day: the unit a worker scores.

    Planned with its generations (``AttributedGeneration`` rows) in one transaction; scored in another that
    writes all its ``Attribution`` rows and flips ``status`` together, so a killed chunk leaves no rows and
    a re-run scores it again, while a scored chunk is never scored twice.
    """

    class Status(models.TextChoices):
        PLANNED = "planned", "Planned"
        SCORED = "scored", "Scored"

    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="attribution_chunks")
    program = models.ForeignKey("ledger.RoyaltyProgram", on_delete=models.PROTECT, related_name="attribution_chunks")
    # The accrual day: the ledger period whose entry pays for these generations.
    day = models.DateField()
    seq = models.PositiveIntegerField()
    run = models.ForeignKey(AttributionRun, on_delete=models.PROTECT, related_name="chunks_planned_here")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PLANNED, db_index=True)
    top_k = models.PositiveIntegerField()
    generation_count = models.PositiveIntegerField()
    attribution_count = models.PositiveIntegerField(default=0)
    scored_by_run = models.ForeignKey(
        AttributionRun, on_delete=models.PROTECT, null=True, blank=True, related_name="chunks_scored_here"
    )
    scored_at = models.DateTimeField(null=True, blank=True)
    # Which index scored it (checksum recorded on the version at that time) and on which worker.
    index_checksum = models.CharField(max_length=64, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    load_seconds = models.FloatField(default=0)
    scoring_seconds = models.FloatField(default=0)
    writing_seconds = models.FloatField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["day", "model_version_id", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["model_version", "day", "seq"], name="attribution_chunk_unique_key"),
        ]
        indexes = [models.Index(fields=["program", "day"])]

    def __str__(self) -> str:
        return f"chunk {self.key} ({self.status})"

    @property
    def key(self) -> str:
        """``<model version id>:<day>:<seq>``: names the chunk in logs, task arguments and errors."""
        return f"{self.model_version_id}:{self.day.isoformat()}:{self.seq}"


class AttributedGeneration(models.Model):
    """A generation taken into the nightly job: its chunk, the day it accrues to, and (once settled) its pool.

    One row per generation ever (unique), so no generation can be counted twice, whatever crashes and re-runs
    happen. ``late`` marks a generation that arrived after its own day was closed and accrues to a later day.
    """

    generation = models.OneToOneField(Generation, on_delete=models.PROTECT, related_name="nightly")
    chunk = models.ForeignKey(AttributionChunk, on_delete=models.PROTECT, related_name="generations")
    day = models.DateField()
    late = models.BooleanField(default=False)
    # Set when the day is settled: the generation's integer part of the pool, the part left for attribution
    # after the baseline, and whether it went to the baseline because no work was kept.
    pool_micros = models.BigIntegerField(null=True, blank=True)
    attributed_pool_micros = models.BigIntegerField(null=True, blank=True)
    to_baseline = models.BooleanField(null=True, blank=True)

    class Meta:
        ordering = ["day", "generation_id"]
        indexes = [models.Index(fields=["day", "late"])]

    def __str__(self) -> str:
        return f"generation {self.generation_id} accrues on {self.day}"


class Attribution(models.Model):
    """One of the top-k works for one generation, as a chunk task scored it: score, rank, the copy flag.

    Written once, never updated (a million rows a night: an update would cost more than the insert). What the
    row paid is in its ``AttributionAmount`` (``settled``), written by the day's settlement for the rows the
    policy kept.
    """

    chunk = models.ForeignKey(AttributionChunk, on_delete=models.PROTECT, related_name="attributions")
    # No single-column indexes on these two: the unique (generation, work) and the (work, day) index lead
    # with them, and every extra index slows the million-row nightly inserts.
    generation = models.ForeignKey(
        Generation, on_delete=models.PROTECT, related_name="attributions", db_index=False
    )
    work = models.ForeignKey("contributors.Work", on_delete=models.PROTECT, related_name="attributions",
                             db_index=False)
    # The accrual day (the chunk's), kept here so per-work pages filter without a join.
    day = models.DateField()
    rank = models.PositiveSmallIntegerField()
    score = models.FloatField()
    # A verbatim (text) or near-duplicate (image) copy found by copy detection: always credited, and shown
    # to the contributor; copy_spans says where (character spans of the output, or the image region).
    copied = models.BooleanField(default=False)
    copy_spans = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["generation_id", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["generation", "work"], name="attribution_unique_generation_work"),
        ]
        indexes = [models.Index(fields=["work", "day"])]

    def __str__(self) -> str:
        return f"generation {self.generation_id} -> work {self.work_id} ({self.score:.4f})"


class AttributionAmount(models.Model):
    """What one kept attribution row paid: its share of the generation's kept weight, and its micro-units.

    The day's settlement writes one per row the policy kept (positive score, within top-k and the minimum
    share, a work with owners), insert-only; a corrected day has its rows replaced whole. Per (program, day,
    work) the amounts sum to the ledger's ``Accrual.attributed_micros`` over the work's owners.
    """

    attribution = models.OneToOneField(Attribution, on_delete=models.PROTECT, primary_key=True,
                                       related_name="settled")
    share = models.DecimalField(max_digits=10, decimal_places=9)
    amount_micros = models.BigIntegerField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(amount_micros__gte=0), name="attribution_amount_non_negative"),
            # A share can print as 0.000000000: the policy keeps tiny weights (a tie-break of 1 in 2**30).
            models.CheckConstraint(condition=models.Q(share__gte=0, share__lte=1), name="attribution_share_range"),
        ]

    def __str__(self) -> str:
        return f"attribution {self.attribution_id}: {self.amount_micros} micros"


class AttributionSettlement(models.Model):
    """The settled state of one (royalty program, day): what was computed and which ledger entry books it.

    ``inputs_sha256`` fingerprints the day's scored chunks. A re-run whose chunks are the same posts nothing;
    one with more chunks (generations that came in while the day was still open) recomputes the day and
    corrects the ledger with a reversal and a new entry.
    """

    program = models.ForeignKey("ledger.RoyaltyProgram", on_delete=models.PROTECT, related_name="settlements")
    day = models.DateField()
    inputs_sha256 = models.CharField(max_length=64, blank=True)
    journal_entry = models.ForeignKey(
        "ledger.JournalEntry", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    currency = models.CharField(max_length=3, blank=True)
    generation_count = models.PositiveIntegerField(default=0)
    late_generation_count = models.PositiveIntegerField(default=0)
    attribution_count = models.PositiveIntegerField(default=0)
    chunk_count = models.PositiveIntegerField(default=0)
    pool_micros = models.BigIntegerField(default=0)
    expense_micros = models.BigIntegerField(default=0)
    unallocated_micros = models.BigIntegerField(default=0)
    corrections = models.PositiveIntegerField(default=0)
    run = models.ForeignKey(AttributionRun, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-day", "program_id"]
        constraints = [models.UniqueConstraint(fields=["program", "day"], name="attribution_settlement_unique")]

    def __str__(self) -> str:
        return f"program {self.program_id} on {self.day}"
