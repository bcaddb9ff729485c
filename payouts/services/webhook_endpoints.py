"""Registering this site's webhook endpoints with Stripe (the demo, tests, and a first production setup)."""

from __future__ import annotations

from django.urls import reverse

from payouts import stripe_client
from payouts.services.events import EVENT_HANDLERS

# Transfers are events of the platform's own account; account and payout events happen on connected
# accounts and reach only a Connect endpoint. Stripe needs one endpoint of each kind.
PLATFORM_EVENTS = sorted(t for t in EVENT_HANDLERS if t.startswith("transfer."))
CONNECT_EVENTS = sorted(t for t in EVENT_HANDLERS if not t.startswith("transfer."))
# Stripe's endpoint objects do not say whether they are Connect endpoints; our metadata does.
ENDPOINT_KIND_KEY = "royalties_endpoint"


def stripe_webhook_endpoints_register(*, base_url: str) -> list[str]:
    """Create the platform and Connect endpoints pointing at ``base_url``; returns their signing secrets
    (for ``STRIPE_WEBHOOK_SECRET``, comma-separated)."""
    url = base_url.rstrip("/") + reverse("webhooks:stripe")
    secrets = []
    for connect, events in ((False, PLATFORM_EVENTS), (True, CONNECT_EVENTS)):
        kind = "connect" if connect else "platform"
        endpoint = stripe_client.webhook_endpoint_create(
            url=url, enabled_events=events, connect=connect, metadata={ENDPOINT_KIND_KEY: kind},
            key=stripe_client.idempotency_key("webhook-endpoint", kind, url),
        )
        secrets.append(str(endpoint.secret))
    return secrets
