"""Mounted at /portal/payout-account/: the contributor's Stripe onboarding."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from payouts import views

app_name = "payout_account"
urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.payout_account_detail, name="detail"),
    path("start/", views.payout_account_start, name="start"),
    path("refresh/", views.payout_account_refresh, name="refresh"),
    path("return/", views.payout_account_return, name="return"),
]
