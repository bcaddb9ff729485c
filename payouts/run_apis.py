"""REST API for payout runs (/api/v1/payout-runs/...): the same services as the finance pages, for finance users
whose session passed MFA; anyone else gets 404. Refusals keep the services' words: 400 for bad input (naming the
field), 403 for maker-checker, 409 for a transition the run's state does not allow."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.middleware import session_used_mfa
from accounts.roles import FINANCE, user_has_role
from payouts.errors import MakerCheckerError, PayoutError, PayoutRunStateError
from payouts.models import Payout, PayoutRun
from payouts.selectors import payout_list, payout_run_get, payout_run_list, payout_run_progress
from payouts.services import (
    payout_run_approve,
    payout_run_cancel,
    payout_run_create,
    payout_run_execute,
    payout_run_retry_failed,
    payout_run_submit,
)


class IsFinanceOr404(BasePermission):
    """Finance users whose session passed the second factor; other people learn nothing (404)."""

    message = "Finance users must sign in with two-factor authentication to use the API."

    def has_permission(self, request, view) -> bool:
        if not request.user.is_authenticated:
            return False
        if not user_has_role(request.user, FINANCE):
            raise NotFound()
        return session_used_mfa(request)


def _error(exc: PayoutError) -> Response:
    code = (status.HTTP_403_FORBIDDEN if isinstance(exc, MakerCheckerError)
            else status.HTTP_409_CONFLICT if isinstance(exc, PayoutRunStateError) else status.HTTP_400_BAD_REQUEST)
    return Response(exc.as_dict(), status=code)


def _run_or_404(pk: int) -> PayoutRun:
    run = payout_run_get(pk=pk)
    if run is None:
        raise NotFound("No such payout run.")
    return run


@extend_schema_serializer(component_name="PayoutRun")
class PayoutRunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=PayoutRun.Status.choices)
    currency = serializers.CharField()
    as_of = serializers.DateField()
    transfer_group = serializers.CharField()
    threshold_minor = serializers.IntegerField()
    threshold_source = serializers.CharField()
    note = serializers.CharField()
    payout_count = serializers.IntegerField()
    total_minor = serializers.IntegerField(help_text="sum of the payouts, in the currency's minor unit")
    remainder_micros = serializers.IntegerField(help_text="sub-cent remainders left on the balances paid")
    excluded_count = serializers.IntegerField()
    created_by = serializers.CharField(source="created_by.email")
    created_at = serializers.DateTimeField()
    submitted_at = serializers.DateTimeField(allow_null=True)
    approved_by = serializers.CharField(source="approved_by.email", allow_null=True, default=None)
    approved_at = serializers.DateTimeField(allow_null=True)
    execution_started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    cancelled_at = serializers.DateTimeField(allow_null=True)
    cancel_reason = serializers.CharField()


@extend_schema_serializer(component_name="PayoutRunProgress")
class ProgressSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    done = serializers.IntegerField()
    percent = serializers.IntegerField()
    counts = serializers.DictField(child=serializers.IntegerField())
    paid_minor = serializers.IntegerField()
    failed_minor = serializers.IntegerField()
    finished = serializers.BooleanField()


@extend_schema_serializer(component_name="PayoutRunDetail")
class PayoutRunDetailSerializer(PayoutRunSerializer):
    progress = serializers.SerializerMethodField()

    @extend_schema_field(ProgressSerializer)
    def get_progress(self, run: PayoutRun) -> dict[str, Any]:
        return ProgressSerializer(payout_run_progress(run=run)).data


def _page_serializer(name: str, item: type[serializers.Serializer]) -> type[serializers.Serializer]:
    return type(name, (serializers.Serializer,), {
        "count": serializers.IntegerField(), "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True), "results": item(many=True)})


class PayoutRunListApi(APIView):
    """GET /api/v1/payout-runs/: runs, newest first."""

    permission_classes = [IsAuthenticated, IsFinanceOr404]

    @extend_schema_serializer(component_name="PayoutRunFilter")
    class InputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=PayoutRun.Status.choices, required=False)
        currency = serializers.RegexField(r"^[A-Za-z]{3}$", required=False)
        limit = serializers.IntegerField(required=False, min_value=1, max_value=500)
        offset = serializers.IntegerField(required=False, min_value=0)

    OutputSerializer = PayoutRunSerializer
    PageSerializer = _page_serializer("PayoutRunListPage", PayoutRunSerializer)

    @extend_schema(operation_id="payout_runs_list", parameters=[InputSerializer], responses={200: PageSerializer},
                   tags=["payouts"])
    def get(self, request: Request) -> Response:
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        runs = payout_run_list(status=params.validated_data.get("status"),
                               currency=params.validated_data.get("currency"))
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(runs, request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)


class PayoutRunCreateApi(APIView):
    """POST /api/v1/payout-runs/create/: draft a run from the current payable balances."""

    permission_classes = [IsAuthenticated, IsFinanceOr404]

    @extend_schema_serializer(component_name="PayoutRunCreate")
    class InputSerializer(serializers.Serializer):
        currency = serializers.RegexField(r"^[A-Za-z]{3}$", help_text="ISO 4217, e.g. USD")
        as_of = serializers.DateField(required=False, allow_null=True, default=None,
                                      help_text="last ledger day included (UTC); default today")
        note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)

    OutputSerializer = PayoutRunDetailSerializer

    @extend_schema(operation_id="payout_runs_create", request=InputSerializer,
                   responses={201: OutputSerializer, 400: OpenApiResponse(description="bad input, field named")},
                   tags=["payouts"])
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            run = payout_run_create(created_by=request.user, **data.validated_data)
        except PayoutError as exc:
            return _error(exc)
        return Response(self.OutputSerializer(run).data, status=status.HTTP_201_CREATED)


class PayoutRunDetailApi(APIView):
    """GET /api/v1/payout-runs/<id>/: one run with its progress."""

    permission_classes = [IsAuthenticated, IsFinanceOr404]
    OutputSerializer = PayoutRunDetailSerializer

    @extend_schema(operation_id="payout_runs_retrieve", responses={200: OutputSerializer}, tags=["payouts"])
    def get(self, request: Request, pk: int) -> Response:
        return Response(self.OutputSerializer(_run_or_404(pk)).data)


class PayoutRunPayoutListApi(APIView):
    """GET /api/v1/payout-runs/<id>/payouts/: the run's payouts."""

    permission_classes = [IsAuthenticated, IsFinanceOr404]

    @extend_schema_serializer(component_name="PayoutFilter")
    class InputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=Payout.Status.choices, required=False)
        limit = serializers.IntegerField(required=False, min_value=1, max_value=500)
        offset = serializers.IntegerField(required=False, min_value=0)

    @extend_schema_serializer(component_name="Payout")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        contributor_id = serializers.IntegerField()
        contributor = serializers.CharField(source="contributor.display_name")
        status = serializers.ChoiceField(choices=Payout.Status.choices)
        currency = serializers.CharField()
        amount_minor = serializers.IntegerField()
        balance_micros = serializers.IntegerField()
        remainder_micros = serializers.IntegerField()
        attempt = serializers.IntegerField()
        stripe_account_id = serializers.CharField()
        stripe_transfer_id = serializers.CharField()
        ledger_entry_id = serializers.IntegerField(allow_null=True)
        amount_reversed_minor = serializers.IntegerField()
        failure_code = serializers.CharField()
        failure_message = serializers.CharField()

    PageSerializer = _page_serializer("PayoutListPage", OutputSerializer)

    @extend_schema(operation_id="payout_runs_payouts_list", parameters=[InputSerializer],
                   responses={200: PageSerializer}, tags=["payouts"])
    def get(self, request: Request, pk: int) -> Response:
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        payouts = payout_list(run=_run_or_404(pk), status=params.validated_data.get("status"))
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(payouts, request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)


