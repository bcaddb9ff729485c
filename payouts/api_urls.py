"""Payout-run endpoints under /api/v1/ (wired by royalties/api_urls.py)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from payouts import run_apis

app_name = "payouts_api"
urlpatterns: list[URLPattern | URLResolver] = [
    path("payout-runs/", run_apis.PayoutRunListApi.as_view(), name="run_list"),
    path("payout-runs/create/", run_apis.PayoutRunCreateApi.as_view(), name="run_create"),
    path("payout-runs/<int:pk>/", run_apis.PayoutRunDetailApi.as_view(), name="run_detail"),
    path("payout-runs/<int:pk>/payouts/", run_apis.PayoutRunPayoutListApi.as_view(), name="run_payouts"),
    path("payout-runs/<int:pk>/submit/", run_apis.PayoutRunSubmitApi.as_view(), name="run_submit"),
    path("payout-runs/<int:pk>/approve/", run_apis.PayoutRunApproveApi.as_view(), name="run_approve"),
    path("payout-runs/<int:pk>/cancel/", run_apis.PayoutRunCancelApi.as_view(), name="run_cancel"),
    path("payout-runs/<int:pk>/execute/", run_apis.PayoutRunExecuteApi.as_view(), name="run_execute"),
    path("payout-runs/<int:pk>/retry/", run_apis.PayoutRunRetryApi.as_view(), name="run_retry"),
]
