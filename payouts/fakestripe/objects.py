"""Stripe objects as the API reference shows them, built as plain dicts (the SDK turns them into its classes)."""

from __future__ import annotations

import secrets
import string
from typing import Any

_ALPHABET = string.ascii_letters + string.digits

# What Stripe asks an individual on an Express account for before it can receive transfers.
ONBOARDING_REQUIREMENTS = [
    "business_type",
    "external_account",
    "individual.address.city",
    "individual.address.line1",
    "individual.address.postal_code",
    "individual.dob.day",
    "individual.dob.month",
    "individual.dob.year",
    "individual.email",
    "individual.first_name",
    "individual.last_name",
    "individual.phone",
    "tos_acceptance.date",
    "tos_acceptance.ip",
]
KNOWN_CAPABILITIES = ("transfers", "card_payments", "crypto_transfers", "legacy_payments")

PAYOUT_FAILURES = {
    "account_closed": "The bank account has been closed.",
    "account_frozen": "The bank account has been frozen.",
    "no_account": "The bank account details on file are probably incorrect. No bank account could be located.",
    "invalid_account_number": "The bank account number failed validation.",
    "could_not_process": "The bank could not process this payout.",
}


def new_id(prefix: str) -> str:
    """Stripe-looking ids: a type prefix and 24 random characters."""
    return f"{prefix}_1{''.join(secrets.choice(_ALPHABET) for _ in range(23))}"


def empty_list(url: str) -> dict[str, Any]:
    return {"object": "list", "data": [], "has_more": False, "total_count": 0, "url": url}


def requirements(*, currently_due: list[str], past_due: list[str] | None = None,
                 pending_verification: list[str] | None = None, disabled_reason: str | None = None,
                 eventually_due: list[str] | None = None) -> dict[str, Any]:
    return {
        "alternatives": [],
        "current_deadline": None,
        "currently_due": list(currently_due),
        "disabled_reason": disabled_reason,
        "errors": [],
        "eventually_due": list(eventually_due if eventually_due is not None else currently_due),
        "past_due": list(past_due if past_due is not None else currently_due),
        "pending_verification": list(pending_verification or []),
    }


