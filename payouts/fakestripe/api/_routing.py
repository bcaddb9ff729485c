"""The route table of the fake's /v1 API, and what every endpoint shares: pagination and ``expand``."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

from payouts.fakestripe.errors import FakeStripeError, invalid_param
from payouts.fakestripe.params import get_hash, get_int, get_list, get_str
from payouts.fakestripe.store import RequestContext

Handler = Callable[..., dict[str, Any]]
_ROUTES: list[tuple[str, re.Pattern[str], Handler]] = []


def _route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _ROUTES.append((method, re.compile(f"^{pattern}$"), fn))
        return fn

    return register


def route(ctx: RequestContext, method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
    """Run the endpoint for ``method path``; its answer with ``expand`` applied."""
    for route_method, pattern, fn in _ROUTES:
        match = pattern.match(path)
        if match and route_method == method:
            result = fn(ctx, params, **match.groupdict())
            return _expand(ctx, copy.deepcopy(result), get_list(params, "expand"))
    raise FakeStripeError(404, f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
                          "or we can help at https://support.stripe.com/.")


# --- helpers ---------------------------------------------------------------------------------------------


def _expand(ctx: RequestContext, obj: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    """Replace ids by the objects they name along each ``expand`` path (``source``, ``data.source``)."""
    for path in paths:
        _expand_path(ctx, obj, path.split("."))
    return obj


def _expand_path(ctx: RequestContext, node: Any, parts: list[str]) -> None:
    if not parts or not isinstance(node, dict):
        return
    head, rest = parts[0], parts[1:]
    if head == "data" and isinstance(node.get("data"), list):
        for item in node["data"]:
            _expand_path(ctx, item, rest)
        return
    value = node.get(head)
    if not rest:
        if isinstance(value, str) and value in ctx.store.state["objects"]:
            node[head] = copy.deepcopy(ctx.store.state["objects"][value])
        return
    _expand_path(ctx, value, rest)


def _page(ctx: RequestContext, items: list[dict[str, Any]], params: dict[str, Any], url: str) -> dict[str, Any]:
    """Stripe's cursor pagination: newest first, ``limit`` (1-100, default 10), ``starting_after``/``ending_before``."""
    limit = get_int(params, "limit", minimum=1, maximum=100) or 10
    created = get_hash(params, "created") if isinstance(params.get("created"), dict) else None
    if created is not None:
        bounds = {op: get_int(created, op) for op in ("gt", "gte", "lt", "lte")}
        items = [o for o in items
                 if (bounds["gt"] is None or o["created"] > bounds["gt"])
                 and (bounds["gte"] is None or o["created"] >= bounds["gte"])
                 and (bounds["lt"] is None or o["created"] < bounds["lt"])
                 and (bounds["lte"] is None or o["created"] <= bounds["lte"])]
    elif params.get("created"):
        exact = get_int(params, "created")
        items = [o for o in items if o["created"] == exact]
    ids = [o["id"] for o in items]
    after = get_str(params, "starting_after")
    before = get_str(params, "ending_before")
    if after:
        if after not in ids:
            raise invalid_param("starting_after", f"No such object: '{after}'", code="resource_missing")
        start = ids.index(after) + 1
        window = items[start:start + limit]
        has_more = start + limit < len(items)
    elif before:
        if before not in ids:
            raise invalid_param("ending_before", f"No such object: '{before}'", code="resource_missing")
        end = ids.index(before)
        window = items[max(0, end - limit):end]
        has_more = end - limit > 0
    else:
        window = items[:limit]
        has_more = len(items) > limit
    return {"object": "list", "data": window, "has_more": has_more, "url": url}


def _platform_only(ctx: RequestContext) -> None:
    if ctx.account:
        raise FakeStripeError(400, "This request cannot be made on behalf of a connected account "
                              "(remove the Stripe-Account header).", code="platform_api_key_expired")
