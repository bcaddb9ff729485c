"""The one module that talks to Stripe, through the official SDK (``stripe.StripeClient``).

- The API version is pinned (``STRIPE_API_VERSION``) and the addresses come from settings, so the same code
  runs against api.stripe.com and against the fake server of tests and the demo.
- Every mutating call carries an idempotency key derived from our own row id (``transfer:<payout id>``), so
  a retry, a crashed worker or a double click can never move money twice.
- 429s, 5xx answers and network errors are retried with exponential backoff and full jitter, with the SAME
  idempotency key, honouring ``Retry-After`` and ``Stripe-Should-Retry``; the SDK's own retries are off so
  there is exactly one retry policy.
- Stripe saying no (a decline, insufficient funds, a destination that cannot receive transfers) comes back
  as a typed ``StripeFailure`` carrying Stripe's message and code, and is never retried blindly.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import stripe
from django.conf import settings

logger = logging.getLogger(__name__)

T = TypeVar("T")

BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 20.0
# A 429 says "not now", never "no": with the default policy, rate-limited requests have their own, longer
# budget of retries with short jittered waits, so a run driving Stripe at its limit loses no payout to it.
RATE_LIMIT_RETRIES = 40
RATE_LIMIT_BACKOFF_BASE_SECONDS = 0.25
RATE_LIMIT_BACKOFF_CAP_SECONDS = 2.0
CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 30.0
WEBHOOK_TOLERANCE_SECONDS = 300  # Stripe's default: older signatures are refused (replay protection)

# Our seam for tests: the retry loop sleeps through this, so a test can record the delays instead of waiting.
_sleep: Callable[[float], None] = time.sleep


# --- typed failures --------------------------------------------------------------------------------------


class StripeFailure(Exception):
    """Stripe refused or could not complete a call. Carries Stripe's own message and code."""

    def __init__(self, message: str, *, operation: str, code: str | None = None, http_status: int | None = None,
                 param: str | None = None, decline_code: str | None = None, request_id: str | None = None,
                 idempotency_key: str | None = None):
        super().__init__(message)
        self.message = message
        self.operation = operation
        self.code = code
        self.http_status = http_status
        self.param = param
        self.decline_code = decline_code
        self.request_id = request_id
        self.idempotency_key = idempotency_key

    def __str__(self) -> str:
        code = f" [{self.code}]" if self.code else ""
        return f"{self.operation}: {self.message}{code}"


class TransferDeclined(StripeFailure):
    """Stripe (or the destination's bank) declined the money movement."""


class InsufficientFunds(StripeFailure):
    """The platform's available balance cannot cover the transfer (Stripe's ``balance_insufficient``)."""


class AccountNotReady(StripeFailure):
    """The destination account cannot receive transfers yet (its ``transfers`` capability is not active)."""


class IdempotencyConflict(StripeFailure):
    """The idempotency key was already used with other parameters: a bug of ours, never retried."""


class ResourceMissing(StripeFailure):
    """The object does not exist on Stripe (or not for this account)."""


class InvalidRequest(StripeFailure):
    """Stripe rejected the request's parameters."""


class StripeConfigurationError(StripeFailure):
    """The API key is wrong or lacks access: nothing a retry can fix."""


class StripeUnavailable(StripeFailure):
    """Rate limits, server errors or the network outlasted our retries; the call may be repeated later with
    the same idempotency key."""


class WebhookSignatureInvalid(Exception):
    """A webhook's ``Stripe-Signature`` does not verify (forged, tampered, stale or missing)."""


_DECLINE_CODES = {"transfers_not_allowed", "card_declined", "account_closed"}
_NOT_READY_CODES = {"insufficient_capabilities_for_transfer", "account_invalid"}


# --- the client ------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _client_for(api_key: str, api_base: str, connect_base: str, api_version: str) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key,
        stripe_version=api_version,
        base_addresses={"api": api_base, "connect": connect_base},
        max_network_retries=0,  # one retry policy only: ours, below
        http_client=stripe.RequestsClient(timeout=(CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS)),
    )


