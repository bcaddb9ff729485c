"""Money: transfers and their reversals, balances, balance transactions, connected accounts' payouts."""

from __future__ import annotations

import copy
from typing import Any

from payouts.fakestripe import objects
from payouts.fakestripe.api._routing import _page, _platform_only, _route
from payouts.fakestripe.errors import FakeStripeError, invalid_param, no_such
from payouts.fakestripe.params import (
    get_bool,
    get_currency,
    get_int,
    get_metadata,
    get_str,
    reject_unknown,
    require_currency,
    require_int,
    require_str,
)
from payouts.fakestripe.store import RequestContext


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
