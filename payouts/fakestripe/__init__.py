"""A stateful fake of the Stripe API for tests and the offline demo (our own code; no Stripe code inside).

It speaks enough of Stripe's v1 API, with Stripe's shapes, status codes and headers, that the official
``stripe`` SDK works against it unmodified: Connect accounts and Account Links, transfers and reversals,
balance and balance transactions, webhook endpoints with signed deliveries, events, idempotency keys,
rate limiting, and injectable faults. It imports nothing from Django, so it also runs on its own::

    from payouts.fakestripe import FakeStripeServer
    server = FakeStripeServer(port=0).start()   # server.url -> "http://127.0.0.1:<port>"
"""

from __future__ import annotations

from payouts.fakestripe.faults import FAULT_KINDS
from payouts.fakestripe.server import FakeStripeServer
from payouts.fakestripe.store import DEFAULT_API_VERSION, FakeStripe
from payouts.fakestripe.webhooks import sign_payload

__all__ = ["DEFAULT_API_VERSION", "FAULT_KINDS", "FakeStripe", "FakeStripeServer", "sign_payload"]
