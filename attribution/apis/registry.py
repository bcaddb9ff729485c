"""The model registry over the API: models, versions, manifests (catalog admins write, staff read)."""

from __future__ import annotations

import json

from django.conf import settings
from django.http import Http404
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from attribution import selectors
from attribution.apis.common import (
    ADMIN_WRITE,
    ID_PARAMETER,
    READ_AUTHENTICATION,
    READ_PERMISSIONS,
    READ_THROTTLES,
    BaseApi,
    EnumField,
    ErrorItemSerializer,
    LimitOffset,
    error_responses,
    paginate,
    parse_id,
)
from attribution.authentication import (
    request_api_key,
)
from attribution.models import AIModel
from attribution.services.errors import InvalidInput, ItemError, TooLarge
from attribution.services.ingest import (
    MAX_ID,
)
from attribution.services.registry import manifest_import, model_version_register

# --- the model registry ----------------------------------------------------------------------------------


class AIModelListApi(BaseApi):
    authentication_classes = READ_AUTHENTICATION
    permission_classes = READ_PERMISSIONS
    throttle_classes = READ_THROTTLES
    pagination_class = LimitOffset

    @extend_schema_serializer(component_name="AIModel")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        name = serializers.CharField()
        modality = EnumField(AIModel.Modality.values)
        owner_team = serializers.CharField()
        created_at = serializers.DateTimeField()
        version_count = serializers.IntegerField()

    @extend_schema(
        operation_id="models_list",
        responses={200: OutputSerializer(many=True), **error_responses(400, 401, 403, 429)},
        tags=["model registry"],
    )
    def get(self, request):
        queryset = selectors.ai_model_list(api_key=request_api_key(request))
        return paginate(view=self, request=request, queryset=queryset, serializer_class=self.OutputSerializer)



@extend_schema_serializer(component_name="ModelVersion")
class ModelVersionOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    ai_model = serializers.IntegerField(source="ai_model_id")
    model = serializers.CharField(source="ai_model.name")
    ref = serializers.CharField(help_text="\"<model>@<label>\": how generations may name this version.")
    label = serializers.CharField()
    checkpoint_uri = serializers.CharField()
    adapter = serializers.CharField()
    config = serializers.DictField()
    created_at = serializers.DateTimeField()
    manifest_size = serializers.IntegerField(help_text="How many works the version was trained on.")
    index_built_at = serializers.DateTimeField(allow_null=True)


@extend_schema_serializer(component_name="ManifestReport")
class ManifestReportSerializer(serializers.Serializer):
    format = EnumField(["csv", "jsonl"])
    manifest_sha256 = serializers.CharField()
    lines = serializers.IntegerField()
    added = serializers.IntegerField()
    already_present = serializers.IntegerField()
    dry_run = serializers.BooleanField()
    valid = serializers.BooleanField()
    errors = ErrorItemSerializer(many=True)


def _read_upload(upload) -> bytes:
    if upload.size > settings.ROYALTIES_MAX_UPLOAD_BYTES:
        raise TooLarge(
            f"The manifest ({upload.size} bytes) is larger than {settings.ROYALTIES_MAX_UPLOAD_BYTES} bytes; "
            "register larger manifests with `manage.py register_model_version --manifest FILE`."
        )
    return upload.read()


