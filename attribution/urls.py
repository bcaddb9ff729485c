"""Catalog admins' pages, mounted at /catalog/."""

from __future__ import annotations

from django.urls import path

from attribution import catalog_views

app_name = "attribution"
urlpatterns = [
    path("", catalog_views.model_version_list_page, name="model-versions"),
    path("versions/new/", catalog_views.model_version_register_page, name="model-version-register"),
    path("versions/<int:pk>/", catalog_views.model_version_detail_page, name="model-version"),
    path("keys/", catalog_views.api_key_list_page, name="api-keys"),
    path("keys/<int:pk>/revoke/", catalog_views.api_key_revoke_page, name="api-key-revoke"),
]
