"""Admin for the model registry, API keys and the generation log (read-only: services write generations)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpResponseRedirect
from django.utils import timezone

from attribution.models import AIModel, ApiKey, Generation, ManifestEntry, ModelVersion
from attribution.services.api_keys import api_key_create, api_key_revoke
from attribution.services.errors import ServiceError
from attribution.services.registry import ai_model_create, ai_model_update, model_version_update


class AIModelForm(forms.ModelForm):
    class Meta:
        model = AIModel
        fields = ["name", "modality", "owner_team"]


@admin.register(AIModel)
class AIModelAdmin(admin.ModelAdmin):
    form = AIModelForm
    list_display = ["name", "modality", "owner_team", "created_at"]
    list_filter = ["modality"]
    search_fields = ["name", "owner_team"]

    def get_readonly_fields(self, request, obj=None):
        # The name is how services address versions ("<model>@<label>"): fixed once created.
        return ["name", "created_at"] if obj else ["created_at"]

    def save_model(self, request, obj, form, change) -> None:
        if change:
            ai_model_update(ai_model=obj, modality=obj.modality, owner_team=obj.owner_team, actor=request.user)
            return None
        created = ai_model_create(name=obj.name, modality=obj.modality, owner_team=obj.owner_team, actor=request.user)
        obj.pk, obj.created_at = created.pk, created.created_at
        return None


class ManifestEntryInline(admin.TabularInline):
    model = ManifestEntry
    fields = ["work", "sha256", "added_at"]
    readonly_fields = fields
    extra = 0
    show_change_link = False
    can_delete = False
    # Manifests run to millions of works; the catalog pages and the API page through them.
    max_num = 0
    verbose_name_plural = "manifest entries (first 50; see /catalog/ for all)"

    def get_queryset(self, request):
        qs = super().get_queryset(request).select_related("work")
        ids = list(qs.values_list("pk", flat=True)[:50])
        return qs.filter(pk__in=ids)

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "adapter", "created_at", "manifest_size", "index_built_at"]
    list_filter = ["ai_model"]
    search_fields = ["label", "ai_model__name", "adapter"]
    inlines = [ManifestEntryInline]
    # The label names the version to services and the index fields belong to the engine: not editable here.
    readonly_fields = [
        "ai_model", "label", "created_at", "index_path", "index_checksum", "index_meta", "index_built_at",
    ]
    fields = ["ai_model", "label", "adapter", "checkpoint_uri", "config", "created_at", "index_path", "index_checksum",
              "index_meta", "index_built_at"]

    def get_queryset(self, request):
        qs = super().get_queryset(request).select_related("ai_model")
        return qs.annotate(_manifest_size=Count("manifest_entries"))

    @admin.display(description="manifest", ordering="_manifest_size")
    def manifest_size(self, obj) -> int:
        return obj._manifest_size

    def save_model(self, request, obj, form, change) -> None:
        model_version_update(model_version=obj, adapter=obj.adapter, checkpoint_uri=obj.checkpoint_uri,
                             config=obj.config, actor=request.user)

    def has_add_permission(self, request) -> bool:
        # A version is registered together with its manifest (/catalog/ or manage.py register_model_version).
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ApiKeyAddForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ["name", "model_version", "ai_model"]

    def clean(self):
        data = super().clean()
        if bool(data.get("model_version")) == bool(data.get("ai_model")):
            raise forms.ValidationError("Choose exactly one scope: a model version, or a model (all its versions).")
        return data


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "scope", "created_at", "created_by", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), "ai_model", "model_version__ai_model"]
    search_fields = ["name", "prefix"]
    actions = ["revoke"]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyAddForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "model_version", "ai_model"]
        return ["name", "prefix", "scope", "created_at", "created_by", "last_used_at", "revoked_at", "revoked_by"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["name", "prefix", "scope", "created_at", "created_by", "last_used_at", "revoked_at", "revoked_by"]

    @admin.display(description="scope")
    def scope(self, obj) -> str:
        return obj.scope_label

    def save_model(self, request, obj, form, change) -> None:
        if change:
            return None  # nothing on a key is editable; revoke it instead
        try:
            created = api_key_create(
                name=obj.name, ai_model=obj.ai_model, model_version=obj.model_version, actor=request.user
            )
        except ServiceError as exc:
            raise PermissionDenied(exc.detail) from exc
        obj.pk = created.api_key.pk
        obj.prefix = created.api_key.prefix
        messages.warning(
            request,
            f"The new API key is {created.secret} — copy it now: it is stored only as a hash and is not shown again.",
        )
        return None

    def response_add(self, request, obj, post_url_continue=None):
        return HttpResponseRedirect(f"../{obj.pk}/change/")

    @admin.action(description="Revoke the selected API keys")
    def revoke(self, request, queryset) -> None:
        revoked = 0
        for api_key in queryset.filter(revoked_at__isnull=True):
            api_key_revoke(api_key=api_key, actor=request.user, reason="revoked in the admin")
            revoked += 1
        self.message_user(request, f"Revoked {revoked} API key(s) at {timezone.now():%Y-%m-%d %H:%M} UTC.")

    def has_delete_permission(self, request, obj=None) -> bool:
        # Keys are revoked, never deleted: the generations they logged keep their provenance.
        return False


@admin.register(Generation)
class GenerationAdmin(admin.ModelAdmin):
    list_display = ["external_id", "model_version", "revenue_micros", "currency", "generated_at", "received_at",
                    "attributed_at", "text_purged_at"]
    list_filter = ["model_version__ai_model", "model_version", ("attributed_at", admin.EmptyFieldListFilter),
                   ("text_purged_at", admin.EmptyFieldListFilter), "currency"]
    search_fields = ["external_id", "prompt_sha256", "output_sha256"]
    date_hierarchy = "generated_at"
    list_select_related = ["model_version__ai_model"]
    show_full_result_count = False  # COUNT(*) over the whole log is slow; the filters narrow it

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Generation._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
