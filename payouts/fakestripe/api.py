"""The /v1 endpoints the platform uses, with Stripe's parameters, validation, side effects and events."""

from __future__ import annotations

import copy
import re
import secrets
from collections.abc import Callable
from typing import Any

from payouts.fakestripe import objects
from payouts.fakestripe.errors import FakeStripeError, invalid_param, missing_param, no_such
from payouts.fakestripe.params import (
    get_bool,
    get_currency,
    get_hash,
    get_int,
    get_list,
    get_metadata,
    get_str,
    get_url,
    reject_unknown,
    require_currency,
    require_int,
    require_str,
    require_url,
)
from payouts.fakestripe.store import RequestContext, previous_attributes

Handler = Callable[..., dict[str, Any]]
_ROUTES: list[tuple[str, re.Pattern[str], Handler]] = []


def _route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _ROUTES.append((method, re.compile(f"^{pattern}$"), fn))
        return fn

    return register


def route(ctx: RequestContext, method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
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


# --- accounts --------------------------------------------------------------------------------------------

_ACCOUNT_CREATE = {"type", "country", "email", "capabilities", "controller", "business_type", "metadata",
                   "business_profile", "default_currency", "settings", "tos_acceptance", "individual", "company"}


def _requested_capabilities(params: dict[str, Any]) -> list[str]:
    requested = []
    for name, spec in get_hash(params, "capabilities").items():
        if name not in objects.KNOWN_CAPABILITIES:
            raise invalid_param(f"capabilities[{name}]", f"Invalid capability: {name}")
        if not isinstance(spec, dict) or "requested" not in spec:
            raise missing_param(f"capabilities[{name}][requested]")
        if get_bool(spec, "requested"):
            requested.append(name)
    return requested


@_route("POST", "/v1/accounts")
def account_create(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    _platform_only(ctx)
    reject_unknown(params, _ACCOUNT_CREATE)
    account_type = get_str(params, "type")
    if account_type not in (None, "express", "custom", "standard"):
        raise invalid_param("type", f"Invalid type: must be one of custom, express, or standard (got {account_type})")
    controller = get_hash(params, "controller")
    if account_type and controller:
        raise invalid_param("controller", "You cannot pass both `type` and `controller`.")
    country = (get_str(params, "country") or "US").upper()
    if not re.fullmatch(r"[A-Z]{2}", country):
        raise invalid_param("country", f"Invalid country: {country}")
    email = get_str(params, "email", max_length=800)
    if email is not None and "@" not in email:
        raise invalid_param("email", f"Invalid email address: {email}", code="email_invalid")
    business_type = get_str(params, "business_type")
    if business_type not in (None, "individual", "company", "non_profit", "government_entity"):
        raise invalid_param("business_type", f"Invalid business_type: {business_type}")
    capabilities = _requested_capabilities(params)
    kind, full_controller = objects.controller_for(account_type, controller)
    if kind == "express" and not capabilities:
        raise invalid_param("capabilities", "Express accounts must request at least one capability "
                            "(for example capabilities[transfers][requested]=true).")
    currency = get_currency(params, "default_currency", required=False) or ("usd" if country == "US" else "eur")
    metadata = get_metadata(params) or {}
    ctx.begin()
    account = objects.account(account_id=objects.new_id("acct"), created=ctx.now, kind=kind,
                              controller=full_controller, country=country, email=email, capabilities=capabilities,
                              metadata=metadata, business_type=business_type, default_currency=currency)
    ctx.store.put(account)
    ctx.store.balance_of(account["id"], currency)
    return account


@_route("GET", "/v1/accounts/(?P<account_id>acct_[A-Za-z0-9]+)")
def account_retrieve(ctx: RequestContext, params: dict[str, Any], account_id: str) -> dict[str, Any]:
    reject_unknown(params, ())
    return ctx.store.get(account_id, kind="account")


@_route("POST", "/v1/accounts/(?P<account_id>acct_[A-Za-z0-9]+)")
def account_update(ctx: RequestContext, params: dict[str, Any], account_id: str) -> dict[str, Any]:
    reject_unknown(params, {"metadata", "email", "capabilities", "business_profile", "settings"})
    account = ctx.store.get(account_id, kind="account")
    before = copy.deepcopy(account)
    metadata = get_metadata(params)
    email = get_str(params, "email", max_length=800)
    requested = _requested_capabilities(params)
    ctx.begin()
    if metadata is not None:
        merged = {**account["metadata"], **metadata}
        account["metadata"] = {k: v for k, v in merged.items() if v != ""} if metadata else {}
    if email is not None:
        account["email"] = email
    for name in requested:
        account["capabilities"].setdefault(name, "inactive" if not account["details_submitted"] else "pending")
    previous = previous_attributes(before, account)
    if previous:
        ctx.store.emit("account.updated", account, account=account_id, previous=previous, ctx=ctx)
    return account


@_route("GET", "/v1/accounts")
def account_list(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    reject_unknown(params, {"limit", "starting_after", "ending_before", "created"})
    return _page(ctx, ctx.store.find("account"), params, "/v1/accounts")


@_route("POST", "/v1/account_links")
def account_link_create(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    _platform_only(ctx)
    reject_unknown(params, {"account", "refresh_url", "return_url", "type", "collect", "collection_options"})
    account_id = require_str(params, "account")
    link_type = require_str(params, "type")
    if link_type not in ("account_onboarding", "account_update"):
        raise invalid_param("type", "Invalid type: must be one of account_onboarding or account_update")
    options = get_hash(params, "collection_options")
    if get_str(options, "fields") not in (None, "currently_due", "eventually_due"):
        raise invalid_param("collection_options[fields]", "Invalid collection_options[fields]: must be "
                            "currently_due or eventually_due")
    if get_str(params, "collect") not in (None, "currently_due", "eventually_due"):
        raise invalid_param("collect", "Invalid collect: must be currently_due or eventually_due")
    refresh_url = require_url(params, "refresh_url")
    return_url = require_url(params, "return_url")
    account = ctx.store.get(account_id, kind="account", param="account")
    if link_type == "account_update" and account["type"] != "custom":
        raise invalid_param("type", "You cannot create `account_update` type Account Links for this account: "
                            "it is not collected by the platform.")
    ctx.begin()
    token = secrets.token_urlsafe(12)
    expires_at = ctx.now + ctx.store.link_ttl_seconds
    ctx.store.state["links"][token] = {"account": account_id, "refresh_url": refresh_url, "return_url": return_url,
                                       "expires_at": expires_at, "used": False, "type": link_type}
    return {"object": "account_link", "created": ctx.now, "expires_at": expires_at,
            "url": f"{ctx.store.public_url}/setup/e/{account_id}/{token}"}


# --- transfers -------------------------------------------------------------------------------------------


@_route("POST", "/v1/transfers")
def transfer_create(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    _platform_only(ctx)
    reject_unknown(params, {"amount", "currency", "destination", "description", "metadata", "transfer_group",
                            "source_transaction", "source_type"})
    amount = require_int(params, "amount", minimum=1)
    currency = require_currency(params)
    destination_id = require_str(params, "destination")
    description = get_str(params, "description", max_length=1000)
    metadata = get_metadata(params) or {}
    transfer_group = get_str(params, "transfer_group", max_length=500)
    if params.get("source_transaction"):
        raise invalid_param("source_transaction", "The fake Stripe server has no charges to transfer from.")
    destination = ctx.store.state["objects"].get(destination_id)
    if destination is None or destination.get("object") != "account":
        raise no_such("destination", destination_id, param="destination")
    if destination["capabilities"].get("transfers") != "active":
        raise FakeStripeError(
            400, "Your destination account needs to have at least one of the following capabilities enabled: "
            "transfers, crypto_transfers, legacy_payments", code="insufficient_capabilities_for_transfer",
            param="destination")
    ctx.begin()
    balance = ctx.store.balance_of(None, currency)
    if balance["available"] < amount:
        raise FakeStripeError(
            400, "You have insufficient available funds in your Stripe account. Try adding funds directly to "
            "your available balance by creating Charges using the 4000000000000077 test card.",
            code="balance_insufficient", store=True)
    transfer_id = objects.new_id("tr")
    txn = ctx.store.put(objects.balance_transaction(
        amount=-amount, currency=currency, created=ctx.now, source=transfer_id, type_="transfer",
        reporting_category="transfer", description=description))
    payment_id = objects.new_id("py")
    ctx.store.put({"id": payment_id, "object": "charge", "amount": amount, "currency": currency,
                   "created": ctx.now, "source_transfer": transfer_id, "status": "succeeded", "paid": True},
                  owner=destination_id)
    ctx.store.put(objects.balance_transaction(
        amount=amount, currency=currency, created=ctx.now, source=payment_id, type_="payment",
        reporting_category="charge"), owner=destination_id)
    transfer = objects.transfer(transfer_id=transfer_id, amount=amount, currency=currency, created=ctx.now,
                                destination=destination_id, destination_payment=payment_id,
                                balance_transaction_id=txn["id"], description=description, metadata=metadata,
                                transfer_group=transfer_group)
    ctx.store.put(transfer)
    balance["available"] -= amount
    ctx.store.balance_of(destination_id, currency)["available"] += amount
    ctx.store.emit("transfer.created", transfer, ctx=ctx)
    return transfer


@_route("GET", "/v1/transfers")
def transfer_list(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    reject_unknown(params, {"limit", "starting_after", "ending_before", "created", "destination", "transfer_group"})
    items = ctx.store.find("transfer")
    if (destination := get_str(params, "destination")) is not None:
        items = [t for t in items if t["destination"] == destination]
    if (group := get_str(params, "transfer_group")) is not None:
        items = [t for t in items if t["transfer_group"] == group]
    return _page(ctx, items, params, "/v1/transfers")


@_route("GET", "/v1/transfers/(?P<transfer_id>tr_[A-Za-z0-9]+)")
def transfer_retrieve(ctx: RequestContext, params: dict[str, Any], transfer_id: str) -> dict[str, Any]:
    reject_unknown(params, ())
    return ctx.store.get(transfer_id, kind="transfer")


@_route("POST", "/v1/transfers/(?P<transfer_id>tr_[A-Za-z0-9]+)")
def transfer_update(ctx: RequestContext, params: dict[str, Any], transfer_id: str) -> dict[str, Any]:
    reject_unknown(params, {"description", "metadata"})
    transfer = ctx.store.get(transfer_id, kind="transfer")
    metadata = get_metadata(params)
    description = get_str(params, "description", max_length=1000)
    ctx.begin()
    previous: dict[str, Any] = {}
    if metadata is not None:
        previous["metadata"] = dict(transfer["metadata"])
        merged = {**transfer["metadata"], **metadata}
        transfer["metadata"] = {k: v for k, v in merged.items() if v != ""} if metadata else {}
    if description is not None:
        previous["description"] = transfer["description"]
        transfer["description"] = description
    if previous:
        ctx.store.emit("transfer.updated", transfer, previous=previous, ctx=ctx)
    return transfer


@_route("POST", "/v1/transfers/(?P<transfer_id>tr_[A-Za-z0-9]+)/reversals")
def reversal_create(ctx: RequestContext, params: dict[str, Any], transfer_id: str) -> dict[str, Any]:
    _platform_only(ctx)
    reject_unknown(params, {"amount", "description", "metadata", "refund_application_fee"})
    transfer = ctx.store.get(transfer_id, kind="transfer")
    remaining = transfer["amount"] - transfer["amount_reversed"]
    amount = get_int(params, "amount", minimum=1)
    metadata = get_metadata(params) or {}
    get_bool(params, "refund_application_fee")
    if remaining == 0:
        raise FakeStripeError(400, f"Transfer {transfer_id} has already been fully reversed.", param="amount")
    if amount is None:
        amount = remaining
    if amount > remaining:
        raise invalid_param("amount", f"Amount requested ({amount}) exceeds the amount left to reverse on "
                            f"transfer {transfer_id} ({remaining}).", code="amount_too_large")
    ctx.begin()
    destination_balance = ctx.store.balance_of(transfer["destination"], transfer["currency"])
    if destination_balance["available"] < amount:
        raise FakeStripeError(400, "The connected account's balance is insufficient to reverse this transfer.",
                              code="balance_insufficient", store=True)
    reversal_id = objects.new_id("trr")
    txn = ctx.store.put(objects.balance_transaction(
        amount=amount, currency=transfer["currency"], created=ctx.now, source=reversal_id,
        type_="transfer_refund", reporting_category="transfer_reversal"))
    reversal = objects.transfer_reversal(amount=amount, currency=transfer["currency"], created=ctx.now,
                                         transfer_id=transfer_id, balance_transaction_id=txn["id"],
                                         metadata=metadata, reversal_id=reversal_id)
    ctx.store.put(reversal)
    before = {"amount_reversed": transfer["amount_reversed"], "reversed": transfer["reversed"]}
    transfer["amount_reversed"] += amount
    transfer["reversed"] = transfer["amount_reversed"] == transfer["amount"]
    reversals = transfer["reversals"]
    reversals["data"].insert(0, copy.deepcopy(reversal))
    reversals["total_count"] = len(reversals["data"])
    destination_balance["available"] -= amount
    ctx.store.balance_of(None, transfer["currency"])["available"] += amount
    ctx.store.emit("transfer.reversed", transfer, previous=before, ctx=ctx)
    return reversal


@_route("GET", "/v1/transfers/(?P<transfer_id>tr_[A-Za-z0-9]+)/reversals")
def reversal_list(ctx: RequestContext, params: dict[str, Any], transfer_id: str) -> dict[str, Any]:
    reject_unknown(params, {"limit", "starting_after", "ending_before"})
    ctx.store.get(transfer_id, kind="transfer")
    items = [r for r in ctx.store.find("transfer_reversal") if r["transfer"] == transfer_id]
    return _page(ctx, items, params, f"/v1/transfers/{transfer_id}/reversals")


@_route("GET", "/v1/transfers/(?P<transfer_id>tr_[A-Za-z0-9]+)/reversals/(?P<reversal_id>trr_[A-Za-z0-9]+)")
def reversal_retrieve(ctx: RequestContext, params: dict[str, Any], transfer_id: str,
                      reversal_id: str) -> dict[str, Any]:
    reject_unknown(params, ())
    reversal = ctx.store.get(reversal_id, kind="transfer_reversal")
    if reversal["transfer"] != transfer_id:
        raise no_such("transfer_reversal", reversal_id)
    return reversal


# --- balance ---------------------------------------------------------------------------------------------


@_route("GET", "/v1/balance")
def balance_retrieve(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    reject_unknown(params, ())
    balances = ctx.store.state["balances"].get(ctx.account or "platform", {})
    available = [{"amount": b["available"], "currency": cur, "source_types": {"card": b["available"]}}
                 for cur, b in sorted(balances.items())]
    pending = [{"amount": b["pending"], "currency": cur, "source_types": {"card": b["pending"]}}
               for cur, b in sorted(balances.items())]
    return {"object": "balance", "available": available, "pending": pending, "livemode": False,
            "connect_reserved": [{"amount": 0, "currency": cur} for cur in sorted(balances)]}


@_route("GET", "/v1/balance_transactions")
def balance_transaction_list(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    reject_unknown(params, {"limit", "starting_after", "ending_before", "created", "currency", "payout", "source",
                            "type"})
    items = ctx.store.find("balance_transaction", owner=ctx.account)
    if (source := get_str(params, "source")) is not None:
        items = [t for t in items if t["source"] == source]
    if (kind := get_str(params, "type")) is not None:
        items = [t for t in items if t["type"] == kind]
    if (currency := get_currency(params, required=False)) is not None:
        items = [t for t in items if t["currency"] == currency]
    if (payout := get_str(params, "payout")) is not None:
        items = [t for t in items if t["source"] == payout]
    return _page(ctx, items, params, "/v1/balance_transactions")


@_route("GET", "/v1/balance_transactions/(?P<txn_id>txn_[A-Za-z0-9]+)")
def balance_transaction_retrieve(ctx: RequestContext, params: dict[str, Any], txn_id: str) -> dict[str, Any]:
    reject_unknown(params, ())
    return ctx.store.get(txn_id, kind="balance_transaction", owner=ctx.account)


# --- payouts of connected accounts -----------------------------------------------------------------------


@_route("GET", "/v1/payouts/(?P<payout_id>po_[A-Za-z0-9]+)")
def payout_retrieve(ctx: RequestContext, params: dict[str, Any], payout_id: str) -> dict[str, Any]:
    reject_unknown(params, ())
    return ctx.store.get(payout_id, kind="payout", owner=ctx.account)


@_route("GET", "/v1/payouts")
def payout_list(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    reject_unknown(params, {"limit", "starting_after", "ending_before", "created", "status", "destination",
                            "arrival_date"})
    items = ctx.store.find("payout", owner=ctx.account)
    if (status := get_str(params, "status")) is not None:
        items = [p for p in items if p["status"] == status]
    return _page(ctx, items, params, "/v1/payouts")


# --- webhook endpoints and events ------------------------------------------------------------------------


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