def controller_for(account_type: str | None, controller: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The account's ``type`` and ``controller``: the deprecated ``type`` maps to controller properties."""
    dashboard = (controller.get("stripe_dashboard") or {}).get("type")
    if account_type == "express" or (not account_type and dashboard == "express"):
        kind = "express"
    elif account_type == "custom" or (not account_type and dashboard == "none"):
        kind = "custom"
    elif account_type == "standard" or not controller:
        kind = "standard"
    else:
        kind = "none"
    full = {
        "fees": {"payer": (controller.get("fees") or {}).get("payer")
                 or ("account" if kind == "standard" else "application")},
        "is_controller": True,
        "losses": {"payments": (controller.get("losses") or {}).get("payments")
                   or ("stripe" if kind == "standard" else "application")},
        "requirement_collection": controller.get("requirement_collection")
        or ("application" if kind == "custom" else "stripe"),
        "stripe_dashboard": {"type": dashboard or {"express": "express", "custom": "none"}.get(kind, "full")},
        "type": "application",
    }
    return kind, full


def account(*, account_id: str, created: int, kind: str, controller: dict[str, Any], country: str,
            email: str | None, capabilities: list[str], metadata: dict[str, str], business_type: str | None,
            default_currency: str) -> dict[str, Any]:
    return {
        "id": account_id,
        "object": "account",
        "business_profile": {"mcc": None, "name": None, "product_description": None, "support_email": None,
                             "url": None},
        "business_type": business_type,
        "capabilities": dict.fromkeys(capabilities, "inactive"),
        "charges_enabled": False,
        "controller": controller,
        "country": country,
        "created": created,
        "default_currency": default_currency,
        "details_submitted": False,
        "email": email,
        "external_accounts": empty_list(f"/v1/accounts/{account_id}/external_accounts"),
        "future_requirements": requirements(currently_due=[]),
        "metadata": metadata,
        "payouts_enabled": False,
        "requirements": requirements(
            currently_due=ONBOARDING_REQUIREMENTS, disabled_reason="requirements.past_due"
        ),
        "settings": {"payouts": {"debit_negative_balances": True, "schedule": {"delay_days": 2, "interval": "daily"},
                                 "statement_descriptor": None}},
        "tos_acceptance": {"date": None, "ip": None, "user_agent": None},
        "type": kind,
    }


def bank_account(*, account_id: str, currency: str, country: str) -> dict[str, Any]:
    return {
        "id": new_id("ba"),
        "object": "bank_account",
        "account": account_id,
        "account_holder_name": None,
        "account_holder_type": "individual",
        "bank_name": "STRIPE TEST BANK",
        "country": country,
        "currency": currency,
        "default_for_currency": True,
        "fingerprint": secrets.token_hex(8),
        "last4": "6789",
        "metadata": {},
        "routing_number": "110000000",
        "status": "new",
    }


def balance_transaction(*, amount: int, currency: str, created: int, source: str, type_: str,
                        reporting_category: str, description: str | None = None) -> dict[str, Any]:
    return {
        "id": new_id("txn"),
        "object": "balance_transaction",
        "amount": amount,
        "available_on": created,
        "balance_type": "payments",
        "created": created,
        "currency": currency,
        "description": description,
        "exchange_rate": None,
        "fee": 0,
        "fee_details": [],
        "net": amount,
        "reporting_category": reporting_category,
        "source": source,
        "status": "available",
        "type": type_,
    }


def transfer(*, transfer_id: str, amount: int, currency: str, created: int, destination: str,
             destination_payment: str, balance_transaction_id: str, description: str | None,
             metadata: dict[str, str], transfer_group: str | None) -> dict[str, Any]:
    return {
        "id": transfer_id,
        "object": "transfer",
        "amount": amount,
        "amount_reversed": 0,
        "balance_transaction": balance_transaction_id,
        "created": created,
        "currency": currency,
        "description": description,
        "destination": destination,
        "destination_payment": destination_payment,
        "livemode": False,
        "metadata": metadata,
        "reversals": empty_list(f"/v1/transfers/{transfer_id}/reversals"),
        "reversed": False,
        "source_transaction": None,
        "source_type": "card",
        "transfer_group": transfer_group,
    }


def transfer_reversal(*, amount: int, currency: str, created: int, transfer_id: str, balance_transaction_id: str,
                      metadata: dict[str, str], reversal_id: str) -> dict[str, Any]:
    return {
        "id": reversal_id,
        "object": "transfer_reversal",
        "amount": amount,
        "balance_transaction": balance_transaction_id,
        "created": created,
        "currency": currency,
        "destination_payment_refund": new_id("pyr"),
        "metadata": metadata,
        "source_refund": None,
        "transfer": transfer_id,
    }


def payout(*, payout_id: str, amount: int, currency: str, created: int, destination: str | None, status: str,
           failure_code: str | None, balance_transaction_id: str) -> dict[str, Any]:
    return {
        "id": payout_id,
        "object": "payout",
        "amount": amount,
        "application_fee": None,
        "application_fee_amount": None,
        "arrival_date": created + 2 * 86400,
        "automatic": True,
        "balance_transaction": balance_transaction_id,
        "created": created,
        "currency": currency,
        "description": "STRIPE PAYOUT",
        "destination": destination,
        "failure_balance_transaction": None,
        "failure_code": failure_code,
        "failure_message": PAYOUT_FAILURES.get(failure_code or "") if failure_code else None,
        "livemode": False,
        "metadata": {},
        "method": "standard",
        "original_payout": None,
        "reconciliation_status": "completed" if status == "paid" else "not_applicable",
        "reversed_by": None,
        "source_type": "card",
        "statement_descriptor": None,
        "status": status,
        "type": "bank_account",
    }


def webhook_endpoint(*, endpoint_id: str, created: int, url: str, enabled_events: list[str],
                     api_version: str | None, description: str | None, metadata: dict[str, str]) -> dict[str, Any]:
    return {
        "id": endpoint_id,
        "object": "webhook_endpoint",
        "api_version": api_version,
        "application": None,
        "created": created,
        "description": description,
        "enabled_events": enabled_events,
        "livemode": False,
        "metadata": metadata,
        "status": "enabled",
        "url": url,
    }


def previous_attributes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Stripe's ``previous_attributes``: the old values of whatever changed (nested hashes recursively)."""
    previous: dict[str, Any] = {}
    for key, old in before.items():
        new = after.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict) and old.get("object") != "list":
            previous[key] = previous_attributes(old, new) or old
        else:
            previous[key] = old
    return previous
