"""Every REST endpoint lives under /api/v1/; each app contributes its own api_urls module."""

from __future__ import annotations

from django.urls import include, path

urlpatterns = [
    path("", include("contributors.api_urls")),
    path("", include("attribution.api_urls")),
    path("", include("payouts.api_urls")),
]
