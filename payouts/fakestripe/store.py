"""The fake's state and behaviour without HTTP: objects, idempotency, faults, rate limits, events.

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
from payouts.fakestripe.faults import FAULT_DEFAULT_TARGET, FAULT_KINDS, Fault, TokenBucket, rate_limited
from payouts.fakestripe.forms import FormError, decode_form
from payouts.fakestripe.simulations import Simulations
from payouts.fakestripe.webhooks import WebhookDeliverer

logger = logging.getLogger(__name__)

DEFAULT_API_VERSION = "2026-10-28.endive"
DEFAULT_PLATFORM_BALANCE = {"usd": 1_000_000_000_00}  # a billion dollars in cents: large, and configurable
_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$")


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without answering


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


class FakeStripe(Simulations):
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
        default_method, default_path = FAULT_DEFAULT_TARGET.get(kind, (None, None))
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

    def _handle_locked(self, method: str, path: str, query: str, body: bytes, headers: dict[str, str],
                       request_id: str, key: str | None, base_headers: dict[str, str],
                       log: dict[str, Any]) -> Response:
        from payouts.fakestripe.api import route

        account = headers.get("stripe-account") or None
        try:
            self._check_auth(headers.get("authorization", ""))
            version = headers.get("stripe-version")
            if version and not _VERSION.match(version):
                raise FakeStripeError(400, f"Invalid Stripe API version: {version}", code="api_version_invalid")
            if self.bucket is not None and (wait := self.bucket.take()) is not None:
                raise rate_limited(retry_after=None, wait=wait)
            fault = self._take_fault(method, path, phase="before")
            if fault is not None:
                if fault.kind == "drop_before":
                    return Response(0, b"", drop=True)
                if fault.kind == "rate_limit":
                    raise rate_limited(retry_after=fault.retry_after, wait=None)
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
