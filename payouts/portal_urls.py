from __future__ import annotations

from django.urls import URLPattern, URLResolver

app_name = "payout_account"
urlpatterns: list[URLPattern | URLResolver] = []
