from __future__ import annotations

from django.urls import URLPattern, URLResolver

app_name = "contributors"
urlpatterns: list[URLPattern | URLResolver] = []
