"""Fixtures for the registry, API key and generation-ingest tests: models, versions, keys, works, payloads."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json

import pytest
from django.utils import timezone

_counter = itertools.count(1)


@pytest.fixture
def ai_model(db):
    from attribution.models import AIModel

    return AIModel.objects.create(name="storyteller", modality=AIModel.Modality.TEXT, owner_team="narrative")


@pytest.fixture
def model_version(ai_model):
    from attribution.models import ModelVersion

    return ModelVersion.objects.create(ai_model=ai_model, label="v1", adapter="attribution.adapters.demo.Adapter")


@pytest.fixture
def model_version_b(ai_model):
    """A second version of the same model."""
    from attribution.models import ModelVersion

    return ModelVersion.objects.create(ai_model=ai_model, label="v2")


@pytest.fixture
def foreign_version(db):
    """A version of another model: outside the scope of keys for ``ai_model``."""
    from attribution.models import AIModel, ModelVersion

    other = AIModel.objects.create(name="painter", modality=AIModel.Modality.IMAGE)
    return ModelVersion.objects.create(ai_model=other, label="v1")


@pytest.fixture
def api_key(model_version):
    """A key scoped to ``model_version`` only: ``.secret`` is the full key, ``.api_key`` the row."""
    from attribution.services.api_keys import api_key_create

    return api_key_create(name="storyteller v1 ingest", model_version=model_version, actor_label="test")


@pytest.fixture
def model_key(ai_model):
    """A key scoped to every version of ``ai_model``."""
    from attribution.services.api_keys import api_key_create

    return api_key_create(name="storyteller all versions", ai_model=ai_model, actor_label="test")


def make_generation_payload(version, /, **overrides) -> dict:
    """A valid generation body for ``version`` (by id); override any field, or drop it with None."""
    n = next(_counter)
    body = {
        "model_version": version.pk,
        "external_id": f"gen-{n}",
        "prompt": f"Tell me story number {n}",
        "output_text": f"Once upon a time, story {n}.",
        "revenue": "0.012500",
        "currency": "USD",
        "generated_at": (timezone.now() - dt.timedelta(minutes=5)).isoformat(),
        "metadata": {"tokens": 42},
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


@pytest.fixture
def payload():
    return make_generation_payload


@pytest.fixture
def post_generations(client):
    """``post_generations(key, body)`` posts JSON to the ingest endpoint with a bearer key."""

    def _post(key: str | None, body, *, content_type: str = "application/json", raw: bytes | None = None):
        headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
        data = raw if raw is not None else json.dumps(body)
        return client.post("/api/v1/generations/", data=data, content_type=content_type, **headers)

    return _post


def make_work(*, title: str | None = None, content: bytes | None = None, sha256: str | None = None):
    """A registered work (catalog rows only; the catalog helper's services own uploads)."""
    from contributors.models import Work

    n = next(_counter)
    content = content if content is not None else f"work body {n}".encode()
    return Work.objects.create(
        kind=Work.Kind.TEXT, title=title or f"Work {n}", text_body=content.decode(errors="replace"),
        size_bytes=len(content), mime_type="text/plain", sha256=sha256 or hashlib.sha256(content).hexdigest(),
    )


@pytest.fixture
def work_factory(db):
    return make_work
