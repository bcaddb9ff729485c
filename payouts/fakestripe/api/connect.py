"""Connect: connected accounts and their onboarding links."""

from __future__ import annotations

import copy
import re
import secrets
from typing import Any

from payouts.fakestripe import objects
from payouts.fakestripe.api._routing import _page, _platform_only, _route
from payouts.fakestripe.errors import invalid_param, missing_param
from payouts.fakestripe.params import (
    get_bool,
    get_currency,
    get_hash,
    get_metadata,
    get_str,
    reject_unknown,
    require_str,
    require_url,
)
from payouts.fakestripe.store import RequestContext

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
    previous = objects.previous_attributes(before, account)
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
