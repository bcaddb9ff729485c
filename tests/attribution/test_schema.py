"""The OpenAPI schema: valid OpenAPI 3, every endpoint documented, and the live API keeps to it (schemathesis)."""

from __future__ import annotations

import pytest
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

OUR_PATHS = r"^/api/v1/(generations|models|model-versions)/"
# Examples per operation and mode: enough to cross every field's edge cases, small enough for ~20 s in CI.
EXAMPLES = 12


def _schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def test_schema_is_valid_openapi_3(db):
    schema = _schema()

    validate_schema(schema)  # raises on any violation of the OpenAPI 3.0 meta-schema
    assert schema["openapi"].startswith("3.")


def test_our_operations_document_auth_and_errors(db):
    schema = _schema()
    ours = {p: ops for p, ops in schema["paths"].items() if p.startswith(("/api/v1/generations", "/api/v1/model",))}

    assert set(ours) == {
        "/api/v1/generations/", "/api/v1/generations/{id}/", "/api/v1/models/", "/api/v1/model-versions/",
        "/api/v1/model-versions/{id}/", "/api/v1/model-versions/{id}/manifest/",
    }
    for path, ops in ours.items():
        for method, op in ops.items():
            assert op.get("security"), (method, path)
            assert {"401", "403"} <= set(op["responses"]), (method, path)
            for code, response in op["responses"].items():
                if code >= "400":
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref == "#/components/schemas/ApiError", (method, path, code)
    ingest = schema["paths"]["/api/v1/generations/"]["post"]
    assert ingest["security"] == [{"modelServiceKey": []}]
    assert {"200", "201", "400", "409", "413", "415", "429"} <= set(ingest["responses"])
    assert schema["components"]["securitySchemes"]["modelServiceKey"]["scheme"] == "bearer"


def test_schema_and_docs_are_served(client, db):
    docs = client.get("/api/docs/")

    assert client.get("/api/schema/").status_code == 200
    assert docs.status_code == 200
    # The interactive docs load Swagger UI from our own static files, so they work on an offline network.
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in docs.text
    assert "cdn." not in docs.text


@pytest.fixture
def live_version(transactional_db):
    from attribution.models import AIModel, ManifestEntry, ModelVersion
    from attribution.services.api_keys import api_key_create
    from tests.attribution.conftest import make_work

    ai_model = AIModel.objects.create(name="fuzz", modality="text")
    version = ModelVersion.objects.create(ai_model=ai_model, label="v1")
    work = make_work()
    ManifestEntry.objects.create(model_version=version, work=work, sha256=work.sha256)
    return version, api_key_create(name="schemathesis", model_version=version).secret


def _aim_at(case, version_id: int) -> None:
    """Point generated ingest bodies at the key's own version, so valid ones reach the write path."""
    if case.method != "POST" or case.path != "/api/v1/generations/" or not isinstance(case.body, dict):
        return
    items = case.body.get("generations") if "generations" in case.body else [case.body]
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get("model_version"), int | str):
            item["model_version"] = version_id


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
def test_live_api_conforms_to_its_schema(live_server, live_version, mode):
    """Generated requests (valid and invalid) against the real server: no 5xx, every answer as documented."""
    loaded = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/?format=json")
    operations = loaded.include(path_regex=OUR_PATHS)
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    if mode is GenerationMode.NEGATIVE:
        checks.append(negative_data_rejection)
    version, key = live_version
    headers = {"Authorization": f"Bearer {key}"}
    tested = []
    statuses: dict[str, set[int]] = {}
    for result in operations.get_all_operations():
        operation = result.ok()
        tested.append(operation.label)

        # derandomize: the same examples on every run, so CI fails for a change in the code, never by luck.
        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case):
            if mode is GenerationMode.POSITIVE:
                _aim_at(case, version.pk)
            response = case.call_and_validate(base_url=live_server.url, headers=headers, checks=checks)
            statuses.setdefault(case.operation.label, set()).add(response.status_code)

        run()
    assert len(tested) == 9, tested
    if mode is GenerationMode.POSITIVE:
        # The fuzzer got past validation at least once: a 201 body was checked against its schema too.
        assert 201 in statuses["POST /api/v1/generations/"], statuses
