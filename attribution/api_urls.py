"""The attribution app's REST endpoints, mounted under /api/v1/ by royalties/api_urls.py."""

from __future__ import annotations

from django.urls import path, register_converter

from attribution import apis


class AnySegment:
    """Any path segment: the views parse ids themselves, so a malformed id gets the API's JSON 404."""

    regex = "[^/]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value) -> str:
        return str(value)


register_converter(AnySegment, "attribution_id")

app_name = "attribution_api"
urlpatterns = [
    path("generations/", apis.GenerationListCreateApi.as_view(), name="generations"),
    path("generations/<attribution_id:pk>/", apis.GenerationDetailApi.as_view(), name="generation-detail"),
    path("models/", apis.AIModelListApi.as_view(), name="models"),
    path("model-versions/", apis.ModelVersionListCreateApi.as_view(), name="model-versions"),
    path("model-versions/<attribution_id:pk>/", apis.ModelVersionDetailApi.as_view(), name="model-version-detail"),
    path(
        "model-versions/<attribution_id:pk>/manifest/",
        apis.ManifestListImportApi.as_view(),
        name="model-version-manifest",
    ),
]
