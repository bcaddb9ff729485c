"""REST API of the attribution app, under /api/v1/: generation logging and the model registry.

Every error answers ``{"detail", "code", "errors": [{"index", "field", "message"}]}`` (manifest errors
carry ``line``). The ingest endpoint validates with a plain function (see services.ingest): its nested
serializers document the body for the OpenAPI schema and are kept in step by the schemathesis test.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.pagination import CursorPagination, LimitOffsetPagination
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from attribution import selectors
from attribution.authentication import (
    ApiKeyAuthentication,
    HasModelServiceKey,
    IsCatalogAdmin,
    IsStaffReaderOrModelService,
    ModelServiceRateThrottle,
    StaffRateThrottle,
    request_api_key,
)
from attribution.models import AIModel
from attribution.services.currencies import ISO_4217_CODES
from attribution.services.errors import InvalidInput, ItemError, ServiceError, TooLarge
from attribution.services.ingest import (
    MAX_BATCH,
    MAX_ID,
    generation_body_parse,
    generation_ingest,
    micros_to_decimal_string,
)
from attribution.services.registry import manifest_import, model_version_register

# --- errors ----------------------------------------------------------------------------------------------


@extend_schema_serializer(component_name="ApiErrorItem")
class ErrorItemSerializer(serializers.Serializer):
    index = serializers.IntegerField(allow_null=True, help_text="Position of the item in the batch (0-based).")
    line = serializers.IntegerField(required=False, help_text="Manifest errors only: the line number (1-based).")
    field = serializers.CharField(allow_null=True, help_text="The field at fault, e.g. 'revenue'.")
    message = serializers.CharField()


@extend_schema_serializer(component_name="ApiError")
class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong, in one sentence.")
    code = serializers.CharField(help_text="Machine-readable, e.g. 'invalid', 'external_id_conflict'.")
    errors = ErrorItemSerializer(many=True)
    errors_not_shown = serializers.IntegerField(required=False, help_text="Problems beyond the first 100.")


def _error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    meaning = {
        400: "Invalid input: malformed JSON, wrong types, bad values, duplicates. Nothing was written.",
        401: "No credentials, or an invalid or revoked API key.",
        403: "Not allowed: wrong role, or a model version outside the API key's scope.",
        404: "Not found (or outside the caller's scope).",
        409: "An external_id was logged before with different content. Nothing was written.",
        413: "The request body is too large.",
        415: "Wrong content type.",
        429: "Too many requests; retry after the Retry-After header's seconds.",
    }
    return {code: OpenApiResponse(ErrorSerializer, description=meaning[code]) for code in codes}


def _flatten(data, prefix: str = "") -> list[ItemError]:
    """DRF's nested validation errors as flat ``ItemError``s with dotted field names."""
    if isinstance(data, dict):
        out = []
        for key, value in data.items():
            name = key if key != "non_field_errors" else None
            out.extend(_flatten(value, f"{prefix}.{key}" if prefix and name else (name or prefix)))
        return out
    if isinstance(data, list):
        return [e for item in data for e in _flatten(item, prefix)]
    return [ItemError(None, prefix or None, str(data))]


class BaseApi(APIView):
    """Renders every error in the one shape the schema documents; may set policies per HTTP method.

    ``authentication_by_method`` (and ``permission_``, ``throttle_``) map a method to classes, overriding
    the view's ``*_classes`` for that method: one URL serves machines (POST) and people (GET) differently.
    """

    authentication_by_method: dict[str, list[type]] = {}
    permission_by_method: dict[str, list[type]] = {}
    throttle_by_method: dict[str, list[type]] = {}

    def _method(self) -> str:
        # drf-spectacular builds its mock request through initialize_request before setting view.request.
        return getattr(getattr(self, "request", None), "method", None) or "GET"

    def get_authenticators(self):
        classes = self.authentication_by_method.get(self._method())
        return [cls() for cls in classes] if classes is not None else super().get_authenticators()

    def get_permissions(self):
        classes = self.permission_by_method.get(self._method())
        return [cls() for cls in classes] if classes is not None else super().get_permissions()

    def get_throttles(self):
        classes = self.throttle_by_method.get(self._method())
        return [cls() for cls in classes] if classes is not None else super().get_throttles()

    def handle_exception(self, exc):
        if isinstance(exc, ServiceError):
            return Response(exc.as_dict(), status=exc.status)
        if isinstance(exc, DjangoValidationError):
            exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
        response = super().handle_exception(exc)
        if isinstance(exc, exceptions.ValidationError):
            response.data = {"detail": "Invalid input.", "code": "invalid", "errors": [
                e.as_dict() for e in _flatten(exc.detail)]}
        elif isinstance(exc, exceptions.APIException):
            response.data = {"detail": str(exc.detail), "code": exc.default_code, "errors": []}
        elif isinstance(exc, Http404):
            response.data = {"detail": "Not found.", "code": "not_found", "errors": []}
        return response


