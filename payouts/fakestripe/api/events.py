"""Webhook endpoints and events."""

from __future__ import annotations

import re
from typing import Any

from payouts.fakestripe import objects
from payouts.fakestripe.api._routing import _page, _platform_only, _route
from payouts.fakestripe.errors import invalid_param, missing_param
from payouts.fakestripe.params import (
    get_bool,
    get_list,
    get_metadata,
    get_str,
    get_url,
    reject_unknown,
    require_url,
)
from payouts.fakestripe.store import RequestContext


def _enabled_events(params: dict[str, Any], *, required: bool) -> list[str] | None:
    events = get_list(params, "enabled_events")
    if not events:
        if required:
            raise missing_param("enabled_events")
        return None
    for name in events:
        if name != "*" and not re.fullmatch(r"[a-z_]+(\.[a-z_]+)+", name):
            raise invalid_param("enabled_events", f"Invalid enabled_events: {name} is not an event type")
    return events


@_route("POST", "/v1/webhook_endpoints")
def webhook_endpoint_create(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    _platform_only(ctx)
    reject_unknown(params, {"url", "enabled_events", "connect", "api_version", "description", "metadata"})
    url = require_url(params, "url")
    enabled = _enabled_events(params, required=True) or []
    connect = get_bool(params, "connect")
    api_version = get_str(params, "api_version")
    description = get_str(params, "description")
    metadata = get_metadata(params) or {}
    ctx.begin()
    endpoint = objects.webhook_endpoint(endpoint_id=objects.new_id("we"), created=ctx.now, url=url,
                                        enabled_events=enabled, api_version=api_version,
                                        description=description, metadata=metadata)
    ctx.store.put(endpoint)
    secret = ctx.store.endpoint_secret()
    ctx.store.state["endpoint_secrets"][endpoint["id"]] = secret
    ctx.store.state["endpoint_connect"][endpoint["id"]] = connect
    # Only the creation response carries the signing secret, as on Stripe.
    return {**endpoint, "secret": secret}


@_route("GET", "/v1/webhook_endpoints")
def webhook_endpoint_list(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    reject_unknown(params, {"limit", "starting_after", "ending_before"})
    return _page(ctx, ctx.store.find("webhook_endpoint"), params, "/v1/webhook_endpoints")


@_route("GET", "/v1/webhook_endpoints/(?P<endpoint_id>we_[A-Za-z0-9]+)")
def webhook_endpoint_retrieve(ctx: RequestContext, params: dict[str, Any], endpoint_id: str) -> dict[str, Any]:
    reject_unknown(params, ())
    return ctx.store.get(endpoint_id, kind="webhook_endpoint")


@_route("POST", "/v1/webhook_endpoints/(?P<endpoint_id>we_[A-Za-z0-9]+)")
def webhook_endpoint_update(ctx: RequestContext, params: dict[str, Any], endpoint_id: str) -> dict[str, Any]:
    reject_unknown(params, {"url", "enabled_events", "disabled", "description", "metadata"})
    endpoint = ctx.store.get(endpoint_id, kind="webhook_endpoint")
    url = get_url(params, "url")
    enabled = _enabled_events(params, required=False)
    disabled = params.get("disabled")
    ctx.begin()
    if url:
        endpoint["url"] = url
    if enabled:
        endpoint["enabled_events"] = enabled
    if disabled is not None:
        endpoint["status"] = "disabled" if get_bool(params, "disabled") else "enabled"
    if (metadata := get_metadata(params)) is not None:
        endpoint["metadata"] = {**endpoint["metadata"], **metadata}
    return endpoint


@_route("DELETE", "/v1/webhook_endpoints/(?P<endpoint_id>we_[A-Za-z0-9]+)")
def webhook_endpoint_delete(ctx: RequestContext, params: dict[str, Any], endpoint_id: str) -> dict[str, Any]:
    ctx.store.get(endpoint_id, kind="webhook_endpoint")
    del ctx.store.state["objects"][endpoint_id]
    return {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True}


@_route("GET", "/v1/events/(?P<event_id>evt_[A-Za-z0-9]+)")
def event_retrieve(ctx: RequestContext, params: dict[str, Any], event_id: str) -> dict[str, Any]:
    reject_unknown(params, ())
    return ctx.store.get(event_id, kind="event", owner=ctx.account)


@_route("GET", "/v1/events")
def event_list(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    reject_unknown(params, {"limit", "starting_after", "ending_before", "created", "type", "types",
                            "delivery_success"})
    items = ctx.store.find("event", owner=ctx.account)
    if (kind := get_str(params, "type")) is not None:
        pattern = re.compile("^" + re.escape(kind).replace(r"\*", ".*") + "$")
        items = [e for e in items if pattern.match(e["type"])]
    if types := get_list(params, "types"):
        items = [e for e in items if e["type"] in types]
    return _page(ctx, items, params, "/v1/events")
