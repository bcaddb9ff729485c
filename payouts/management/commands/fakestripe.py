"""``manage.py fakestripe [--port N]``: run the local fake Stripe server in the foreground (demo, development)."""

from __future__ import annotations

from urllib.parse import urlsplit

import stripe
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from payouts.fakestripe import FakeStripeServer
from payouts.services.webhook_endpoints import CONNECT_EVENTS, ENDPOINT_KIND_KEY, PLATFORM_EVENTS


class Command(BaseCommand):
    help = "Run the fake Stripe server (the platform's default STRIPE_API_BASE) until interrupted."

    def add_arguments(self, parser) -> None:
        default_port = urlsplit(settings.STRIPE_API_BASE).port or 12111
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=default_port,
                            help=f"port to listen on (default {default_port}, from STRIPE_API_BASE)")
        parser.add_argument("--state", default=str(settings.DATA_DIR / "fakestripe.json"),
                            help="JSON file keeping the fake's state across restarts ('' for memory only)")
        parser.add_argument("--webhook-url", default=settings.SITE_URL.rstrip("/") + reverse("webhooks:stripe"),
                            help="where to deliver events (default: this site's /webhooks/stripe/)")
        parser.add_argument("--no-webhooks", action="store_true", help="register no webhook endpoint")
        parser.add_argument("--rate-limit", type=float, default=0,
                            help="requests per second before answering 429 (default: no limit)")

    def handle(self, *args, **options) -> None:
        if options["port"] < 0 or options["port"] > 65535:
            raise CommandError(f"--port must be between 0 and 65535, got {options['port']}")
        secret = next((s.strip() for s in settings.STRIPE_WEBHOOK_SECRET.split(",") if s.strip()), "")
        try:
            server = FakeStripeServer(host=options["host"], port=options["port"], webhook_secret=secret or None,
                                      state_path=options["state"] or None, api_version=settings.STRIPE_API_VERSION)
        except OSError as exc:
            raise CommandError(f"cannot listen on {options['host']}:{options['port']}: {exc}") from exc
        if options["rate_limit"]:
            server.set_rate_limit(options["rate_limit"])
        server.start()
        try:
            if not options["no_webhooks"]:
                self._register_webhooks(server, options["webhook_url"])
            self.stdout.write(self.style.SUCCESS(f"fake Stripe listening on {server.url}"))
            self.stdout.write(f"  test control: {server.url}/_fake/  (reset, faults, rate_limit, accounts/<id>/...)")
            self.stdout.write("Press Ctrl-C to stop.")
            server.wait()
        except KeyboardInterrupt:
            self.stdout.write("stopping")
        finally:
            server.stop()

    def _register_webhooks(self, server: FakeStripeServer, url: str) -> None:
        """One platform endpoint (transfer events) and one Connect endpoint (account and payout events),
        signed with STRIPE_WEBHOOK_SECRET so the site verifies them with no further setup."""
        client = stripe.StripeClient(settings.STRIPE_SECRET_KEY, base_addresses={"api": server.url},
                                     stripe_version=settings.STRIPE_API_VERSION, max_network_retries=0)
        existing = {(ep.url, ep.metadata.to_dict().get(ENDPOINT_KIND_KEY))
                    for ep in client.v1.webhook_endpoints.list(params={"limit": 100}).data}
        for connect, events in ((False, PLATFORM_EVENTS), (True, CONNECT_EVENTS)):
            kind = "connect" if connect else "platform"
            if (url, kind) in existing:
                continue  # the state file kept it from the last run
            client.v1.webhook_endpoints.create(params={"url": url, "enabled_events": list(events), "connect": connect,
                                                       "metadata": {ENDPOINT_KIND_KEY: kind}})
            self.stdout.write(f"  webhooks ({kind}) -> {url}")
