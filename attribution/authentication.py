"""Who may call the attribution APIs: model services by API key, staff by MFA session; and how often.

A model service sends ``Authorization: Bearer rk_<prefix>_<secret>``. The request then carries the
``ApiKey`` as ``request.auth`` (``request.user`` stays anonymous: a key is not a person) and every read is
narrowed to the key's scope by the selectors.
"""

from __future__ import annotations

import time

from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle, UserRateThrottle

from accounts.middleware import session_used_mfa
from accounts.roles import CATALOG_ADMIN, FINANCE, user_has_role
from attribution.models import ApiKey
from attribution.services.api_keys import ApiKeyInvalid, api_key_authenticate


class ApiKeyAuthentication(BaseAuthentication):
    """``Authorization: Bearer <key>`` for model services; other schemes are left to other authenticators."""

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        key = key.strip()
        if not key:
            raise AuthenticationFailed("The Authorization header has no key after 'Bearer'.")
        try:
            api_key = api_key_authenticate(key=key)
        except ApiKeyInvalid as exc:
            raise AuthenticationFailed(str(exc)) from exc
        return AnonymousUser(), api_key

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (not 403) to a request without credentials, with the scheme to use.
        return 'Bearer realm="api"'


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "attribution.authentication.ApiKeyAuthentication"
    name = "modelServiceKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "rk_<prefix>_<secret>",
            "description": (
                "A model-service API key, created by a catalog admin (admin site or `manage.py create_api_key`) "
                "and shown once. Scoped to one model version or to every version of one model; revocable."
            ),
        }


def request_api_key(request) -> ApiKey | None:
    auth = getattr(request, "auth", None)
    return auth if isinstance(auth, ApiKey) else None


class HasModelServiceKey(BasePermission):
    message = "This endpoint is for model services: send 'Authorization: Bearer <API key>'."

    def has_permission(self, request, view) -> bool:
        return request_api_key(request) is not None


def is_staff_reader(request) -> bool:
    """Finance staff or catalog admins whose session passed multi-factor authentication."""
    # The MFA middleware leaves /api/ alone (machines use it), so the API checks the second factor itself.
    return user_has_role(request.user, FINANCE, CATALOG_ADMIN) and session_used_mfa(request)


class IsStaffReader(BasePermission):
    message = "Only finance staff and catalog admins (signed in with multi-factor authentication) may read this."

    def has_permission(self, request, view) -> bool:
        return is_staff_reader(request)


class IsStaffReaderOrModelService(BasePermission):
    message = (
        "Only finance staff and catalog admins (signed in with multi-factor authentication), or a model service "
        "with an API key, may read this."
    )

    def has_permission(self, request, view) -> bool:
        return request_api_key(request) is not None or is_staff_reader(request)


class IsCatalogAdmin(BasePermission):
    message = "Only catalog admins (signed in with multi-factor authentication) may change the model registry."

    def has_permission(self, request, view) -> bool:
        return user_has_role(request.user, CATALOG_ADMIN) and session_used_mfa(request)


def _parse_rate(rate: str) -> tuple[int, int]:
    count, _, period = rate.partition("/")
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}[period[:1]]
    return int(count), seconds


class ModelServiceRateThrottle(BaseThrottle):
    """Requests per API key per window (the "model_service" rate); a batch counts as one request.

    A fixed-window counter (one cache increment per request) rather than DRF's sliding log, which pickles
    the whole request history on every call: at thousands of requests a minute that log is the slowest
    part of the request. With the default per-process cache each worker counts its own share; configure a
    shared cache (Redis) to make the limit global.
    """

    scope = "model_service"

    def __init__(self) -> None:
        self.num_requests, self.duration = _parse_rate(api_settings.DEFAULT_THROTTLE_RATES[self.scope])
        self._wait = 0.0

    def allow_request(self, request, view) -> bool:
        api_key = request_api_key(request)
        if api_key is None:
            return True
        now = time.time()
        window = int(now // self.duration)
        key = f"throttle:{self.scope}:{api_key.pk}:{window}"
        cache.add(key, 0, self.duration + 1)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, self.duration + 1)
            count = 1
        self._wait = (window + 1) * self.duration - now
        return count <= self.num_requests

    def wait(self) -> float:
        return self._wait


class StaffRateThrottle(UserRateThrottle):
    """The usual per-user rate for people; model services are counted by ModelServiceRateThrottle instead."""

    def get_cache_key(self, request, view):
        if request_api_key(request) is not None:
            return None
        return super().get_cache_key(request, view)
