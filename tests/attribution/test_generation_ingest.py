"""POST /api/v1/generations/: creating, idempotent replay, batch atomicity, conflicts, exact revenue."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json

import pytest
from django.core.files.storage import default_storage

from attribution.models import Generation
from tests.attribution.conftest import make_generation_payload

pytestmark = pytest.mark.django_db


def test_single_generation_is_stored_with_exact_revenue_and_hashes(api_key, model_version, payload, post_generations):
    body = payload(model_version, revenue="0.000001", prompt="héllo", output_text="wörld", metadata={"a": [1, 2]})

    response = post_generations(api_key.secret, body)

    assert response.status_code == 201, response.content
    record = response.json()
    assert record["status"] == "created"
    assert record["revenue"] == "0.000001"
    assert record["revenue_micros"] == 1
    assert record["model_version_ref"] == "storyteller@v1"
    stored = Generation.objects.get(pk=record["id"])
    assert stored.revenue_micros == 1  # one micro-unit: no float ever touched it
    assert stored.prompt == "héllo"
    assert stored.output_text == "wörld"
    assert stored.prompt_sha256 == hashlib.sha256("héllo".encode()).hexdigest()
    assert stored.output_sha256 == hashlib.sha256("wörld".encode()).hexdigest()
    assert stored.output_mime_type == "text/plain"
    assert stored.metadata == {"a": [1, 2]}
    assert stored.currency == "USD"
    assert stored.api_key_id == api_key.api_key.pk  # provenance: which key logged this revenue
    assert stored.attributed_at is None


@pytest.mark.parametrize(
    ("revenue", "micros"),
    [
        ("0", 0), ("12", 12_000_000), ("0.1", 100_000), ("1000000", 1_000_000_000_000),
        ("999999.999999", 999_999_999_999),
    ],
)
def test_revenue_strings_convert_exactly_to_micros(api_key, model_version, payload, post_generations, revenue, micros):
    response = post_generations(api_key.secret, payload(model_version, revenue=revenue))

    assert response.status_code == 201, response.content
    assert Generation.objects.get().revenue_micros == micros


def test_batch_answers_one_record_per_item_in_order(api_key, model_version, post_generations):
    items = [make_generation_payload(model_version) for _ in range(3)]

    response = post_generations(api_key.secret, {"generations": items})

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["created"], body["existing"]) == (3, 0)
    assert [r["index"] for r in body["generations"]] == [0, 1, 2]
    assert [r["external_id"] for r in body["generations"]] == [i["external_id"] for i in items]
    stored = dict(Generation.objects.values_list("external_id", "pk"))
    assert [r["id"] for r in body["generations"]] == [stored[i["external_id"]] for i in items]


def test_replaying_a_single_generation_returns_the_stored_record_and_creates_nothing(
    api_key, model_version, payload, post_generations
):
    body = payload(model_version)
    first = post_generations(api_key.secret, body)

    replay = post_generations(api_key.secret, body)

    assert first.status_code == 201
    assert replay.status_code == 200, replay.content
    assert replay.json()["status"] == "existing"
    assert replay.json()["id"] == first.json()["id"]
    assert replay.json()["received_at"] == first.json()["received_at"]  # the stored record, not a new one
    assert Generation.objects.count() == 1


def test_replaying_a_batch_with_one_new_item_creates_only_that_item(api_key, model_version, post_generations):
    items = [make_generation_payload(model_version) for _ in range(2)]
    first = post_generations(api_key.secret, {"generations": items})
    extra = make_generation_payload(model_version)

    response = post_generations(api_key.secret, {"generations": [*items, extra]})

    assert first.status_code == 201
    assert response.status_code == 201
    statuses = [r["status"] for r in response.json()["generations"]]
    assert statuses == ["existing", "existing", "created"]
    assert response.json()["generations"][0]["id"] == first.json()["generations"][0]["id"]
    assert Generation.objects.count() == 3


def test_replay_with_the_same_instant_in_another_time_zone_is_the_same_generation(
    api_key, model_version, payload, post_generations
):
    instant = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)
    body = payload(model_version, generated_at=instant.isoformat())
    post_generations(api_key.secret, body)

    shifted = {**body, "generated_at": instant.astimezone(dt.timezone(dt.timedelta(hours=2))).isoformat()}
    response = post_generations(api_key.secret, shifted)

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "existing"


def test_replay_with_different_content_is_a_conflict_and_stores_nothing(api_key, model_version, post_generations):
    original = make_generation_payload(model_version, revenue="1.50")
    post_generations(api_key.secret, original)
    fresh = make_generation_payload(model_version)
    changed = {**original, "revenue": "2.50"}

    response = post_generations(api_key.secret, {"generations": [fresh, changed]})

    assert response.status_code == 409, response.content
    body = response.json()
    assert body["code"] == "external_id_conflict"
    assert body["errors"] == [{
        "index": 1, "field": "external_id",
        "message": f"external_id {original['external_id']!r} was already logged for storyteller@v1 with different "
                   "revenue; a replay must repeat the original exactly",
    }]
    # All-or-nothing: the fresh item in the same batch was not stored either.
    assert list(Generation.objects.values_list("external_id", flat=True)) == [original["external_id"]]
    assert Generation.objects.get().revenue_micros == 1_500_000


def test_a_batch_with_one_bad_item_stores_nothing_and_names_the_item(api_key, model_version, post_generations):
    items = [make_generation_payload(model_version) for _ in range(4)]
    items[2]["revenue"] = "-3.00"

    response = post_generations(api_key.secret, {"generations": items})

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert body["errors"] == [{"index": 2, "field": "revenue", "message": "must not be negative (got '-3.00')"}]
    assert Generation.objects.count() == 0


def test_a_batch_of_1000_is_accepted(api_key, model_version, post_generations):
    items = [make_generation_payload(model_version) for _ in range(1000)]

    response = post_generations(api_key.secret, {"generations": items})

    assert response.status_code == 201, response.content[:500]
    assert response.json()["created"] == 1000
    assert Generation.objects.count() == 1000


def test_version_may_be_named_model_at_label(api_key, model_version, payload, post_generations):
    response = post_generations(api_key.secret, payload(model_version, model_version="storyteller@v1"))

    assert response.status_code == 201, response.content
    assert Generation.objects.get().model_version == model_version


def test_same_external_id_under_two_versions_are_two_generations(model_key, model_version, model_version_b,
                                                                 post_generations):
    a = make_generation_payload(model_version, external_id="shared")
    b = make_generation_payload(model_version_b, external_id="shared")

    response = post_generations(model_key.secret, {"generations": [a, b]})

    assert response.status_code == 201, response.content
    assert Generation.objects.filter(external_id="shared").count() == 2


def test_uploaded_media_output_is_stored_by_content_hash(api_key, model_version, payload, post_generations):
    png = b"\x89PNG\r\n\x1a\n" + b"pixels" * 10
    digest = hashlib.sha256(png).hexdigest()
    body = payload(model_version, output_text=None,
                   output_media={"mime_type": "image/png", "content_base64": base64.b64encode(png).decode()})

    response = post_generations(api_key.secret, body)

    assert response.status_code == 201, response.content
    stored = Generation.objects.get()
    assert stored.output_sha256 == digest
    assert stored.output_mime_type == "image/png"
    assert stored.output_text == ""
    assert stored.output_media.name.endswith(digest)
    with default_storage.open(stored.output_media.name) as fh:
        assert fh.read() == png


def test_hashed_media_output_keeps_only_the_hash(api_key, model_version, payload, post_generations):
    digest = hashlib.sha256(b"kept by the service").hexdigest()
    body = payload(model_version, output_text=None, output_media={"mime_type": "audio/wav", "sha256": digest.upper()})

    response = post_generations(api_key.secret, body)

    assert response.status_code == 201, response.content
    stored = Generation.objects.get()
    assert (stored.output_sha256, stored.output_media.name) == (digest, "")


def test_a_concurrent_insert_between_check_and_write_turns_into_existing(
    api_key, model_version, payload, post_generations, monkeypatch
):
    """Two requests racing on one external_id: the loser's insert fails, it retries and reports existing."""
    from attribution.services import ingest_sql

    body = payload(model_version)
    assert post_generations(api_key.secret, body).status_code == 201
    real_existing = ingest_sql.generation_rows_existing
    calls = []

    def blind_first_check(*, keys):
        # Fault injection at our own seam: the first look misses the row, as if the rival had not committed.
        calls.append(1)
        return {} if len(calls) == 1 else real_existing(keys=keys)

    monkeypatch.setattr(ingest_sql, "generation_rows_existing", blind_first_check)

    response = post_generations(api_key.secret, body)

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "existing"
    assert len(calls) == 2
    assert Generation.objects.count() == 1


def test_response_is_json_even_when_the_client_prefers_html(api_key, model_version, payload, client):
    response = client.post(
        "/api/v1/generations/", data=json.dumps(payload(model_version)), content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {api_key.secret}", HTTP_ACCEPT="application/json",
    )

    assert response.status_code == 201
    assert response["Content-Type"] == "application/json"