def get_client() -> stripe.StripeClient:
    """The SDK client for the current settings (cached; tests that move the base address get a new one)."""
    return _client_for(settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE.rstrip("/"),
                       settings.STRIPE_CONNECT_BASE.rstrip("/"), settings.STRIPE_API_VERSION)


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


def _is_retryable(exc: stripe.StripeError) -> bool:
    if isinstance(exc, stripe.APIConnectionError):
        return True
    should_retry = _header(exc.headers, "Stripe-Should-Retry")
    if should_retry is not None:
        return should_retry.lower() == "true"
    if isinstance(exc, stripe.RateLimitError):
        return True
    status = exc.http_status or 0
    return status == 409 or status >= 500


def _is_rate_limited(exc: stripe.StripeError) -> bool:
    return isinstance(exc, stripe.RateLimitError) or exc.http_status == 429


def _backoff_delay(attempt: int, exc: stripe.StripeError, *, base: float = BACKOFF_BASE_SECONDS,
                   cap: float = BACKOFF_CAP_SECONDS) -> float:
    """Full jitter (a random delay up to an exponentially growing cap) so many workers retrying at once
    spread out instead of hitting Stripe in lockstep; never sooner than Stripe's ``Retry-After``."""
    delay = random.uniform(0, min(cap, base * 2**attempt))
    retry_after = _header(exc.headers, "Retry-After")
    if retry_after:
        # An HTTP date (rare from Stripe) does not parse as seconds: the jittered delay then stands.
        with contextlib.suppress(ValueError):
            delay = max(delay, min(float(retry_after), BACKOFF_CAP_SECONDS))
    return delay


def _typed(exc: stripe.StripeError, *, operation: str, idempotency_key: str | None, exhausted: bool) -> StripeFailure:
    error = getattr(exc, "error", None)
    fields = {
        "operation": operation,
        "code": exc.code or getattr(error, "code", None),
        "http_status": exc.http_status,
        "param": getattr(exc, "param", None) or getattr(error, "param", None),
        "decline_code": getattr(error, "decline_code", None),
        "request_id": exc.request_id,
        "idempotency_key": idempotency_key,
    }
    message = exc.user_message or str(exc) or type(exc).__name__
    if exhausted:
        return StripeUnavailable(message, **fields)
    code = fields["code"]
    if isinstance(exc, stripe.CardError) or code in _DECLINE_CODES:
        return TransferDeclined(message, **fields)
    if code == "balance_insufficient":
        return InsufficientFunds(message, **fields)
    if code in _NOT_READY_CODES:
        return AccountNotReady(message, **fields)
    if isinstance(exc, stripe.IdempotencyError):
        return IdempotencyConflict(message, **fields)
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        return StripeConfigurationError(message, **fields)
    if code == "resource_missing":
        return ResourceMissing(message, **fields)
    if isinstance(exc, stripe.InvalidRequestError):
        return InvalidRequest(message, **fields)
    return StripeFailure(message, **fields)


