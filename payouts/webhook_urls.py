"""Mounted at /webhooks/: callbacks from outside services."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from payouts.apis import StripeWebhookReceiveApi

app_name = "webhooks"
urlpatterns: list[URLPattern | URLResolver] = [
    path("stripe/", StripeWebhookReceiveApi.as_view(), name="stripe"),
]
