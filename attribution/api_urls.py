from __future__ import annotations

from django.urls import URLPattern, URLResolver

app_name = "attribution_api"
urlpatterns: list[URLPattern | URLResolver] = []