def _call(operation: str, fn: Callable[[stripe.StripeClient, dict[str, Any]], T], *,
          idempotency_key: str | None = None, account_id: str | None = None, max_retries: int | None = None) -> T:
    """Run ``fn(client, request_options)``, retrying what may pass with the same idempotency key."""
    options: dict[str, Any] = {}
    if idempotency_key:
        options["idempotency_key"] = idempotency_key
    if account_id:
        options["stripe_account"] = account_id
    retries = settings.STRIPE_MAX_RETRIES if max_retries is None else max_retries
    # An explicit max_retries (a caller that must release its worker quickly) bounds 429s too.
    rate_limit_retries = RATE_LIMIT_RETRIES if max_retries is None else max_retries
    client = get_client()
    attempt = 0
    limited = 0
    while True:
        try:
            result = fn(client, options)
        except stripe.StripeError as exc:
            retryable = _is_retryable(exc)
            rate_limited = retryable and _is_rate_limited(exc)
            left = limited < rate_limit_retries if rate_limited else attempt < retries
            if not retryable or not left:
                failure = _typed(exc, operation=operation, idempotency_key=idempotency_key, exhausted=retryable)
                logger.warning("stripe %s failed after %d attempt(s): %s (key=%s request=%s)", operation,
                               attempt + limited + 1, failure, idempotency_key, failure.request_id)
                raise failure from exc
            if rate_limited:
                delay = _backoff_delay(limited, exc, base=RATE_LIMIT_BACKOFF_BASE_SECONDS,
                                       cap=RATE_LIMIT_BACKOFF_CAP_SECONDS)
                limited += 1
            else:
                delay = _backoff_delay(attempt, exc)
                attempt += 1
            logger.info("stripe %s: %s (HTTP %s); retry %d in %.2fs with key %s", operation,
                        type(exc).__name__, exc.http_status, attempt + limited, delay, idempotency_key)
            _sleep(delay)
            continue
        response = getattr(result, "last_response", None)
        logger.info("stripe %s ok (key=%s request=%s replayed=%s attempts=%d)", operation, idempotency_key,
                    getattr(response, "request_id", None),
                    _header(getattr(response, "headers", None), "Idempotent-Replayed") or "false",
                    attempt + limited + 1)
        return result


# --- idempotency keys ------------------------------------------------------------------------------------


def idempotency_key(kind: str, *parts: object) -> str:
    """``kind:part:part``, from our own row ids; Stripe allows up to 255 characters."""
    key = ":".join([kind, *(str(p) for p in parts)])
    if len(key) > 255:
        raise ValueError(f"idempotency key too long ({len(key)} > 255): {key[:40]}...")
    return key


# --- Connect accounts ------------------------------------------------------------------------------------


def account_create(*, contributor_id: int, country: str = "", metadata: Mapping[str, str] | None = None
                   ) -> stripe.Account:
    """Create the contributor's Express account (Stripe-hosted onboarding, transfers capability).

    The key is the contributor's id: a second click, a retry or a crashed request all get the same account.
    """
    # `controller` is how the current API spells an Express account (`type="express"` is deprecated):
    # Stripe collects the requirements and owns the dashboard; the platform pays fees and bears losses.
    params: dict[str, Any] = {
        "controller": {
            "stripe_dashboard": {"type": "express"},
            "fees": {"payer": "application"},
            "losses": {"payments": "application"},
            "requirement_collection": "stripe",
        },
        "capabilities": {"transfers": {"requested": True}},
        # No business_type: contributors include estates and collectives, so Stripe's form asks.
        "metadata": {"contributor_id": str(contributor_id), **(metadata or {})},
    }
    if country:
        params["country"] = country.upper()
    return _call("account.create", lambda c, o: c.v1.accounts.create(params=params, options=o),
                 idempotency_key=idempotency_key("account-create", contributor_id))


def account_retrieve(*, account_id: str, max_retries: int | None = None) -> stripe.Account:
    return _call("account.retrieve", lambda c, o: c.v1.accounts.retrieve(account_id, options=o),
                 max_retries=max_retries)


def account_link_create(*, account_id: str, refresh_url: str, return_url: str, key: str) -> stripe.AccountLink:
    """A single-use, short-lived onboarding link. ``key`` makes a retry of this call return the same link;
    a later call (the refresh URL) passes a new key and gets a fresh link."""
    params = {"account": account_id, "refresh_url": refresh_url, "return_url": return_url,
              "type": "account_onboarding",
              # Everything Stripe will eventually need, up front: fewer trips back to Stripe later.
              "collection_options": {"fields": "eventually_due"}}
    return _call("account_link.create", lambda c, o: c.v1.account_links.create(params=params, options=o),
                 idempotency_key=key)


# --- transfers -------------------------------------------------------------------------------------------

_CURRENCY = re.compile(r"^[A-Za-z]{3}$")


