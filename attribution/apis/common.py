"""What every attribution API shares: the error shape, per-method policies, paging, path ids."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema_serializer,
)
from rest_framework import exceptions, serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.pagination import CursorPagination, LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from attribution.authentication import (
    ApiKeyAuthentication,
    IsCatalogAdmin,
    IsStaffReaderOrModelService,
    ModelServiceRateThrottle,
    StaffRateThrottle,
)
from attribution.services.errors import ItemError, ServiceError
from attribution.services.ingest import (
    MAX_ID,
)

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


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
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


def paginate(*, view: APIView, request, queryset, serializer_class) -> Response:
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
    target_class = "attribution.apis.common.EnumField"

    def map_serializer_field(self, auto_schema, direction):
        return {"type": "string", "enum": self.target.values}


