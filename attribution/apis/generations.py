"""Generation logging (POST, model services) and the generation log (GET, staff or a key's own scope)."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from attribution import selectors
from attribution.apis.common import (
    ID_PARAMETER,
    READ_AUTHENTICATION,
    READ_PERMISSIONS,
    READ_THROTTLES,
    BaseApi,
    EnumField,
    GenerationCursor,
    error_responses,
    paginate,
    parse_id,
)
from attribution.authentication import (
    ApiKeyAuthentication,
    HasModelServiceKey,
    ModelServiceRateThrottle,
    request_api_key,
)
from attribution.services.currencies import ISO_4217_CODES
from attribution.services.errors import TooLarge
from attribution.services.ingest import (
    MAX_BATCH,
    MAX_ID,
    generation_body_parse,
    generation_ingest,
    micros_to_decimal_string,
)

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
            **error_responses(400, 401, 403, 409, 413, 415, 429),
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
        responses={200: OutputSerializer(many=True), **error_responses(400, 401, 403, 429)},
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
        return paginate(view=self, request=request, queryset=queryset, serializer_class=self.OutputSerializer)


class GenerationDetailApi(BaseApi):
    authentication_classes = READ_AUTHENTICATION
    permission_classes = READ_PERMISSIONS
    throttle_classes = READ_THROTTLES

    @extend_schema(
        operation_id="generations_retrieve",
        parameters=[ID_PARAMETER],
        responses={200: GenerationListCreateApi.OutputSerializer, **error_responses(401, 403, 404, 429)},
        tags=["generations"],
    )
    def get(self, request, pk: str):
        generation = selectors.generation_get(pk=parse_id(pk), api_key=request_api_key(request))
        if generation is None:
            raise Http404
        return Response(GenerationListCreateApi.OutputSerializer(generation).data)