class ModelVersionListCreateApi(BaseApi):
    """``GET``: model versions (staff, or a key's own). ``POST`` (catalog admins): register one with its manifest."""

    pagination_class = LimitOffset

    @extend_schema_serializer(component_name="ModelVersionFilter")
    class FilterSerializer(serializers.Serializer):
        ai_model = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID, help_text="Model id.")
        model = serializers.CharField(required=False, max_length=100, help_text="Model name.")

    @extend_schema_serializer(component_name="ModelVersionCreate")
    class InputSerializer(serializers.Serializer):
        model = serializers.CharField(max_length=100, help_text="Name of an existing AI model.")
        label = serializers.CharField(max_length=100)
        adapter = serializers.CharField(max_length=300, required=False, allow_blank=True, default="",
                                        help_text="Dotted path of the adapter class that loads it for attribution.")
        checkpoint_uri = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
        config = serializers.CharField(required=False, default="{}", help_text="A JSON object, as a string.")
        manifest = serializers.FileField(required=False, help_text="CSV (work_id and/or sha256 column) or JSON Lines.")
        dry_run = serializers.BooleanField(required=False, default=False,
                                           help_text="Check everything, write nothing.")

        def validate_config(self, value: str) -> dict:
            try:
                parsed = json.loads(value)
            except (json.JSONDecodeError, RecursionError) as exc:
                raise serializers.ValidationError(f"is not valid JSON: {exc}") from exc
            if not isinstance(parsed, dict):
                raise serializers.ValidationError("must be a JSON object")
            return parsed

    @extend_schema_serializer(component_name="ModelVersionCreateResult")
    class OutputSerializer(serializers.Serializer):
        model_version = ModelVersionOutputSerializer(allow_null=True)
        manifest = ManifestReportSerializer(allow_null=True)

    authentication_classes = READ_AUTHENTICATION
    permission_classes = READ_PERMISSIONS
    throttle_classes = READ_THROTTLES
    authentication_by_method = ADMIN_WRITE["authentication_by_method"]
    permission_by_method = ADMIN_WRITE["permission_by_method"]
    throttle_by_method = ADMIN_WRITE["throttle_by_method"]
    parser_classes = [MultiPartParser]

    @extend_schema(
        operation_id="model_versions_list",
        parameters=[FilterSerializer],
        responses={200: ModelVersionOutputSerializer(many=True), **error_responses(400, 401, 403, 429)},
        tags=["model registry"],
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        queryset = selectors.model_version_list(
            api_key=request_api_key(request), ai_model=filters.validated_data.get("model"),
            ai_model_id=filters.validated_data.get("ai_model"),
        )
        return paginate(view=self, request=request, queryset=queryset, serializer_class=ModelVersionOutputSerializer)

    @extend_schema(
        operation_id="model_versions_create",
        summary="Register a model version with its training manifest (catalog admins)",
        description=(
            "Multipart form. The manifest lists the works the version was trained on; unknown, ambiguous, "
            "duplicated and opted-out works (opted out before the version is created) are reported by line and "
            "nothing is written. `dry_run=true` answers 200 with the report and writes nothing."
        ),
        request={"multipart/form-data": InputSerializer},
        responses={
            201: OutputSerializer, 200: OpenApiResponse(OutputSerializer, description="Dry run: nothing written."),
            **error_responses(400, 401, 403, 413, 415, 429),
        },
        tags=["model registry"],
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        ai_model = AIModel.objects.filter(name=data["model"]).first()
        if ai_model is None:
            raise InvalidInput(
                "Unknown model.", errors=[ItemError(None, "model", f"no AI model named {data['model']!r}")]
            )
        upload = data.get("manifest")
        version, report = model_version_register(
            ai_model=ai_model, label=data["label"], adapter=data["adapter"], checkpoint_uri=data["checkpoint_uri"],
            config=data["config"], manifest=_read_upload(upload) if upload else None,
            manifest_filename=upload.name if upload else "", dry_run=data["dry_run"], actor=request.user,
        )
        if version is not None:
            version = selectors.model_version_get(pk=version.pk)
        body = {
            "model_version": ModelVersionOutputSerializer(version).data if version else None,
            "manifest": report.as_dict() if report else None,
        }
        return Response(body, status=status.HTTP_200_OK if data["dry_run"] else status.HTTP_201_CREATED)



class ModelVersionDetailApi(BaseApi):
    authentication_classes = READ_AUTHENTICATION
    permission_classes = READ_PERMISSIONS
    throttle_classes = READ_THROTTLES

    @extend_schema(
        operation_id="model_versions_retrieve",
        parameters=[ID_PARAMETER],
        responses={200: ModelVersionOutputSerializer, **error_responses(401, 403, 404, 429)},
        tags=["model registry"],
    )
    def get(self, request, pk: str):
        version = selectors.model_version_get(pk=parse_id(pk), api_key=request_api_key(request))
        if version is None:
            raise Http404
        return Response(ModelVersionOutputSerializer(version).data)


class ManifestListImportApi(BaseApi):
    """``GET``: the works a version was trained on. ``POST`` (catalog admins): add works from a manifest file."""

    pagination_class = LimitOffset

    @extend_schema_serializer(component_name="ManifestEntry")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        work = serializers.IntegerField(source="work_id")
        work_title = serializers.CharField(source="work.title")
        work_kind = serializers.CharField(source="work.kind")
        sha256 = serializers.CharField()
        work_opted_out_at = serializers.DateTimeField(source="work.opted_out_at", allow_null=True)
        added_at = serializers.DateTimeField()

    @extend_schema_serializer(component_name="ManifestImport")
    class InputSerializer(serializers.Serializer):
        manifest = serializers.FileField(help_text="CSV (work_id and/or sha256 column) or JSON Lines.")
        dry_run = serializers.BooleanField(required=False, default=False)

    authentication_classes = READ_AUTHENTICATION
    permission_classes = READ_PERMISSIONS
    throttle_classes = READ_THROTTLES
    authentication_by_method = ADMIN_WRITE["authentication_by_method"]
    permission_by_method = ADMIN_WRITE["permission_by_method"]
    throttle_by_method = ADMIN_WRITE["throttle_by_method"]
    parser_classes = [MultiPartParser]

    def _version(self, request, pk: str):
        version = selectors.model_version_get(pk=parse_id(pk), api_key=request_api_key(request))
        if version is None:
            raise Http404
        return version

    @extend_schema(
        operation_id="model_versions_manifest_list",
        parameters=[ID_PARAMETER],
        responses={200: OutputSerializer(many=True), **error_responses(400, 401, 403, 404, 429)},
        tags=["model registry"],
    )
    def get(self, request, pk: str):
        version = self._version(request, pk)
        return paginate(view=self, request=request, queryset=selectors.manifest_entry_list(model_version=version),
                         serializer_class=self.OutputSerializer)

    @extend_schema(
        operation_id="model_versions_manifest_import",
        parameters=[ID_PARAMETER],
        summary="Add works to a version's training manifest (catalog admins)",
        description=(
            "All-or-nothing; problems are reported by line. Works already in the manifest count as "
            "`already_present`, so uploading the same file twice is harmless. `dry_run=true` writes nothing."
        ),
        request={"multipart/form-data": InputSerializer},
        responses={
            201: ManifestReportSerializer,
            200: OpenApiResponse(ManifestReportSerializer, description="Dry run: nothing written."),
            **error_responses(400, 401, 403, 404, 413, 415, 429),
        },
        tags=["model registry"],
    )
    def post(self, request, pk: str):
        version = self._version(request, pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["manifest"]
        dry_run = serializer.validated_data["dry_run"]
        report = manifest_import(
            model_version=version, content=_read_upload(upload), filename=upload.name, dry_run=dry_run,
            actor=request.user,
        )
        return Response(report.as_dict(), status=status.HTTP_200_OK if dry_run else status.HTTP_201_CREATED)

