"""REST API of the attribution app, under /api/v1/: generation logging and the model registry.

Every error answers ``{"detail", "code", "errors": [{"index", "field", "message"}]}`` (manifest errors
carry ``line``). The ingest endpoint validates with a plain function (services.ingest_validation): its
serializers document the body for the OpenAPI schema and the schemathesis test keeps the two in step.
"""

from __future__ import annotations

from attribution.apis.generations import GenerationDetailApi, GenerationListCreateApi
from attribution.apis.registry import (
    AIModelListApi,
    ManifestListImportApi,
    ModelVersionDetailApi,
    ModelVersionListCreateApi,
)

__all__ = [
    "AIModelListApi",
    "GenerationDetailApi",
    "GenerationListCreateApi",
    "ManifestListImportApi",
    "ModelVersionDetailApi",
    "ModelVersionListCreateApi",
]
