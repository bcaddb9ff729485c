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
