"""Mounted at /portal/statements/: the signed-in contributor's statements."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from payouts import statement_views

app_name = "statements"
urlpatterns: list[URLPattern | URLResolver] = [
    path("", statement_views.statement_list_view, name="list"),
    path("<int:pk>/<str:fmt>/", statement_views.statement_download, name="download"),
]
