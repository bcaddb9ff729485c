"""Read APIs: a contributor's own works, and the opt-out export for model teams and catalog admins."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import NotFound
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.middleware import session_used_mfa
from accounts.roles import CATALOG_ADMIN, CONTRIBUTOR, user_has_role
from attribution.authentication import ApiKeyAuthentication, request_api_key
from contributors import selectors
from contributors.models import Dispute, Work
from contributors.services import contributor_ensure


class IsContributorOr404(BasePermission):
    """Contributor endpoints do not exist for anyone else: 404, not 403."""

    def has_permission(self, request, view) -> bool:
        if not user_has_role(request.user, CONTRIBUTOR):
            raise NotFound()
        return True


class IsCatalogAdminOrModelServiceOr404(BasePermission):
    """A model service's API key, or a catalog admin whose session passed MFA; other people get 404."""

    message = "Catalog admins must sign in with two-factor authentication to use the API."

    def has_permission(self, request, view) -> bool:
        if request_api_key(request) is not None:
            return True
        if not request.user.is_authenticated:
            return False  # 401 with the Bearer scheme to use
        if user_has_role(request.user, CATALOG_ADMIN) or getattr(request.user, "is_superuser", False):
            # The MFA middleware leaves /api/ to the APIs: staff sessions prove their second factor here.
            return session_used_mfa(request)
        raise NotFound()


