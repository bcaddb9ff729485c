"""Every class of bad ingest input gets a 4xx naming the item and field, and nothing is written."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from attribution.models import Generation
from tests.attribution.conftest import make_generation_payload

pytestmark = pytest.mark.django_db

FUTURE = (timezone.now() + dt.timedelta(days=2)).isoformat()

# (what is wrong, overrides for item 1 of a 3-item batch, field named, words the message must contain)
BAD_ITEMS = [
    ("revenue negative", {"revenue": "-0.01"}, "revenue", "must not be negative"),
    ("revenue too precise", {"revenue": "0.0000001"}, "revenue", "more than 6 decimal places"),
    ("revenue absurd", {"revenue": "1000000.000001"}, "revenue", "exceeds the limit of 1000000"),
    ("revenue absurdly long", {"revenue": "9" * 40}, "revenue", "too large"),
    ("revenue as a number", {"revenue": 0.5}, "revenue", "not a JSON number"),
    ("revenue as garbage", {"revenue": "1e3"}, "revenue", "decimal string"),
    ("revenue missing", {"revenue": None}, "revenue", "is required"),
    ("currency lower case", {"currency": "usd"}, "currency", "ISO 4217"),
    ("currency unknown", {"currency": "ZZZ"}, "currency", "ISO 4217"),
    ("currency a number", {"currency": 840}, "currency", "ISO 4217"),
    ("time without offset", {"generated_at": "2026-01-05T12:00:00"}, "generated_at", "time zone offset"),
    ("time not a date", {"generated_at": "yesterday"}, "generated_at", "not an ISO 8601"),
    ("time in the future", {"generated_at": FUTURE}, "generated_at", "future"),
    ("time in the distant past", {"generated_at": "0001-01-01T00:30:00+01:00"}, "generated_at", "out of range"),
    ("time before 2000", {"generated_at": "1999-12-31T23:59:59Z"}, "generated_at", "before 2000-01-01"),
    ("time a number", {"generated_at": 1767614400}, "generated_at", "must be an ISO 8601 string"),
    ("external_id empty", {"external_id": ""}, "external_id", "1 to 200 characters"),
    ("external_id too long", {"external_id": "x" * 201}, "external_id", "1 to 200 characters"),
    ("external_id a number", {"external_id": 7}, "external_id", "1 to 200 characters"),
    ("external_id control char", {"external_id": "a\nb"}, "external_id", "printable"),
    ("prompt a list", {"prompt": ["a"]}, "prompt", "must be a string, not a list"),
    ("prompt with NUL", {"prompt": "a\x00b"}, "prompt", "NUL"),
    ("prompt with lone surrogate", {"prompt": "a\ud800b"}, "prompt", "surrogate"),
    ("output with NUL", {"output_text": "\x00"}, "output_text", "NUL"),
    ("both outputs", {"output_media": {"mime_type": "image/png", "sha256": "a" * 64}}, "output_text", "exactly one"),
    ("no output", {"output_text": None}, "output_text", "exactly one"),
    ("media not an object", {"output_text": None, "output_media": "x"}, "output_media", "must be an object"),
    ("media bad mime", {"output_text": None, "output_media": {"mime_type": "png", "sha256": "a" * 64}},
     "output_media.mime_type", "media type"),
    ("media bad hash", {"output_text": None, "output_media": {"mime_type": "image/png", "sha256": "xyz"}},
     "output_media.sha256", "64 hexadecimal"),
    ("media bad base64", {"output_text": None, "output_media": {"mime_type": "image/png", "content_base64": "!!"}},
     "output_media.content_base64", "not valid base64"),
    ("media hash mismatch", {"output_text": None, "output_media": {
        "mime_type": "image/png", "content_base64": "aGVsbG8=", "sha256": "0" * 64}},
     "output_media.sha256", "does not match"),
    ("media neither bytes nor hash", {"output_text": None, "output_media": {"mime_type": "image/png"}},
     "output_media", "content_base64"),
    ("metadata a list", {"metadata": [1]}, "metadata", "must be an object"),
    ("metadata with NUL", {"metadata": {"k": "\x00"}}, "metadata", "NUL"),
    ("metadata key with surrogate", {"metadata": {"\udc00": 1}}, "metadata", "surrogate"),
    ("metadata too deep", {"metadata": {"d": json.loads("[" * 20 + "]" * 20)}}, "metadata", "nested deeper"),
    ("model_version a bool", {"model_version": True}, "model_version", "integer id"),
    ("model_version zero", {"model_version": 0}, "model_version", "positive id"),
    ("model_version no label", {"model_version": "storyteller"}, "model_version", "<model>@<label>"),
    ("unknown field", {"revenu": "1.00"}, "revenu", "unknown field"),
]


@pytest.mark.parametrize(("case", "overrides", "field", "words"), BAD_ITEMS, ids=[c[0] for c in BAD_ITEMS])
def test_bad_item_is_refused_by_index_and_field(api_key, model_version, post_generations, case, overrides, field,
                                                words):
    items = [make_generation_payload(model_version) for _ in range(3)]
    items[1] = make_generation_payload(model_version, **overrides)

    response = post_generations(api_key.secret, {"generations": items})

    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert [(e["index"], e["field"]) for e in errors] == [(1, field)], errors
    assert words in errors[0]["message"]
    assert Generation.objects.count() == 0


def test_revenue_cap_is_a_setting(api_key, model_version, payload, post_generations, settings):
    settings.ROYALTIES_MAX_GENERATION_REVENUE = 10

    refused = post_generations(api_key.secret, payload(model_version, revenue="10.000001"))
    accepted = post_generations(api_key.secret, payload(model_version, revenue="10"))

    assert refused.status_code == 400
    assert "exceeds the limit of 10 per generation" in refused.json()["errors"][0]["message"]
    assert accepted.status_code == 201


def test_every_bad_item_of_a_batch_is_reported(api_key, model_version, post_generations):
    items = [make_generation_payload(model_version, revenue="-1") for _ in range(3)]
    items[1]["currency"] = "xx"

    response = post_generations(api_key.secret, {"generations": items})

    assert response.status_code == 400
    assert [(e["index"], e["field"]) for e in response.json()["errors"]] == [
        (0, "revenue"), (1, "revenue"), (1, "currency"), (2, "revenue"),
    ]
    assert response.json()["detail"] == "3 of 3 generations are invalid; nothing was stored."


def test_missing_fields_are_each_named(api_key, post_generations):
    response = post_generations(api_key.secret, {"prompt": "hi"})

    assert response.status_code == 400
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"model_version", "external_id", "revenue", "generated_at"}


def test_duplicate_external_ids_in_a_batch_name_both_items(api_key, model_version, post_generations):
    items = [make_generation_payload(model_version) for _ in range(3)]
    items[2]["external_id"] = items[0]["external_id"]

    response = post_generations(api_key.secret, {"generations": items})

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "duplicate_external_id"
    assert body["errors"] == [{
        "index": 2, "field": "external_id",
        "message": f"external_id {items[0]['external_id']!r} repeats item 0 of this batch",
    }]
    assert Generation.objects.count() == 0


def test_duplicates_are_found_across_id_and_name_references(api_key, model_version, post_generations):
    a = make_generation_payload(model_version, external_id="same")
    b = make_generation_payload(model_version, external_id="same", model_version="storyteller@v1")

    response = post_generations(api_key.secret, {"generations": [a, b]})

    assert response.status_code == 400
    assert response.json()["errors"][0]["index"] == 1


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b'{"generations": [', "Malformed JSON"),
        (b"\xff\xfe not utf8", "not valid UTF-8"),
        (b'{"revenue": NaN}', "Malformed JSON"),
        (b'{"metadata": {"x": 1e999}}', "Malformed JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "Malformed JSON"),
        (b"", "empty"),
        (b"[]", "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
        (b'{"generations": {}}', "must be a list"),
        (b'{"generations": []}', "is empty"),
        (b'{"generations": [1]}', "invalid"),
        (b'{"generations": [], "extra": 1}', 'only "generations"'),
    ],
    ids=["truncated", "not-utf8", "nan", "infinite-float", "too-deep", "empty", "list", "string", "not-list",
         "empty-batch", "item-not-object", "extra-key"],
)
def test_malformed_bodies_are_400(api_key, post_generations, raw, words):
    response = post_generations(api_key.secret, None, raw=raw)

    assert response.status_code == 400, response.content
    assert words in response.json()["detail"]
    assert Generation.objects.count() == 0


def test_a_batch_over_1000_is_refused(api_key, model_version, post_generations):
    items = [make_generation_payload(model_version) for _ in range(1001)]

    response = post_generations(api_key.secret, {"generations": items})

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"index": None, "field": "generations", "message": "has 1001 items; the maximum is 1000"}
    ]


def test_oversized_body_is_413_before_it_is_read(api_key, model_version, post_generations, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    items = [make_generation_payload(model_version, prompt="x" * 500) for _ in range(10)]

    response = post_generations(api_key.secret, {"generations": items})

    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"
    assert Generation.objects.count() == 0


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_wrong_content_type_is_415(api_key, model_version, post_generations, content_type):
    body = json.dumps(make_generation_payload(model_version)).encode()

    response = post_generations(api_key.secret, None, raw=body, content_type=content_type)

    assert response.status_code == 415
    assert "application/json" in response.json()["detail"]
    assert Generation.objects.count() == 0


def test_unknown_and_foreign_versions_get_the_same_403(api_key, model_version, foreign_version, post_generations):
    items = [
        make_generation_payload(model_version),
        make_generation_payload(foreign_version),
        make_generation_payload(model_version, model_version=foreign_version.pk + 1000),
        make_generation_payload(model_version, model_version="painter@v1"),
    ]

    response = post_generations(api_key.secret, {"generations": items})

    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "model_version_not_allowed"
    assert [(e["index"], e["field"]) for e in body["errors"]] == [(1, "model_version"), (2, "model_version"),
                                                                   (3, "model_version")]
    # The message for an existing foreign version reads exactly like the one for a version that does not exist.
    messages = [e["message"].replace(repr(str(v)), "<v>").replace(repr(v), "<v>")
                for e, v in zip(body["errors"], [foreign_version.pk, foreign_version.pk + 1000, "painter@v1"],
                                strict=True)]
    assert len(set(messages)) == 1
    assert Generation.objects.count() == 0
