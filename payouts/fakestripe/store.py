"""The fake's state and behaviour without HTTP: idempotency, faults, rate limits, events, simulations.

Everything happens under one lock, so a request is atomic with respect to every other (a second request
with an idempotency key that is still executing waits for the first and then gets its stored answer).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import os
import re
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from payouts.fakestripe import objects
from payouts.fakestripe.errors import FakeStripeError, no_such
from payouts.fakestripe.forms import FormError, decode_form
from payouts.fakestripe.webhooks import WebhookDeliverer

logger = logging.getLogger(__name__)

DEFAULT_API_VERSION = "2026-10-28.endive"
DEFAULT_PLATFORM_BALANCE = {"usd": 1_000_000_000_00}  # ten billion dollars: "configurable, default large"
_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$")

# Faults the test-control API can arm. "Before" faults answer without executing; "execution" faults make a
# started request fail (Stripe keeps that result under the idempotency key); drop_after executes, stores the
# answer, then closes the connection without sending it.
FAULT_KINDS = {
    "rate_limit": "before",
    "server_error": "before",
    "drop_before": "before",
    "decline": "execution",
    "insufficient_funds": "execution",
    "drop_after": "after",
}
_FAULT_DEFAULT_TARGET = {
    "decline": ("POST", "/v1/transfers"),
    "insufficient_funds": ("POST", "/v1/transfers"),
    "drop_after": ("POST", "/v1/transfers"),
}


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without answering


@dataclass
class Fault:
    kind: str
    remaining: int
    method: str | None = None
    path: str | None = None
    status: int | None = None
    code: str | None = None
    message: str | None = None
    retry_after: float | None = None

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (self.path is None or self.path == path)


class TokenBucket:
    """``rate`` requests per second on average, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: int):
        self.rate = rate
        self.burst = max(1, burst)
        self.tokens = float(self.burst)
        self.updated = time.monotonic()

    def take(self) -> float | None:
        """None when the request may go; else the seconds until a token is free."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return None
        return (1 - self.tokens) / self.rate


@dataclass
class RequestContext:
    store: FakeStripe
    method: str
    path: str
    request_id: str
    idempotency_key: str | None
    account: str | None
    now: int
    started: bool = False

    def begin(self) -> None:
        """Validation is over and the request starts executing: from here on its result is kept under its
        idempotency key, and execution faults (decline, insufficient funds) strike."""
        self.started = True
        fault = self.store._take_fault(self.method, self.path, phase="execution")
        if fault is None:
            return
        if fault.kind == "insufficient_funds":
            raise FakeStripeError(
                fault.status or 400,
                fault.message or "You have insufficient available funds in your Stripe account.",
                code=fault.code or "balance_insufficient", store=True,
            )
        raise FakeStripeError(
            fault.status or 402,
            fault.message or "The transfer was declined by the destination account's bank.",
            type="card_error" if (fault.status or 402) == 402 else "invalid_request_error",
            code=fault.code or "transfers_not_allowed", decline_code="generic_decline", store=True,
        )


class FakeStripe:
    """A stateful, in-memory Stripe (Connect, transfers, balance, webhooks), optionally saved to a JSON file."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        webhook_secret: str | None = None,
        public_url: str = "http://127.0.0.1:12111",
        platform_balance: dict[str, int] | None = None,
        state_path: str | Path | None = None,
        api_version: str = DEFAULT_API_VERSION,
        webhook_retry_delays: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 4.0),
        link_ttl_seconds: int = 300,
        idempotency_ttl_seconds: int = 24 * 3600,
    ):
        self.lock = threading.RLock()
        self.api_key = api_key
        # With a fixed secret every webhook endpoint signs with it (so an operator can configure it up front);
        # without one each endpoint gets its own random whsec_..., as on Stripe.
        self.webhook_secret = webhook_secret
        self.public_url = public_url.rstrip("/")
        self.initial_balance = dict(platform_balance or DEFAULT_PLATFORM_BALANCE)
        self.state_path = Path(state_path) if state_path else None
        self.api_version = api_version
        self.link_ttl_seconds = link_ttl_seconds
        self.idempotency_ttl_seconds = idempotency_ttl_seconds
        self.faults: list[Fault] = []
        self.bucket: TokenBucket | None = None
        self.request_log: list[dict[str, Any]] = []
        self.delivery_log: list[dict[str, Any]] = []
        self.deliverer = WebhookDeliverer(build=self._delivery_build, done=self._delivery_done,
                                          retry_delays=webhook_retry_delays)
        self.state: dict[str, Any] = {}
        if self.state_path and self.state_path.exists():
            self.reset(save=False)
            self.state.update(json.loads(self.state_path.read_text()))  # keys newer than the file stay fresh
        else:
            self.reset()

    # --- state -------------------------------------------------------------------------------------------

    def reset(self, *, platform_balance: dict[str, int] | None = None, save: bool = True) -> None:
        """Forget everything: objects, keys, faults, rate limit, logs, queued webhooks."""
        self.deliverer.clear()
        with self.lock:
            balance = dict(platform_balance or self.initial_balance)
            self.state = {
                "objects": {},
                "owners": {},  # object id -> connected account id that owns it (absent: the platform)
                "seq": {},
                "next_seq": 0,
                "balances": {"platform": {cur.lower(): {"available": amt, "pending": 0}
                                          for cur, amt in balance.items()}},
                "links": {},
                "sessions": {},
                "idempotency": {},
                "endpoint_secrets": {},
                "endpoint_connect": {},
            }
            self.faults = []
            self.bucket = None
            self.request_log = []
            self.delivery_log = []
            if save:
                self._save()

    def close(self) -> None:
        self.deliverer.stop()

    def _save(self) -> None:
        if not self.state_path:
            return
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename: a crash mid-write never leaves half a state file behind.
        fd, tmp = tempfile.mkstemp(dir=self.state_path.parent, prefix=".fakestripe-")
        with os.fdopen(fd, "w") as fh:
            json.dump(self.state, fh)
        os.replace(tmp, self.state_path)

    def put(self, obj: dict[str, Any], *, owner: str | None = None) -> dict[str, Any]:
        state = self.state
        if obj["id"] not in state["seq"]:
            state["seq"][obj["id"]] = state["next_seq"]
            state["next_seq"] += 1
        state["objects"][obj["id"]] = obj
        if owner:
            state["owners"][obj["id"]] = owner
        return obj

    def get(self, object_id: str, *, kind: str, owner: str | None = None, param: str = "id") -> dict[str, Any]:
        obj = self.state["objects"].get(object_id)
        if obj is None or obj.get("object") != kind or self.state["owners"].get(object_id) != owner:
            raise no_such(kind, object_id, param=param)
        return obj

    def find(self, kind: str, *, owner: str | None = None) -> list[dict[str, Any]]:
        """Objects of ``kind`` visible to ``owner``, newest first (Stripe's list order)."""
        state = self.state
        found = [o for oid, o in state["objects"].items()
                 if o.get("object") == kind and state["owners"].get(oid) == owner]
        found.sort(key=lambda o: state["seq"][o["id"]], reverse=True)
        return found

    def balance_of(self, owner: str | None, currency: str) -> dict[str, int]:
        balances = self.state["balances"].setdefault(owner or "platform", {})
        return balances.setdefault(currency, {"available": 0, "pending": 0})

    # --- events ------------------------------------------------------------------------------------------

    def emit(self, event_type: str, obj: dict[str, Any], *, account: str | None = None,
             previous: dict[str, Any] | None = None, ctx: RequestContext | None = None) -> dict[str, Any]:
        """Record an event (a snapshot of ``obj`` now) and queue its delivery to every matching endpoint."""
        data: dict[str, Any] = {"object": copy.deepcopy(obj)}
        if previous:
            data["previous_attributes"] = previous
        event: dict[str, Any] = {
            "id": objects.new_id("evt"),
            "object": "event",
            "api_version": self.api_version,
            "created": int(time.time()),
            "data": data,
            "livemode": False,
            "pending_webhooks": 0,
            "request": {"id": ctx.request_id if ctx else None,
                        "idempotency_key": ctx.idempotency_key if ctx else None},
            "type": event_type,
        }
        if account:
            event["account"] = account
        targets = self._endpoints_for(event_type, account)
        event["pending_webhooks"] = len(targets)
        self.put(event, owner=account)
        for endpoint in targets:
            self.deliverer.enqueue(event["id"], endpoint["id"])
        return event

    def _endpoints_for(self, event_type: str, account: str | None) -> list[dict[str, Any]]:
        """Enabled endpoints subscribed to ``event_type``: Connect endpoints get connected accounts' events,
        the others the platform's own (Stripe keeps the flag internally: the object does not show it)."""
        connect_flags = self.state["endpoint_connect"]
        return [ep for ep in self.find("webhook_endpoint")
                if ep["status"] == "enabled" and connect_flags.get(ep["id"], False) == bool(account)
                and ("*" in ep["enabled_events"] or event_type in ep["enabled_events"])]

    def redeliver(self, event_id: str) -> int:
        """Send an event again to every matching endpoint (Stripe's "Resend"); returns how many."""
        with self.lock:
            event = self.state["objects"].get(event_id)
            if event is None or event.get("object") != "event":
                raise no_such("event", event_id)
            targets = self._endpoints_for(event["type"], event.get("account"))
        for endpoint in targets:
            self.deliverer.enqueue(event_id, endpoint["id"])
        return len(targets)

    def _delivery_build(self, event_id: str, endpoint_id: str) -> tuple[str, bytes, str] | None:
        with self.lock:
            event = self.state["objects"].get(event_id)
            endpoint = self.state["objects"].get(endpoint_id)
            if event is None or endpoint is None or endpoint.get("status") != "enabled":
                return None
            rendered = dict(event, api_version=endpoint.get("api_version") or event["api_version"])
            body = json.dumps(rendered, indent=2).encode("utf-8")
            return endpoint["url"], body, self.state["endpoint_secrets"][endpoint_id]

    def _delivery_done(self, record: dict[str, Any]) -> None:
        with self.lock:
            self.delivery_log.append(record)
            event = self.state["objects"].get(record["event"])
            if event is not None and record["ok"]:
                event["pending_webhooks"] = max(0, event["pending_webhooks"] - 1)
        if not record["ok"]:
            logger.info("fakestripe: delivery of %s to %s failed (%s %s)", record["event"], record["url"],
                        record["status"], record["error"][:200])

    def endpoint_secret(self) -> str:
        return self.webhook_secret or f"whsec_{secrets.token_hex(24)}"

    # --- faults and rate limits --------------------------------------------------------------------------

    def add_fault(self, kind: str, *, count: int = 1, method: str | None = None, path: str | None = None,
                  status: int | None = None, code: str | None = None, message: str | None = None,
                  retry_after: float | None = None) -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; choose one of {', '.join(sorted(FAULT_KINDS))}")
        if count < 1:
            raise ValueError("count must be at least 1")
        default_method, default_path = _FAULT_DEFAULT_TARGET.get(kind, (None, None))
        fault = Fault(kind=kind, remaining=count, method=(method or default_method or "").upper() or None,
                      path=path or default_path, status=status, code=code, message=message, retry_after=retry_after)
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.lock:
            self.faults = []

    def set_rate_limit(self, requests_per_second: float | None, burst: int | None = None) -> None:
        """Limit /v1 requests to ``requests_per_second`` (None or 0: no limit) with bursts of ``burst``."""
        with self.lock:
            if not requests_per_second:
                self.bucket = None
            else:
                self.bucket = TokenBucket(requests_per_second, burst or max(1, math.ceil(requests_per_second)))

    def _take_fault(self, method: str, path: str, *, phase: str) -> Fault | None:
        for fault in self.faults:
            if FAULT_KINDS[fault.kind] == phase and fault.remaining > 0 and fault.matches(method, path):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self.faults.remove(fault)
                return fault
        return None

    # --- the API -----------------------------------------------------------------------------------------

    def handle_api(self, method: str, path: str, query: str, body: bytes, headers: dict[str, str]) -> Response:
        """Answer one /v1 request the way Stripe would (or fail it the way a fault says)."""
        method = method.upper()
        request_id = f"req_{secrets.token_hex(7)}"
        key = headers.get("idempotency-key") or None
        base_headers = {"Request-Id": request_id, "Stripe-Version": headers.get("stripe-version") or self.api_version}
        if key and method == "POST":
            base_headers["Idempotency-Key"] = key
        log: dict[str, Any] = {"method": method, "path": path, "idempotency_key": key, "request_id": request_id,
                               "account": headers.get("stripe-account"), "replayed": False, "dropped": False,
                               "at": time.time()}
        with self.lock:
            self.request_log.append(log)
            if len(self.request_log) > 10_000:
                del self.request_log[:1_000]
            response = self._handle_locked(method, path, query, body, headers, request_id, key, base_headers, log)
            log["status"] = response.status
            log["dropped"] = response.drop
            return response

    def _handle_locked(self, method, path, query, body, headers, request_id, key, base_headers, log) -> Response:
        from payouts.fakestripe.api import route

        account = headers.get("stripe-account") or None
        try:
            self._check_auth(headers.get("authorization", ""))
            version = headers.get("stripe-version")
            if version and not _VERSION.match(version):
                raise FakeStripeError(400, f"Invalid Stripe API version: {version}", code="api_version_invalid")
            if self.bucket is not None and (wait := self.bucket.take()) is not None:
                raise _rate_limited(retry_after=None, wait=wait)
            fault = self._take_fault(method, path, phase="before")
            if fault is not None:
                if fault.kind == "drop_before":
                    return Response(0, b"", drop=True)
                if fault.kind == "rate_limit":
                    raise _rate_limited(retry_after=fault.retry_after, wait=None)
                raise FakeStripeError(fault.status or 500, fault.message or "An unknown error occurred",
                                      type="api_error", code=fault.code,
                                      headers={"Stripe-Should-Retry": "true"})
            if account is not None:
                acct = self.state["objects"].get(account)
                if acct is None or acct.get("object") != "account":
                    raise FakeStripeError(
                        403, f"The provided key does not have access to account '{account}' "
                        "(or that account does not exist).", type="invalid_request_error", code="account_invalid")
            try:
                raw = body.decode("utf-8") if method == "POST" else query
                params = decode_form(raw)
            except (UnicodeDecodeError, FormError) as exc:
                raise FakeStripeError(400, str(exc), code="parameter_invalid_string",
                                      param=getattr(exc, "param", None)) from exc
        except FakeStripeError as exc:
            return self._error_response(exc, base_headers)

        if key is not None and len(key) > 255:
            return self._error_response(FakeStripeError(
                400, "Invalid idempotency key: keys must be at most 255 characters long.",
                type="idempotency_error"), base_headers)
        fingerprint = None
        if method == "POST" and key:
            fingerprint = hashlib.sha256(
                json.dumps([path, account, params], sort_keys=True).encode("utf-8")
            ).hexdigest()
            scope = f"{account or 'platform'}|{key}"
            stored = self.state["idempotency"].get(scope)
            if stored and time.time() - stored["created"] > self.idempotency_ttl_seconds:
                stored = None  # Stripe prunes keys after 24 hours; the key is then new again
            if stored:
                if stored["fingerprint"] != fingerprint:
                    return self._error_response(FakeStripeError(
                        400, "Keys for idempotent requests can only be used with the same parameters they were "
                        f"first used with. Try using a key other than '{key}' if you meant to execute a "
                        "different request.", type="idempotency_error"), base_headers)
                log["replayed"] = True
                replay_headers = {**base_headers, "Idempotent-Replayed": "true",
                                  "Original-Request": stored["request_id"]}
                return Response(stored["status"], stored["body"].encode("utf-8"), replay_headers)

        ctx = RequestContext(store=self, method=method, path=path, request_id=request_id, idempotency_key=key,
                             account=account, now=int(time.time()))
        try:
            result = route(ctx, method, path, params)
            status, payload, extra = 200, result, {}
        except FakeStripeError as exc:
            status, payload, extra = exc.status, exc.body(), exc.headers
            if not (exc.store or ctx.started):
                return self._error_response(exc, base_headers)
        encoded = json.dumps(payload, indent=2)
        if fingerprint is not None:
            self.state["idempotency"][f"{account or 'platform'}|{key}"] = {
                "fingerprint": fingerprint, "status": status, "body": encoded, "request_id": request_id,
                "created": time.time(),
            }
        if method != "GET":
            self._save()
        if self._take_fault(method, path, phase="after") is not None:
            return Response(status, b"", drop=True)
        return Response(status, encoded.encode("utf-8"), {**base_headers, **extra})

    def _check_auth(self, authorization: str) -> None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise FakeStripeError(
                401, "You did not provide an API key. You need to provide your API key in the Authorization "
                "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
                type="invalid_request_error")
        valid = token == self.api_key if self.api_key else token.startswith(("sk_test_", "rk_test_"))
        if not valid:
            masked = token[:8] + "*" * max(0, len(token) - 12) + token[-4:]
            raise FakeStripeError(401, f"Invalid API Key provided: {masked}", type="invalid_request_error")

    def _error_response(self, exc: FakeStripeError, base_headers: dict[str, str]) -> Response:
        return Response(exc.status, json.dumps(exc.body(), indent=2).encode("utf-8"), {**base_headers, **exc.headers})

    # --- simulations: what happens on Stripe's side without an API call of ours ------------------------

    def _account_change(self, account_id: str, mutate) -> dict[str, Any]:
        with self.lock:
            account = self.get(account_id, kind="account", param="account")
            before = copy.deepcopy(account)
            mutate(account)
            previous = previous_attributes(before, account)
            if previous:
                self.emit("account.updated", account, account=account_id, previous=previous)
            self._save()
            return copy.deepcopy(account)

    def complete_onboarding(self, account_id: str, *, pending_verification: bool = False) -> dict[str, Any]:
        """The contributor finished Stripe's hosted form: details submitted, a bank account on file, and the
        requested capabilities active (or pending while Stripe verifies the identity documents)."""

        def mutate(account: dict[str, Any]) -> None:
            account["details_submitted"] = True
            account["business_type"] = account["business_type"] or "individual"
            account["tos_acceptance"] = {"date": int(time.time()), "ip": "127.0.0.1", "user_agent": "fakestripe"}
            banks = account["external_accounts"]
            if not banks["data"]:
                banks["data"].append(objects.bank_account(account_id=account["id"],
                                                          currency=account["default_currency"],
                                                          country=account["country"]))
                banks["total_count"] = 1
            if pending_verification:
                account["capabilities"] = dict.fromkeys(account["capabilities"], "pending")
                account["requirements"] = objects.requirements(
                    currently_due=[], pending_verification=["individual.verification.document"],
                    disabled_reason="requirements.pending_verification", eventually_due=[])
                account["payouts_enabled"] = False
            else:
                _activate(account)

        return self._account_change(account_id, mutate)

    def activate_account(self, account_id: str) -> dict[str, Any]:
        """Stripe finished verifying (or the contributor resolved every requirement)."""
        return self._account_change(account_id, _activate)

    def restrict_account(self, account_id: str, *, disabled_reason: str = "requirements.past_due",
                         currently_due: list[str] | None = None) -> dict[str, Any]:
        """Stripe needs more information (or rejected the account): capabilities go inactive."""
        due = list(currently_due if currently_due is not None else ["individual.verification.document"])

        def mutate(account: dict[str, Any]) -> None:
            account["capabilities"] = dict.fromkeys(account["capabilities"], "inactive")
            account["requirements"] = objects.requirements(currently_due=due, disabled_reason=disabled_reason)
            account["payouts_enabled"] = False
            account["charges_enabled"] = False

        return self._account_change(account_id, mutate)

    def simulate_payout(self, account_id: str, *, amount: int, currency: str = "usd", outcome: str = "paid",
                        failure_code: str | None = None) -> dict[str, Any]:
        """A payout from a connected account's balance to its bank: payout.created, then payout.paid or
        payout.failed (a failed payout's funds return to the balance)."""
        if outcome not in ("paid", "failed"):
            raise ValueError("outcome must be 'paid' or 'failed'")
        if amount <= 0:
            raise ValueError("amount must be positive")
        with self.lock:
            account = self.get(account_id, kind="account", param="account")
            currency = currency.lower()
            balance = self.balance_of(account_id, currency)
            if balance["available"] < amount:
                raise FakeStripeError(400, "Insufficient funds in the connected account's balance.",
                                      code="balance_insufficient", param="amount")
            now = int(time.time())
            payout_id = objects.new_id("po")
            txn = self.put(objects.balance_transaction(amount=-amount, currency=currency, created=now,
                                                       source=payout_id, type_="payout",
                                                       reporting_category="payout"), owner=account_id)
            bank = account["external_accounts"]["data"][0]["id"] if account["external_accounts"]["data"] else None
            payout = objects.payout(payout_id=payout_id, amount=amount, currency=currency, created=now,
                                    destination=bank, status="in_transit", failure_code=None,
                                    balance_transaction_id=txn["id"])
            self.put(payout, owner=account_id)
            balance["available"] -= amount
            self.emit("payout.created", payout, account=account_id)
            if outcome == "paid":
                payout["status"] = "paid"
                self.emit("payout.paid", payout, account=account_id, previous={"status": "in_transit"})
            else:
                code = failure_code or "account_closed"
                failure_txn = self.put(objects.balance_transaction(
                    amount=amount, currency=currency, created=now, source=payout_id, type_="payout_failure",
                    reporting_category="payout_reversal"), owner=account_id)
                balance["available"] += amount
                payout.update(status="failed", failure_code=code,
                              failure_message=objects.PAYOUT_FAILURES.get(code, "The payout failed."),
                              failure_balance_transaction=failure_txn["id"])
                self.emit("payout.failed", payout, account=account_id, previous={"status": "in_transit"})
            self._save()
            return copy.deepcopy(payout)

    def set_balance(self, currency: str, amount: int) -> None:
        with self.lock:
            self.balance_of(None, currency.lower())["available"] = amount
            self._save()

    # --- Connect onboarding pages ------------------------------------------------------------------------

    def link_open(self, account_id: str, token: str) -> tuple[str, dict[str, Any]]:
        """Visiting an Account Link: ("page", details) the first time within its lifetime; otherwise
        ("redirect", refresh_url), because a link works once and expires (Stripe's rule)."""
        with self.lock:
            link = self.state["links"].get(token)
            if link is None or link["account"] != account_id:
                return "missing", {}
            if link["used"] or time.time() > link["expires_at"]:
                return "redirect", {"url": link["refresh_url"]}
            link["used"] = True
            session = secrets.token_urlsafe(16)
            self.state["sessions"][session] = {"account": account_id, "return_url": link["return_url"],
                                               "refresh_url": link["refresh_url"]}
            account = self.state["objects"][account_id]
            self._save()
            return "page", {"session": session, "account": copy.deepcopy(account),
                            "return_url": link["return_url"]}

    def link_submit(self, session: str, action: str) -> str:
        """The form on the hosted page was submitted; returns where the browser goes next."""
        with self.lock:
            info = self.state["sessions"].pop(session, None)
            self._save()
        if info is None:
            raise ValueError("this onboarding session is over; start again from the platform")
        if action == "complete":
            self.complete_onboarding(info["account"])
        elif action == "pending":
            self.complete_onboarding(info["account"], pending_verification=True)
        return info["return_url"]


def _activate(account: dict[str, Any]) -> None:
    account["capabilities"] = dict.fromkeys(account["capabilities"], "active")
    account["requirements"] = objects.requirements(currently_due=[])
    account["payouts_enabled"] = True
    account["charges_enabled"] = account["capabilities"].get("card_payments") == "active"


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


def _rate_limited(*, retry_after: float | None, wait: float | None) -> FakeStripeError:
    headers = {"Stripe-Rate-Limited-Reason": "global-rate", "Stripe-Should-Retry": "true"}
    if retry_after is not None:
        headers["Retry-After"] = f"{retry_after:g}"
    message = "Request rate limit exceeded. You can learn more about rate limits here https://stripe.com/docs/rate-limits."
    if wait is not None:
        message += f" (fake: next request possible in {wait:.3f}s)"
    return FakeStripeError(429, message, code="rate_limit", headers=headers)