# Path ids: the URL accepts any segment so that "abc" or "-1" get this API's JSON 404, not an HTML page.
ID_PARAMETER = OpenApiParameter(
    "id", {"type": "integer", "minimum": 1, "maximum": MAX_ID}, OpenApiParameter.PATH, description="The object's id."
)


def parse_id(value: str) -> int:
    if not value.isascii() or not value.isdigit() or not 0 < int(value) <= MAX_ID:
        raise Http404
    return int(value)


def _paginate(*, view: APIView, request, queryset, serializer_class) -> Response:
    paginator = view.pagination_class()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


def _query_int(request, name: str, *, minimum: int, maximum: int) -> int | None:
    """A paging parameter, strictly: DRF's paginators silently ignore a bad one, hiding the client's bug."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or not minimum <= int(raw) <= maximum:
        raise exceptions.ValidationError({name: [f"must be an integer from {minimum} to {maximum}"]})
    return int(raw)


def _document_bounds(parameters: list[dict], bounds: dict[str, tuple[int, int]]) -> list[dict]:
    for parameter in parameters:
        if parameter["name"] in bounds:
            low, high = bounds[parameter["name"]]
            parameter["schema"] = {**parameter["schema"], "minimum": low, "maximum": high}
    return parameters


class LimitOffset(LimitOffsetPagination):
    max_limit = 1_000
    max_offset = MAX_ID

    def get_limit(self, request):
        limit = _query_int(request, self.limit_query_param, minimum=1, maximum=self.max_limit)
        return self.default_limit if limit is None else limit

    def get_offset(self, request):
        return _query_int(request, self.offset_query_param, minimum=0, maximum=self.max_offset) or 0

    def get_schema_operation_parameters(self, view):
        return _document_bounds(
            super().get_schema_operation_parameters(view),
            {self.limit_query_param: (1, self.max_limit), self.offset_query_param: (0, self.max_offset)},
        )


class GenerationCursor(CursorPagination):
    # The log grows by thousands a second: cursor pages stay stable and fast where offsets would skip and scan.
    ordering = "-pk"
    page_size = 100
    page_size_query_param = "limit"
    max_page_size = 1_000

    def get_page_size(self, request):
        size = _query_int(request, self.page_size_query_param, minimum=1, maximum=self.max_page_size)
        return self.page_size if size is None else size

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound as exc:
            # A malformed cursor is bad input, not a missing resource.
            raise exceptions.ValidationError({"cursor": ["Invalid cursor: follow the next/previous links."]}) from exc

    def get_schema_operation_parameters(self, view):
        return _document_bounds(
            super().get_schema_operation_parameters(view), {self.page_size_query_param: (1, self.max_page_size)}
        )


# Reads: staff by session (with MFA) or a model service by key, within its scope.
READ_AUTHENTICATION = [ApiKeyAuthentication, SessionAuthentication]
READ_PERMISSIONS = [IsStaffReaderOrModelService]
READ_THROTTLES = [ModelServiceRateThrottle, StaffRateThrottle]
# Registry changes: catalog admins, by session (CSRF-checked) only.
ADMIN_WRITE = {
    "authentication_by_method": {"POST": [SessionAuthentication]},
    "permission_by_method": {"POST": [IsCatalogAdmin]},
    "throttle_by_method": {"POST": [StaffRateThrottle]},
}


class EnumField(serializers.CharField):
    """A string from a fixed list, documented inline (no shared enum component to collide with other apps')."""

    def __init__(self, values, **kwargs):
        self.values = list(values)
        super().__init__(**kwargs)


class EnumFieldExtension(OpenApiSerializerFieldExtension):
    target_class = "attribution.apis.EnumField"

    def map_serializer_field(self, auto_schema, direction):
        return {"type": "string", "enum": self.target.values}


# --- generations -----------------------------------------------------------------------------------------


@extend_schema_field(
    {
        "oneOf": [
            {"type": "integer", "minimum": 1, "maximum": MAX_ID, "description": "The model version's id."},
            {"type": "string", "pattern": "^[^@\\s]+@[^@\\s/]+$", "description": '"<model name>@<version label>".'},
        ]
    }
)
class ModelVersionRefField(serializers.Field):
    """Documentation only: services.ingest resolves the reference."""


# The ingest body and answer, for the schema. services.ingest validates (a plain function is several times
# faster than these serializers on a 500-item batch); test_schema.py checks the two agree.


@extend_schema_serializer(component_name="GenerationOutputMedia")
class GenerationOutputMediaSerializer(serializers.Serializer):
    mime_type = serializers.RegexField(r"^[A-Za-z0-9][\w.+-]*/[A-Za-z0-9][\w.+-]*$", max_length=100)
    sha256 = serializers.RegexField(
        r"^[0-9a-fA-F]{64}$", required=False, help_text="The output's SHA-256, when the service keeps the bytes."
    )
    content_base64 = serializers.CharField(
        required=False, help_text="The output's bytes in base64: the platform stores and hashes them."
    )


@extend_schema_serializer(component_name="GenerationInput")
class GenerationInputSerializer(serializers.Serializer):
    """One generation. Send exactly one of output_text or output_media."""

    model_version = ModelVersionRefField(help_text="An id, or \"<model>@<label>\".")
    external_id = serializers.CharField(
        min_length=1, max_length=200,
        help_text="The service's own id; (model version, external_id) is the idempotency key.",
    )
    prompt = serializers.CharField(allow_blank=True, help_text="Prompt text (purged after the retention period).")
    output_text = serializers.CharField(required=False, allow_blank=True, help_text="A text output.")
    output_media = GenerationOutputMediaSerializer(required=False, help_text="A media output: hashed or uploaded.")
    revenue = serializers.RegexField(
        r"^[0-9]{1,15}(\.[0-9]{1,6})?$",
        help_text="Revenue this generation earned: a decimal string, at most 6 decimals, not negative, at most "
                  "ROYALTIES_MAX_GENERATION_REVENUE units; stored exactly as integer micro-units.",
    )
    currency = EnumField(
        ISO_4217_CODES, required=False, help_text="ISO 4217; defaults to the platform currency."
    )
    generated_at = serializers.DateTimeField(help_text="When it was generated: ISO 8601 with a time zone offset.")
    metadata = serializers.DictField(required=False, help_text="Any JSON object, kept with the generation.")


@extend_schema_serializer(component_name="GenerationBatchInput")
class GenerationBatchInputSerializer(serializers.Serializer):
    generations = serializers.ListField(child=GenerationInputSerializer(), min_length=1, max_length=MAX_BATCH)


@extend_schema_serializer(component_name="GenerationRecord")
class GenerationRecordSerializer(serializers.Serializer):
    status = EnumField(["created", "existing"], help_text="existing: logged before; this request stored nothing new.")
    id = serializers.IntegerField()
    model_version = serializers.IntegerField()
    model_version_ref = serializers.CharField()
    external_id = serializers.CharField()
    prompt_sha256 = serializers.CharField()
    output_sha256 = serializers.CharField()
    revenue = serializers.CharField()
    revenue_micros = serializers.IntegerField()
    currency = serializers.CharField()
    generated_at = serializers.DateTimeField()
    received_at = serializers.DateTimeField()


@extend_schema_serializer(component_name="GenerationBatchRecord")
class GenerationBatchRecordSerializer(GenerationRecordSerializer):
    index = serializers.IntegerField(help_text="Position in the batch (0-based).")


@extend_schema_serializer(component_name="GenerationBatchResult")
class GenerationBatchResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    existing = serializers.IntegerField()
    generations = GenerationBatchRecordSerializer(many=True)


class GenerationListCreateApi(BaseApi):
    """``POST``: model services log generations. ``GET``: staff (or a key, within its scope) list them."""

    pagination_class = GenerationCursor
    InputSerializer = GenerationInputSerializer

    @extend_schema_serializer(component_name="GenerationFilter")
    class FilterSerializer(serializers.Serializer):
        model_version = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
        ai_model = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
        external_id = serializers.CharField(required=False, max_length=200)
        generated_after = serializers.DateTimeField(required=False, help_text="Inclusive.")
        generated_before = serializers.DateTimeField(required=False, help_text="Exclusive.")
        attributed = serializers.BooleanField(required=False, allow_null=True, default=None)
        text_purged = serializers.BooleanField(required=False, allow_null=True, default=None)

    @extend_schema_serializer(component_name="Generation")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        model_version = serializers.IntegerField(source="model_version_id")
        model_version_ref = serializers.CharField(source="model_version.ref")
        external_id = serializers.CharField()
        prompt = serializers.CharField()
        output_text = serializers.CharField()
        output_mime_type = serializers.CharField()
        has_output_media = serializers.SerializerMethodField()
        prompt_sha256 = serializers.CharField()
        output_sha256 = serializers.CharField()
        revenue = serializers.SerializerMethodField()
        revenue_micros = serializers.IntegerField()
        currency = serializers.CharField()
        generated_at = serializers.DateTimeField()
        received_at = serializers.DateTimeField()
        metadata = serializers.DictField()
        attributed_at = serializers.DateTimeField(allow_null=True)
        text_purged_at = serializers.DateTimeField(allow_null=True)

        def get_has_output_media(self, obj) -> bool:
            return bool(obj.output_media)

        def get_revenue(self, obj) -> str:
            return micros_to_decimal_string(obj.revenue_micros)

    authentication_classes = READ_AUTHENTICATION
    permission_classes = READ_PERMISSIONS
    throttle_classes = READ_THROTTLES
    authentication_by_method = {"POST": [ApiKeyAuthentication]}
    permission_by_method = {"POST": [HasModelServiceKey]}
    throttle_by_method = {"POST": [ModelServiceRateThrottle]}
    parser_classes = [JSONParser]

    def get_renderers(self):
        if self._method() == "POST":
            return [JSONRenderer()]  # machines: no browsable API on the hot path
        return super().get_renderers()

    @extend_schema(
        operation_id="generations_create",
        summary="Log one generation or a batch of up to 1,000",
        description=(
            "Send one generation object, or `{\"generations\": [...]}` with 1 to 1,000 of them "
            "(`application/json`). A batch is all-or-nothing.\n\n"
            "**Idempotent** by (model version, external_id): repeating a request stores nothing new and answers "
            "200 with the stored records (`status: existing`); reusing an external_id with different content is "
            "409. 201 when at least one generation was created.\n\n"
            "**Model version**: an id or `\"<model>@<label>\"`, within the API key's scope. A version outside "
            "the scope, or unknown, is 403 with the item's index (the same answer either way, so a key learns "
            "nothing about other models).\n\n"
            "**Errors** name the item index and field: malformed JSON, wrong types, missing fields, negative "
            "or too large revenue (more than 6 decimals, or above ROYALTIES_MAX_GENERATION_REVENUE), unknown "
            "currency, time without an offset or in the future, duplicate external_ids in the batch."
        ),
        examples=[
            OpenApiExample("One generation", request_only=True, value={
                "model_version": "storyteller@v3", "external_id": "req-8f2c", "prompt": "A fox at dawn",
                "output_text": "The fox stepped into the light...", "revenue": "0.0125", "currency": "USD",
                "generated_at": "2026-01-31T12:00:00Z", "metadata": {"tokens": 212},
            }),
            OpenApiExample("A batch", request_only=True, value={"generations": [
                {"model_version": 12, "external_id": "req-1", "prompt": "Paint a lighthouse", "revenue": "0.04",
                 "output_media": {"mime_type": "image/png", "sha256": "9f86d081884c7d659a2feaa0c55ad015"
                                                                      "a3bf4f1b2b0b822cd15d6c15b0f00a08"},
                 "generated_at": "2026-01-31T12:00:01+01:00"},
                {"model_version": 12, "external_id": "req-2", "prompt": "Write a haiku", "output_text": "Old pond",
                 "revenue": "0.001", "generated_at": "2026-01-31T12:00:02Z"},
            ]}),
        ],
        request=PolymorphicProxySerializer(
            component_name="GenerationIngest",
            serializers=[GenerationInputSerializer, GenerationBatchInputSerializer],
            resource_type_field_name=None,
        ),
        responses={
            201: PolymorphicProxySerializer(
                component_name="GenerationIngestResult",
                serializers=[GenerationRecordSerializer, GenerationBatchResultSerializer],
                resource_type_field_name=None,
            ),
            200: OpenApiResponse(
                PolymorphicProxySerializer(
                    component_name="GenerationIngestResult",
                    serializers=[GenerationRecordSerializer, GenerationBatchResultSerializer],
                    resource_type_field_name=None,
                ),
                description="A replay: every generation was logged before; nothing new was stored.",
            ),
            **_error_responses(400, 401, 403, 409, 413, 415, 429),
        },
        tags=["generations"],
    )
    def post(self, request):
        api_key = request_api_key(request)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > limit:
            raise TooLarge(
                f"The request body ({declared} bytes) is larger than {limit} bytes; send fewer generations per "
                f"request (at most {MAX_BATCH})."
            )
        body = request._request.body  # the raw bytes: parsing them ourselves is the fast path
        raw_items, is_batch = generation_body_parse(body=body, content_type=request.content_type or "")
        records = generation_ingest(api_key=api_key, raw_items=raw_items)
        created = sum(1 for r in records if r["status"] == "created")
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        if not is_batch:
            return Response(records[0], status=code)
        for index, record in enumerate(records):
            record["index"] = index
        return Response({"created": created, "existing": len(records) - created, "generations": records}, status=code)

    @extend_schema(
        operation_id="generations_list",
        summary="List logged generations (staff, or a model service within its key's scope)",
        parameters=[FilterSerializer],
        responses={200: OutputSerializer(many=True), **_error_responses(400, 401, 403, 429)},
        tags=["generations"],
    )
    def get(self, request):
        # A plain dict, not the QueryDict: DRF reads form-style input leniently ("?model_version=" counts as
        # absent), and a filter the client sent but we ignored would silently widen the answer.
        filters = self.FilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        queryset = selectors.generation_list(
            api_key=request_api_key(request),
            model_version_id=data.get("model_version"), ai_model_id=data.get("ai_model"),
            external_id=data.get("external_id"), generated_after=data.get("generated_after"),
            generated_before=data.get("generated_before"), attributed=data.get("attributed"),
            text_purged=data.get("text_purged"),
        )
        return _paginate(view=self, request=request, queryset=queryset, serializer_class=self.OutputSerializer)


class GenerationDetailApi(BaseApi):
    authentication_classes = READ_AUTHENTICATION
    permission_classes = READ_PERMISSIONS
    throttle_classes = READ_THROTTLES

    @extend_schema(
        operation_id="generations_retrieve",
        parameters=[ID_PARAMETER],
        responses={200: GenerationListCreateApi.OutputSerializer, **_error_responses(401, 403, 404, 429)},
        tags=["generations"],
    )
    def get(self, request, pk: str):
        generation = selectors.generation_get(pk=parse_id(pk), api_key=request_api_key(request))
        if generation is None:
            raise Http404
        return Response(GenerationListCreateApi.OutputSerializer(generation).data)


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
        responses={200: OutputSerializer(many=True), **_error_responses(400, 401, 403, 429)},
        tags=["model registry"],
    )
    def get(self, request):
        queryset = selectors.ai_model_list(api_key=request_api_key(request))
        return _paginate(view=self, request=request, queryset=queryset, serializer_class=self.OutputSerializer)



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
        responses={200: ModelVersionOutputSerializer(many=True), **_error_responses(400, 401, 403, 429)},
        tags=["model registry"],
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        queryset = selectors.model_version_list(
            api_key=request_api_key(request), ai_model=filters.validated_data.get("model"),
            ai_model_id=filters.validated_data.get("ai_model"),
        )
        return _paginate(view=self, request=request, queryset=queryset, serializer_class=ModelVersionOutputSerializer)

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
            **_error_responses(400, 401, 403, 413, 415, 429),
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
        responses={200: ModelVersionOutputSerializer, **_error_responses(401, 403, 404, 429)},
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
        responses={200: OutputSerializer(many=True), **_error_responses(400, 401, 403, 404, 429)},
        tags=["model registry"],
    )
    def get(self, request, pk: str):
        version = self._version(request, pk)
        return _paginate(view=self, request=request, queryset=selectors.manifest_entry_list(model_version=version),
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
            **_error_responses(400, 401, 403, 404, 413, 415, 429),
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