class _TransitionApi(APIView):
    """A POST that moves a run through one lifecycle transition (subclasses name the service)."""

    permission_classes = [IsAuthenticated, IsFinanceOr404]
    OutputSerializer = PayoutRunDetailSerializer

    class InputSerializer(serializers.Serializer):
        pass

    def act(self, run: PayoutRun, request: Request, data: dict[str, Any]) -> None:
        raise NotImplementedError

    def post(self, request: Request, pk: int) -> Response:
        run = _run_or_404(pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            self.act(run, request, data.validated_data)
        except PayoutError as exc:
            return _error(exc)
        return Response(self.OutputSerializer(_run_or_404(pk)).data)


_TRANSITION_RESPONSES = {
    200: PayoutRunDetailSerializer,
    400: OpenApiResponse(description="bad input, field named"),
    403: OpenApiResponse(description="maker-checker: the creator or submitter may not approve"),
    409: OpenApiResponse(description="the run's state does not allow this transition"),
}


class PayoutRunSubmitApi(_TransitionApi):
    """POST /api/v1/payout-runs/<id>/submit/: a draft goes to approval."""

    @extend_schema(operation_id="payout_runs_submit", request=None, responses=_TRANSITION_RESPONSES,
                   tags=["payouts"])
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def act(self, run, request, data) -> None:
        payout_run_submit(run=run, actor=request.user)


class PayoutRunApproveApi(_TransitionApi):
    """POST /api/v1/payout-runs/<id>/approve/: approval by a finance user other than the creator and submitter."""

    @extend_schema(operation_id="payout_runs_approve", request=None, responses=_TRANSITION_RESPONSES,
                   tags=["payouts"])
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def act(self, run, request, data) -> None:
        payout_run_approve(run=run, actor=request.user)


class PayoutRunCancelApi(_TransitionApi):
    """POST /api/v1/payout-runs/<id>/cancel/: cancel a run not yet executing (a reason is required)."""

    @extend_schema_serializer(component_name="PayoutRunCancel")
    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=2000)

    @extend_schema(operation_id="payout_runs_cancel", request=InputSerializer, responses=_TRANSITION_RESPONSES,
                   tags=["payouts"])
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def act(self, run, request, data) -> None:
        payout_run_cancel(run=run, actor=request.user, reason=data["reason"])


class PayoutRunExecuteApi(_TransitionApi):
    """POST /api/v1/payout-runs/<id>/execute/: send an approved run's transfers (asynchronously with a broker)."""

    @extend_schema(operation_id="payout_runs_execute", request=None, responses=_TRANSITION_RESPONSES,
                   tags=["payouts"])
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def act(self, run, request, data) -> None:
        payout_run_execute(run=run, actor=request.user)


class PayoutRunRetryApi(_TransitionApi):
    """POST /api/v1/payout-runs/<id>/retry/: send the failed payouts again (each as a new attempt)."""

    @extend_schema(operation_id="payout_runs_retry", request=None, responses=_TRANSITION_RESPONSES,
                   tags=["payouts"])
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def act(self, run, request, data) -> None:
        payout_run_retry_failed(run=run, actor=request.user)
