"""Catalog admins' pages at /catalog/: model versions, their training manifests, and API keys."""

from __future__ import annotations

import json

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from accounts.roles import CATALOG_ADMIN, role_required
from attribution import selectors
from attribution.models import AIModel, ApiKey, ModelVersion
from attribution.services.api_keys import api_key_create, api_key_revoke
from attribution.services.errors import ServiceError
from attribution.services.registry import manifest_import, model_version_register

MANIFEST_PAGE_SIZE = 100


# The site stylesheet stretches inputs to the column width; a checkbox keeps its own size.
_CHECKBOX = forms.CheckboxInput(attrs={"style": "width:auto"})


class ManifestFileField(forms.FileField):
    def clean(self, data, initial=None):
        upload = super().clean(data, initial)
        if upload and upload.size > settings.ROYALTIES_MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                f"The manifest is larger than {settings.ROYALTIES_MAX_UPLOAD_BYTES} bytes; use "
                "manage.py register_model_version for larger ones."
            )
        return upload


class ModelVersionRegisterForm(forms.Form):
    ai_model = forms.ModelChoiceField(queryset=AIModel.objects.order_by("name"), label="Model")
    label = forms.CharField(max_length=100, help_text="Unique within the model; services send \"model@label\".")
    adapter = forms.CharField(max_length=300, required=False, help_text="Dotted path of the adapter class.")
    checkpoint_uri = forms.CharField(max_length=500, required=False, label="Checkpoint location")
    config = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), initial="{}", help_text="A JSON object.")
    manifest = ManifestFileField(required=False, help_text="CSV (work_id and/or sha256 column) or JSON Lines.")
    dry_run = forms.BooleanField(required=False, label="Dry run (check, write nothing)", widget=_CHECKBOX)

    def clean_config(self) -> dict:
        try:
            value = json.loads(self.cleaned_data["config"] or "{}")
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise forms.ValidationError("Must be a JSON object.")
        return value


class ManifestUploadForm(forms.Form):
    manifest = ManifestFileField(help_text="CSV (work_id and/or sha256 column) or JSON Lines.")
    dry_run = forms.BooleanField(required=False, label="Dry run (check, write nothing)", widget=_CHECKBOX)


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="What the key is for, e.g. 'storyteller production'.")
    scope = forms.ChoiceField(help_text="One version, or every version of a model.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        choices: list[tuple[str, str]] = []
        for ai_model in AIModel.objects.order_by("name").prefetch_related("versions"):
            choices.append((f"model:{ai_model.pk}", f"{ai_model.name}: all versions"))
            choices.extend((f"version:{v.pk}", f"{ai_model.name}@{v.label}") for v in ai_model.versions.all())
        self.fields["scope"].choices = choices

    def scope_objects(self) -> dict:
        kind, _, pk = self.cleaned_data["scope"].partition(":")
        if kind == "model":
            return {"ai_model": AIModel.objects.get(pk=pk)}
        return {"model_version": ModelVersion.objects.get(pk=pk)}


def _service_errors(form: forms.Form, exc: ServiceError) -> None:
    for error in exc.errors[:200]:
        if error.line is not None and "manifest" in form.fields:
            form.add_error("manifest", f"line {error.line}: {error.message}")
        elif error.field in form.fields:
            form.add_error(error.field, error.message)
        else:
            form.add_error(None, f"{error.field}: {error.message}" if error.field else error.message)
    if not exc.errors:
        form.add_error(None, exc.detail)


@login_required  # a signed-out visitor is sent to log in, as on every other staff page
@role_required(CATALOG_ADMIN)
def model_version_list_page(request: HttpRequest) -> HttpResponse:
    versions = selectors.model_version_list()
    return render(request, "attribution/catalog/model_versions.html", {
        "ai_models": selectors.ai_model_list(), "versions": versions,
    })


@login_required
@role_required(CATALOG_ADMIN)
@require_http_methods(["GET", "POST"])
def model_version_register_page(request: HttpRequest) -> HttpResponse:
    form = ModelVersionRegisterForm(request.POST or None, request.FILES or None)
    report = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        upload = data.get("manifest")
        try:
            version, report = model_version_register(
                ai_model=data["ai_model"], label=data["label"], adapter=data["adapter"],
                checkpoint_uri=data["checkpoint_uri"], config=data["config"],
                manifest=upload.read() if upload else None, manifest_filename=upload.name if upload else "",
                dry_run=data["dry_run"], actor=request.user,
            )
        except ServiceError as exc:
            _service_errors(form, exc)
        else:
            if version is not None:
                messages.success(request, f"Registered {version.ref}.")
                return redirect("attribution:model-version", pk=version.pk)
    return render(request, "attribution/catalog/model_version_register.html", {"form": form, "report": report})


@login_required
@role_required(CATALOG_ADMIN)
@require_http_methods(["GET", "POST"])
def model_version_detail_page(request: HttpRequest, pk: int) -> HttpResponse:
    version = selectors.model_version_get(pk=pk)
    if version is None:
        raise Http404
    form = ManifestUploadForm(request.POST or None, request.FILES or None)
    report = None
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["manifest"]
        try:
            report = manifest_import(model_version=version, content=upload.read(), filename=upload.name,
                                     dry_run=form.cleaned_data["dry_run"], actor=request.user)
        except ServiceError as exc:
            _service_errors(form, exc)
        else:
            if not report.dry_run:
                messages.success(request, f"Added {report.added} works ({report.already_present} already listed).")
                return redirect("attribution:model-version", pk=version.pk)
    page = Paginator(selectors.manifest_entry_list(model_version=version), MANIFEST_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(request, "attribution/catalog/model_version_detail.html", {
        "version": version, "page": page, "form": form, "report": report,
        "api_keys": selectors.api_key_list(model_version=version),
        "config_json": json.dumps(version.config, indent=2, sort_keys=True),
    })


@never_cache
@login_required
@role_required(CATALOG_ADMIN)
@require_http_methods(["GET", "POST"])
def api_key_list_page(request: HttpRequest) -> HttpResponse:
    form = ApiKeyCreateForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        try:
            created = api_key_create(name=form.cleaned_data["name"], actor=request.user, **form.scope_objects())
        except ServiceError as exc:
            _service_errors(form, exc)
        else:
            form = ApiKeyCreateForm()
    # The secret is rendered in this one response (never stored, never redirected through a message).
    return render(request, "attribution/catalog/api_keys.html", {
        "form": form, "created": created, "api_keys": selectors.api_key_list(),
    })


@login_required
@role_required(CATALOG_ADMIN)
@require_POST
def api_key_revoke_page(request: HttpRequest, pk: int) -> HttpResponse:
    api_key = get_object_or_404(ApiKey, pk=pk)
    if api_key.revoked_at is None:
        api_key_revoke(api_key=api_key, actor=request.user, reason=request.POST.get("reason", "")[:500])
        messages.success(request, f"Revoked {api_key}. Requests with it are refused from now on.")
    return redirect("attribution:api-keys")