def transfer_create(*, payout_id: int, amount_minor: int, currency: str, destination: str, transfer_group: str,
                    metadata: Mapping[str, Any] | None = None, description: str | None = None,
                    attempt: int | None = None) -> stripe.Transfer:
    """Send ``amount_minor`` to ``destination``. Key ``transfer:<payout_id>``: however often this is called
    for a payout (retries, a dropped connection, a re-run worker) Stripe makes at most one transfer.

    Stripe keeps a declined or short-balance answer under its key for 24 hours; a deliberate new attempt
    for the same payout after such a failure passes ``attempt`` (``transfer:<payout_id>:<attempt>``).
    """
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
        raise ValueError(f"amount_minor must be a positive integer of minor units, got {amount_minor!r}")
    if not _CURRENCY.match(currency or ""):
        raise ValueError(f"currency must be a three-letter ISO code, got {currency!r}")
    if not destination.startswith("acct_"):
        raise ValueError(f"destination must be a connected account id (acct_...), got {destination!r}")
    if not transfer_group:
        raise ValueError("transfer_group is required: it ties the transfer to its payout run")
    params: dict[str, Any] = {
        "amount": amount_minor,
        "currency": currency.lower(),
        "destination": destination,
        "transfer_group": transfer_group,
        "metadata": {"payout_id": str(payout_id), **{str(k): str(v) for k, v in (metadata or {}).items()}},
    }
    if description:
        params["description"] = description
    key = idempotency_key("transfer", payout_id) if attempt is None else idempotency_key("transfer", payout_id,
                                                                                          attempt)
    return _call("transfer.create", lambda c, o: c.v1.transfers.create(params=params, options=o),
                 idempotency_key=key)


def transfer_retrieve(*, transfer_id: str, max_retries: int | None = None) -> stripe.Transfer:
    return _call("transfer.retrieve", lambda c, o: c.v1.transfers.retrieve(transfer_id, options=o),
                 max_retries=max_retries)


def transfer_list(*, transfer_group: str | None = None, destination: str | None = None,
                  page_size: int = 100) -> Iterator[stripe.Transfer]:
    """Every transfer matching the filters, newest first, page by page (each page with our retries)."""
    params: dict[str, Any] = {"limit": page_size}
    if transfer_group:
        params["transfer_group"] = transfer_group
    if destination:
        params["destination"] = destination
    yield from _paginate("transfer.list", lambda c, o, p: c.v1.transfers.list(params=p, options=o), params)


def transfer_reversal_list(*, transfer_id: str, page_size: int = 100,
                           max_retries: int | None = None) -> Iterator[stripe.TransferReversal]:
    """Every reversal of a transfer, newest first (a transfer object lists only the first ten inline)."""
    params: dict[str, Any] = {"limit": page_size}
    yield from _paginate("transfer_reversal.list",
                         lambda c, o, p: c.v1.transfers.reversals.list(transfer_id, params=p, options=o), params,
                         max_retries=max_retries)


def transfer_reversal_create(*, transfer_id: str, key: str, amount_minor: int | None = None,
                             metadata: Mapping[str, Any] | None = None) -> stripe.TransferReversal:
    """Reverse a transfer (all of it, or ``amount_minor``). ``key`` comes from our row that asks for it."""
    params: dict[str, Any] = {}
    if amount_minor is not None:
        if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
            raise ValueError(f"amount_minor must be a positive integer of minor units, got {amount_minor!r}")
        params["amount"] = amount_minor
    if metadata:
        params["metadata"] = {str(k): str(v) for k, v in metadata.items()}
    return _call("transfer_reversal.create",
                 lambda c, o: c.v1.transfers.reversals.create(transfer_id, params=params, options=o),
                 idempotency_key=key)


# --- balance, payouts, events ----------------------------------------------------------------------------


def balance_retrieve(*, account_id: str | None = None) -> stripe.Balance:
    """The platform's balance, or a connected account's with ``account_id``."""
    return _call("balance.retrieve", lambda c, o: c.v1.balance.retrieve(options=o), account_id=account_id)


