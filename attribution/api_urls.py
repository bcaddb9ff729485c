"""The attribution app's REST endpoints, mounted under /api/v1/ by royalties/api_urls.py."""

from __future__ import annotations

from django.urls import path

from attribution import apis

app_name = "attribution_api"
urlpatterns = [
    path("generations/", apis.GenerationListCreateApi.as_view(), name="generations"),
    path("generations/<int:pk>/", apis.GenerationDetailApi.as_view(), name="generation-detail"),
    path("models/", apis.AIModelListApi.as_view(), name="models"),
    path("model-versions/", apis.ModelVersionListCreateApi.as_view(), name="model-versions"),
    path("model-versions/<int:pk>/", apis.ModelVersionDetailApi.as_view(), name="model-version-detail"),
    path("model-versions/<int:pk>/manifest/", apis.ManifestListImportApi.as_view(), name="model-version-manifest"),
]
