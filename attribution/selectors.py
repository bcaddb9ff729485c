"""Reading the model registry and the generation log.

Every selector takes an optional ``api_key``: a model service reading through its key sees only the model
versions in the key's scope (staff, authenticated by session, pass none and see everything).
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Q, QuerySet

from attribution.models import AIModel, ApiKey, Generation, ManifestEntry, ModelVersion


def _version_scope(api_key: ApiKey | None, *, via: str = "") -> Q:
    """Model versions the key may see; ``via`` is the path to the version, e.g. "model_version__"."""
    if api_key is None:
        return Q()
    if api_key.model_version_id:
        return Q(**{f"{via}pk": api_key.model_version_id})
    return Q(**{f"{via}ai_model_id": api_key.ai_model_id})


def ai_model_list(*, api_key: ApiKey | None = None) -> QuerySet[AIModel]:
    """Models, with how many versions each has."""
    qs = AIModel.objects.annotate(version_count=Count("versions"))
    if api_key is not None:
        qs = qs.filter(pk=api_key.ai_model_id or api_key.model_version.ai_model_id)
    return qs.order_by("name")


def model_version_list(
    *, api_key: ApiKey | None = None, ai_model: str | None = None, ai_model_id: int | None = None
) -> QuerySet[ModelVersion]:
    """Model versions with their manifest size, newest first within each model."""
    qs = (
        ModelVersion.objects.select_related("ai_model")
        .filter(_version_scope(api_key))
        .annotate(manifest_size=Count("manifest_entries"))
    )
    if ai_model:
        qs = qs.filter(ai_model__name=ai_model)
    if ai_model_id:
        qs = qs.filter(ai_model_id=ai_model_id)
    return qs.order_by("ai_model__name", "-created_at", "-pk")


def model_version_get(*, pk: int, api_key: ApiKey | None = None) -> ModelVersion | None:
    return model_version_list(api_key=api_key).filter(pk=pk).first()


def manifest_entry_list(*, model_version: ModelVersion) -> QuerySet[ManifestEntry]:
    """The works a version was trained on, in manifest order, with each work's title and opt-out time."""
    return (
        ManifestEntry.objects.filter(model_version=model_version)
        .select_related("work")
        .only("pk", "sha256", "added_at", "work_id", "work__title", "work__kind", "work__opted_out_at",
              "work__status")
        .order_by("pk")
    )


def generation_list(
    *,
    api_key: ApiKey | None = None,
    model_version_id: int | None = None,
    ai_model_id: int | None = None,
    external_id: str | None = None,
    generated_after: dt.datetime | None = None,
    generated_before: dt.datetime | None = None,
    attributed: bool | None = None,
    text_purged: bool | None = None,
) -> QuerySet[Generation]:
    """Logged generations, filtered; ``generated_after`` is inclusive, ``generated_before`` exclusive."""
    qs = Generation.objects.select_related("model_version__ai_model").filter(
        _version_scope(api_key, via="model_version__")
    )
    if model_version_id is not None:
        qs = qs.filter(model_version_id=model_version_id)
    if ai_model_id is not None:
        qs = qs.filter(model_version__ai_model_id=ai_model_id)
    if external_id:
        qs = qs.filter(external_id=external_id)
    if generated_after is not None:
        qs = qs.filter(generated_at__gte=generated_after)
    if generated_before is not None:
        qs = qs.filter(generated_at__lt=generated_before)
    if attributed is not None:
        qs = qs.filter(attributed_at__isnull=not attributed)
    if text_purged is not None:
        qs = qs.filter(text_purged_at__isnull=not text_purged)
    return qs


def generation_get(*, pk: int, api_key: ApiKey | None = None) -> Generation | None:
    return generation_list(api_key=api_key).filter(pk=pk).first()


def api_key_list(*, model_version: ModelVersion | None = None) -> QuerySet[ApiKey]:
    """API keys, newest first; for a version, the keys whose scope includes it."""
    qs = ApiKey.objects.select_related("ai_model", "model_version__ai_model", "created_by")
    if model_version is not None:
        qs = qs.filter(Q(model_version=model_version) | Q(ai_model_id=model_version.ai_model_id))
    return qs.order_by("-created_at", "-pk")


def model_version_by_ref(*, ref: str) -> ModelVersion | None:
    """A version by id ("12") or by "<model>@<label>"; None when there is no such version."""
    ref = ref.strip()
    if ref.isdigit():
        return ModelVersion.objects.select_related("ai_model").filter(pk=int(ref)).first()
    name, sep, label = ref.partition("@")
    if not (sep and name and label):
        return None
    return ModelVersion.objects.select_related("ai_model").filter(ai_model__name=name, label=label).first()