def balance_transaction_list(*, source: str | None = None, type: str | None = None,
                             payout: str | None = None, account_id: str | None = None, expand_source: bool = False,
                             created_gte: int | None = None, created_lte: int | None = None,
                             page_size: int = 100) -> Iterator[stripe.BalanceTransaction]:
    """Balance transactions, filtered as Stripe allows; ``expand_source`` inlines each source object (a
    transfer's ``transfer_group`` is then at ``txn.source.transfer_group``); ``created_gte``/``created_lte``
    (Unix seconds) bound the window, so a reconciliation reads one run's days, not the whole history."""
    params: dict[str, Any] = {"limit": page_size}
    for name, value in (("source", source), ("type", type), ("payout", payout)):
        if value:
            params[name] = value
    created = {op: value for op, value in (("gte", created_gte), ("lte", created_lte)) if value is not None}
    if created:
        params["created"] = created
    if expand_source:
        params["expand"] = ["data.source"]
    yield from _paginate("balance_transaction.list",
                         lambda c, o, p: c.v1.balance_transactions.list(params=p, options=o), params,
                         account_id=account_id)


def payout_retrieve(*, payout_id: str, account_id: str, max_retries: int | None = None) -> stripe.Payout:
    """A connected account's payout to its bank."""
    return _call("payout.retrieve", lambda c, o: c.v1.payouts.retrieve(payout_id, options=o),
                 account_id=account_id, max_retries=max_retries)


def event_retrieve(*, event_id: str, account_id: str | None = None) -> stripe.Event:
    return _call("event.retrieve", lambda c, o: c.v1.events.retrieve(event_id, options=o), account_id=account_id)


def webhook_endpoint_create(*, url: str, enabled_events: list[str], connect: bool, key: str,
                            metadata: Mapping[str, str] | None = None) -> stripe.WebhookEndpoint:
    """Register a webhook endpoint; the answer's ``secret`` (shown only here) verifies its deliveries."""
    params: dict[str, Any] = {"url": url, "enabled_events": enabled_events, "connect": connect,
                              "api_version": settings.STRIPE_API_VERSION}
    if metadata:
        params["metadata"] = dict(metadata)
    return _call("webhook_endpoint.create", lambda c, o: c.v1.webhook_endpoints.create(params=params, options=o),
                 idempotency_key=key)


def _paginate(operation: str, fetch: Callable[[stripe.StripeClient, dict[str, Any], dict[str, Any]], Any],
              params: dict[str, Any], *, account_id: str | None = None,
              max_retries: int | None = None) -> Iterator[Any]:
    cursor: str | None = None
    while True:
        page_params = {**params, **({"starting_after": cursor} if cursor else {})}
        page = _call(operation, lambda c, o, p=page_params: fetch(c, o, p), account_id=account_id,
                     max_retries=max_retries)
        yield from page.data
        if not page.has_more or not page.data:
            return
        cursor = page.data[-1].id


# --- webhooks --------------------------------------------------------------------------------------------


def webhook_secrets() -> list[str]:
    """The endpoint secrets to accept. Several, comma-separated: a Connect endpoint and a platform endpoint
    each have their own secret, and a rotated secret overlaps with the old one for a while."""
    return [s.strip() for s in settings.STRIPE_WEBHOOK_SECRET.split(",") if s.strip()]


def webhook_verify(*, payload: bytes, signature_header: str | None,
                   tolerance: int = WEBHOOK_TOLERANCE_SECONDS) -> None:
    """Check ``Stripe-Signature`` over the raw body with the SDK's verifier; raise WebhookSignatureInvalid."""
    if not signature_header:
        raise WebhookSignatureInvalid("missing Stripe-Signature header")
    text = payload.decode("utf-8")
    last_error: Exception | None = None
    for secret in webhook_secrets():
        try:
            stripe.WebhookSignature.verify_header(text, signature_header, secret, tolerance)
            return
        except stripe.SignatureVerificationError as exc:
            last_error = exc
    raise WebhookSignatureInvalid(str(last_error) if last_error else "no webhook secret configured")
