"""API keys: shown once, stored as a hash, scoped, revocable, with a cheap last-used time; and the commands."""

from __future__ import annotations

import datetime as dt
import hashlib
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from attribution.models import ApiKey, Generation
from attribution.services.api_keys import ApiKeyInvalid, api_key_authenticate, api_key_create, api_key_revoke
from audit.models import AuditEvent
from tests.attribution.conftest import make_generation_payload

pytestmark = pytest.mark.django_db


def test_a_key_is_stored_only_as_prefix_and_hash(api_key):
    row = ApiKey.objects.get()
    secret = api_key.secret

    assert secret.startswith(f"rk_{row.prefix}_")
    assert row.secret_sha256 == hashlib.sha256(secret.encode()).hexdigest()
    # The secret part appears in no column of the row.
    stored = " ".join(str(getattr(row, f.attname)) for f in ApiKey._meta.concrete_fields)
    assert secret.split("_", 2)[2] not in stored
    event = AuditEvent.objects.get(action="api_key.create")
    assert event.after["prefix"] == row.prefix
    assert secret.split("_", 2)[2] not in str(event.after)


def test_a_key_needs_exactly_one_scope(ai_model, model_version):
    from attribution.services.errors import InvalidInput

    with pytest.raises(InvalidInput) as both:
        api_key_create(name="x", ai_model=ai_model, model_version=model_version)
    with pytest.raises(InvalidInput):
        api_key_create(name="x")

    assert [e.field for e in both.value.errors] == ["scope"]
    assert ApiKey.objects.count() == 0


def test_authenticate_accepts_the_key_and_refuses_near_misses(api_key):
    secret = api_key.secret

    assert api_key_authenticate(key=secret).pk == api_key.api_key.pk
    for wrong in [secret[:-1] + ("A" if secret[-1] != "A" else "B"), secret + "x", "rk_000000000000_" + "x" * 43,
                  "not-a-key", f"rk_{api_key.api_key.prefix}"]:
        with pytest.raises(ApiKeyInvalid):
            api_key_authenticate(key=wrong)


def test_last_used_is_written_at_most_once_a_minute(api_key):
    t0 = timezone.now()

    api_key_authenticate(key=api_key.secret, now=t0)
    api_key_authenticate(key=api_key.secret, now=t0 + dt.timedelta(seconds=59))
    first = ApiKey.objects.get().last_used_at
    api_key_authenticate(key=api_key.secret, now=t0 + dt.timedelta(seconds=61))
    second = ApiKey.objects.get().last_used_at

    assert first == t0  # the call 59 s later did not write
    assert second == t0 + dt.timedelta(seconds=61)


def test_revoked_key_is_refused_with_a_clear_message(api_key, model_version, payload, post_generations):
    assert post_generations(api_key.secret, payload(model_version)).status_code == 201

    api_key_revoke(api_key=api_key.api_key, actor_label="test", reason="leaked in a log")
    response = post_generations(api_key.secret, payload(model_version))

    assert response.status_code == 401
    assert response.json() == {"detail": "This API key has been revoked.", "code": "authentication_failed",
                               "errors": []}
    assert Generation.objects.count() == 1
    event = AuditEvent.objects.get(action="api_key.revoke")
    assert event.reason == "leaked in a log"


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        (None, "Authentication credentials were not provided."),
        ("Bearer", "The Authorization header has no key after 'Bearer'."),
        ("Bearer ", "The Authorization header has no key after 'Bearer'."),
        ("Bearer rk_nope", "Malformed API key: expected rk_<prefix>_<secret>."),
        ("Bearer rk_0123456789ab_wrong", "Invalid API key."),
        ("Basic dXNlcjpwYXNz", "Authentication credentials were not provided."),
    ],
)
def test_missing_or_bad_credentials_are_401_with_the_scheme(client, model_version, header, detail):
    kwargs = {"HTTP_AUTHORIZATION": header} if header is not None else {}
    response = client.post("/api/v1/generations/", data=make_generation_payload(model_version),
                           content_type="application/json", **kwargs)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert response.json()["detail"] == detail
    assert Generation.objects.count() == 0


def test_a_staff_session_cannot_log_generations(login_as, catalog_admin_user, model_version, payload):
    client = login_as(catalog_admin_user)

    response = client.post("/api/v1/generations/", data=payload(model_version), content_type="application/json")

    assert response.status_code == 401  # only a model-service key may write generations
    assert Generation.objects.count() == 0


def test_a_version_scoped_key_cannot_log_to_a_sibling_version(api_key, model_version_b, payload, post_generations):
    response = post_generations(api_key.secret, payload(model_version_b))

    assert response.status_code == 403
    assert response.json()["errors"][0]["index"] == 0
    assert response.json()["errors"][0]["field"] == "model_version"


def test_a_model_scoped_key_logs_to_every_version_of_its_model_only(
    model_key, model_version, model_version_b, foreign_version, payload, post_generations
):
    ok = post_generations(model_key.secret, {"generations": [payload(model_version), payload(model_version_b)]})
    refused = post_generations(model_key.secret, payload(foreign_version))

    assert ok.status_code == 201
    assert refused.status_code == 403
    assert Generation.objects.count() == 2


def test_model_service_throttle_counts_requests_per_key(api_key, model_version, payload, post_generations, settings):
    from django.core.cache import cache

    cache.clear()
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "model_service": "2/minute"},
    }

    codes = [post_generations(api_key.secret, payload(model_version)).status_code for _ in range(3)]

    assert codes == [201, 201, 429]
    assert Generation.objects.count() == 2
    cache.clear()


def test_create_api_key_command_prints_a_working_key_once(model_version, payload, post_generations):
    out, err = StringIO(), StringIO()

    call_command("create_api_key", "--model-version", "storyteller@v1", "--name", "cli key", stdout=out, stderr=err)

    secret = out.getvalue().strip()
    assert "not shown again" in err.getvalue()
    assert post_generations(secret, payload(model_version)).status_code == 201
    assert AuditEvent.objects.get(action="api_key.create").actor_label == "command:create_api_key"


def test_create_api_key_command_for_a_whole_model(ai_model, model_version_b, payload, post_generations):
    out = StringIO()

    call_command("create_api_key", "--model", "storyteller", "--name", "all", stdout=out, stderr=StringIO())

    assert post_generations(out.getvalue().strip(), payload(model_version_b)).status_code == 201
    assert ApiKey.objects.get().ai_model == ai_model


def test_create_api_key_command_refuses_an_unknown_version(db):
    with pytest.raises(CommandError, match="no model version 'ghost@v9'"):
        call_command("create_api_key", "--model-version", "ghost@v9", "--name", "x")


def test_revoke_api_key_command_takes_the_prefix_or_the_whole_key(api_key, model_version, payload, post_generations):
    out = StringIO()

    call_command("revoke_api_key", api_key.secret, "--reason", "rotated", stdout=out)

    assert "revoked" in out.getvalue()
    assert ApiKey.objects.get().revoked_at is not None
    assert post_generations(api_key.secret, payload(model_version)).status_code == 401
    with pytest.raises(CommandError):
        call_command("revoke_api_key", "ffffffffffff")