def _page_serializer(name: str, item: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The schema of a limit/offset page of ``item``, so /api/schema/ describes what the API really returns."""
    return type(
        name,
        (serializers.Serializer,),
        {
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item(many=True),
        },
    )


class WorkListApi(APIView):
    """GET /api/v1/works/: the signed-in contributor's works, newest first, filtered and paginated."""

    permission_classes = [IsAuthenticated, IsContributorOr404]

    @extend_schema_serializer(component_name="WorkFilter")
    class InputSerializer(serializers.Serializer):
        q = serializers.CharField(required=False, allow_blank=True, max_length=200, help_text="title/description")
        kind = serializers.ChoiceField(choices=Work.Kind.choices, required=False)
        status = serializers.ChoiceField(choices=Work.Status.choices, required=False)
        opted_out = serializers.BooleanField(required=False, allow_null=True, default=None)
        limit = serializers.IntegerField(required=False, min_value=1, max_value=500)
        offset = serializers.IntegerField(required=False, min_value=0)

    @extend_schema_serializer(component_name="Work")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        title = serializers.CharField()
        kind = serializers.CharField()
        status = serializers.CharField()
        mime_type = serializers.CharField()
        size_bytes = serializers.IntegerField()
        sha256 = serializers.CharField()
        opted_out_at = serializers.DateTimeField(allow_null=True)
        created_at = serializers.DateTimeField()
        my_bps = serializers.IntegerField(help_text="your share of the work in basis points (of 10,000)")

    PageSerializer = _page_serializer("WorkListPage", OutputSerializer)

    @extend_schema(
        operation_id="works_list",
        parameters=[InputSerializer],
        responses={200: PageSerializer, 404: OpenApiResponse(description="the caller is not a contributor")},
        tags=["catalog"],
    )
    def get(self, request: Request) -> Response:
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        contributor = contributor_ensure(user=request.user)
        works = selectors.work_list_for_contributor(
            contributor=contributor, q=(data.get("q") or "").strip(), kind=data.get("kind", ""),
            status=data.get("status", ""), opted_out=data.get("opted_out"),
        )
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(works, request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)


@extend_schema_serializer(component_name="WorkOwner")
class _OwnerSerializer(serializers.Serializer):
    display_name = serializers.CharField(source="contributor.display_name")
    bps = serializers.IntegerField()
    is_you = serializers.BooleanField()


@extend_schema_serializer(component_name="WorkOptOut")
class _OptOutSerializer(serializers.Serializer):
    opted_out_at = serializers.DateTimeField()
    withdrawn_at = serializers.DateTimeField(allow_null=True)


@extend_schema_serializer(component_name="WorkDispute")
class _DisputeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    role = serializers.ChoiceField(choices=["original", "claim"], help_text="this work's side of the dispute")
    status = serializers.ChoiceField(choices=Dispute.Status.choices)
    claimant_bps = serializers.IntegerField(allow_null=True)
    resolution_note = serializers.CharField()
    created_at = serializers.DateTimeField()
    resolved_at = serializers.DateTimeField(allow_null=True)


class WorkDetailApi(APIView):
    """GET /api/v1/works/<id>/: one of the contributor's works with owners, opt-outs and disputes."""

    permission_classes = [IsAuthenticated, IsContributorOr404]

    @extend_schema_serializer(component_name="WorkDetail")
    class OutputSerializer(WorkListApi.OutputSerializer):
        description = serializers.CharField()
        updated_at = serializers.DateTimeField()
        my_bps = serializers.IntegerField(source="my_share", help_text="your share in basis points (of 10,000)")
        owners = _OwnerSerializer(many=True, source="owner_list")
        opt_outs = _OptOutSerializer(many=True, source="opt_out_list")
        disputes = _DisputeSerializer(many=True, source="dispute_list")

    @extend_schema(
        operation_id="works_retrieve",
        responses={200: OutputSerializer, 404: OpenApiResponse(description="no such work among yours")},
        tags=["catalog"],
    )
    def get(self, request: Request, pk: int) -> Response:
        contributor = contributor_ensure(user=request.user)
        work = selectors.work_get_for_contributor(contributor=contributor, work_id=pk)
        if work is None:
            raise Http404
        work.owner_list = selectors.work_owner_list(work=work)
        for ownership in work.owner_list:
            ownership.is_you = ownership.contributor_id == contributor.pk
        work.my_share = next(o.bps for o in work.owner_list if o.is_you)
        work.opt_out_list = list(selectors.work_opt_out_list(work=work))
        work.dispute_list = list(selectors.work_dispute_list(work=work))
        for dispute in work.dispute_list:
            dispute.role = "claim" if dispute.claim_work_id == work.pk else "original"
        return Response(self.OutputSerializer(work).data)


class OptOutExportApi(APIView):
    """GET /api/v1/opt-outs/: opt-out events for model teams building training sets, oldest first.

    A work is out of a training set if it has an event with ``in_force`` true. ``since`` returns events
    opted out or withdrawn at or after that time, so a team can poll for changes.
    """

    authentication_classes = [ApiKeyAuthentication, SessionAuthentication]
    permission_classes = [IsCatalogAdminOrModelServiceOr404]

    @extend_schema_serializer(component_name="OptOutFilter")
    class InputSerializer(serializers.Serializer):
        since = serializers.DateTimeField(required=False, help_text="ISO 8601; events at or after this time")
        in_force = serializers.BooleanField(required=False, default=False, help_text="only opt-outs still in force")
        limit = serializers.IntegerField(required=False, min_value=1, max_value=5000)
        offset = serializers.IntegerField(required=False, min_value=0)

    @extend_schema_serializer(component_name="OptOutEvent")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        work_id = serializers.IntegerField()
        sha256 = serializers.CharField(source="work.sha256")
        kind = serializers.CharField(source="work.kind")
        mime_type = serializers.CharField(source="work.mime_type")
        opted_out_at = serializers.DateTimeField()
        withdrawn_at = serializers.DateTimeField(allow_null=True)
        in_force = serializers.BooleanField(source="is_active")

    PageSerializer = _page_serializer("OptOutExportPage", OutputSerializer)

    @extend_schema(
        operation_id="opt_outs_export",
        parameters=[InputSerializer],
        responses={
            200: PageSerializer,
            401: OpenApiResponse(description="no credentials"),
            404: OpenApiResponse(description="the caller is neither a catalog admin nor a model service"),
        },
        tags=["catalog"],
    )
    def get(self, request: Request) -> Response:
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        opt_outs = selectors.opt_out_export_list(
            since=params.validated_data.get("since"), active_only=params.validated_data["in_force"]
        )
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(opt_outs, request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)
