"""Signed webhook delivery, with the signature scheme Stripe documents (so ``stripe.Webhook`` accepts it).

``Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" keyed with the endpoint secret>``.
Deliveries run in one background thread; a non-2xx answer or a network error is retried after the next delay
in ``retry_delays`` (Stripe retries for days; the fake for seconds, so tests can watch it happen).
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"


def sign_payload(payload: bytes | str, secret: str, *, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header value for ``payload`` signed with ``secret`` at ``timestamp``."""
    body = payload.encode("utf-8") if isinstance(payload, str) else payload
    ts = int(time.time()) if timestamp is None else int(timestamp)
    digest = hmac.new(secret.encode("utf-8"), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={ts},v1={digest}"


@dataclass(order=True)
class _Delivery:
    due: float
    seq: int
    event_id: str = field(compare=False)
    endpoint_id: str = field(compare=False)
    attempt: int = field(compare=False, default=1)
    generation: int = field(compare=False, default=0)


class WebhookDeliverer:
    """Posts events to endpoints in a background thread, retrying failed deliveries on a schedule.

    ``build(event_id, endpoint_id)`` returns ``(url, body, secret)`` or None when either is gone; ``done``
    is told how each attempt went. Both are called without this class's lock held.
    """

    def __init__(self, *, build: Callable[[str, str], tuple[str, bytes, str] | None],
                 done: Callable[[dict[str, Any]], None], retry_delays: tuple[float, ...], timeout: float = 10.0):
        self._build = build
        self._done = done
        self.retry_delays = tuple(retry_delays)
        self.timeout = timeout
        self._queue: list[_Delivery] = []
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._generation = 0
        self._busy = 0
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="fakestripe-webhooks", daemon=True)
        self._thread.start()

    def enqueue(self, event_id: str, endpoint_id: str, *, delay: float = 0.0, attempt: int = 1) -> None:
        with self._cond:
            heapq.heappush(self._queue, _Delivery(time.monotonic() + delay, next(self._seq), event_id, endpoint_id,
                                                  attempt, self._generation))
            self._cond.notify_all()

    def clear(self) -> None:
        """Forget every queued delivery; one already in flight finishes but is not retried."""
        with self._cond:
            self._generation += 1
            self._queue.clear()
            self._cond.notify_all()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is queued or in flight (retries scheduled later count as queued)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.05))
        return True

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._thread.join(timeout=5)

    def _next(self) -> _Delivery | None:
        with self._cond:
            while not self._stopped:
                if self._queue:
                    wait = self._queue[0].due - time.monotonic()
                    if wait <= 0:
                        self._busy += 1
                        return heapq.heappop(self._queue)
                    self._cond.wait(wait)
                else:
                    self._cond.wait()
            return None

    def _run(self) -> None:
        while (item := self._next()) is not None:
            try:
                self._attempt(item)
            except Exception:  # the thread must survive anything a receiver does
                logger.exception("fakestripe: webhook delivery of %s crashed", item.event_id)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _attempt(self, item: _Delivery) -> None:
        built = self._build(item.event_id, item.endpoint_id)
        if built is None:
            return
        url, body, secret = built
        request = urllib.request.Request(  # noqa: S310 - the endpoint URL is one the test or operator registered
            url, data=body, method="POST",
            headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT,
                     "Stripe-Signature": sign_payload(body, secret)},
        )
        status: int | None = None
        error = ""
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
            error = exc.read(500).decode("utf-8", "replace")
        except (OSError, urllib.error.URLError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        ok = status is not None and 200 <= status < 300
        retry_in = None
        with self._cond:
            current = item.generation == self._generation
        if not ok and current and item.attempt <= len(self.retry_delays):
            retry_in = self.retry_delays[item.attempt - 1]
            self.enqueue(item.event_id, item.endpoint_id, delay=retry_in, attempt=item.attempt + 1)
        self._done({"event": item.event_id, "endpoint": item.endpoint_id, "url": url, "attempt": item.attempt,
                    "status": status, "ok": ok, "error": error, "retry_in": retry_in, "at": time.time()})
