"""The fake Stripe over real HTTP: the /v1 API, Connect's hosted onboarding page, and a test-control API.

- ``/v1/...``: what the official SDK calls (form-encoded requests, JSON answers, Stripe's headers).
- ``/setup/e/<account>/<token>``: where an Account Link sends the contributor; a small form stands in for
  Stripe's hosted onboarding, so the browser demo works offline.
- ``/_fake/...``: test control (JSON or form bodies): ``reset``, ``faults``, ``rate_limit``, ``balance``,
  ``accounts/<id>/complete_onboarding|restrict|activate``, ``payouts``, ``events/<id>/deliver``,
  ``requests``, ``deliveries``.
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from payouts.fakestripe.errors import FakeStripeError
from payouts.fakestripe.forms import FormError, decode_form
from payouts.fakestripe.store import FakeStripe, Response

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeStripe):
        self.fake = fake
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as api.stripe.com: the SDK reuses its connections
    server: _HTTPServer
    server_version = "fakestripe/1.0"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("fakestripe %s - %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # --- plumbing ----------------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise FakeStripeError(413, "Request body too large.")
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes, headers: dict[str, str], content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload, indent=2).encode("utf-8"), headers or {}, "application/json")

    def _redirect(self, url: str) -> None:
        self._send(HTTPStatus.SEE_OTHER, b"", {"Location": url}, "text/plain")

    def _drop(self) -> None:
        """Close the socket without a byte of answer: to the client the request's fate is unknown."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        try:
            body = self._read_body()
        except FakeStripeError as exc:
            self.close_connection = True
            self._send_json(exc.status, exc.body())
            return
        try:
            if url.path.startswith("/v1/"):
                headers = {k.lower(): v for k, v in self.headers.items()}
                response: Response = self.server.fake.handle_api(method, url.path, url.query, body, headers)
                if response.drop:
                    self._drop()
                else:
                    self._send(response.status, response.body, response.headers, "application/json")
            elif url.path.startswith("/setup/e/"):
                self._hosted_onboarding(method, url.path, body)
            elif url.path.startswith("/_fake/"):
                self._control(method, url.path, url.query, body)
            else:
                self._send_json(404, FakeStripeError(404, f"Unrecognized request URL ({method}: {url.path}).").body())
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # --- Connect onboarding (stands in for Stripe's hosted pages) -----------------------------------------

    def _hosted_onboarding(self, method: str, path: str, body: bytes) -> None:
        parts = path.strip("/").split("/")
        if len(parts) != 4:
            self._send(404, b"Not found", {}, "text/plain")
            return
        account_id, token = parts[2], parts[3]
        fake = self.server.fake
        if method == "POST":
            form = decode_form(body.decode("utf-8", "replace"))
            try:
                target = fake.link_submit(str(form.get("session", "")), str(form.get("action", "")))
            except ValueError as exc:
                self._send(400, html.escape(str(exc)).encode(), {}, "text/plain; charset=utf-8")
                return
            self._redirect(target)
            return
        outcome, info = fake.link_open(account_id, token)
        if outcome == "missing":
            self._send(404, b"This link is not valid.", {}, "text/plain; charset=utf-8")
        elif outcome == "redirect":
            self._redirect(info["url"])
        else:
            page = _onboarding_page(path, info)
            self._send(200, page.encode("utf-8"), {"Cache-Control": "no-store"}, "text/html; charset=utf-8")

    # --- test control ------------------------------------------------------------------------------------

    def _control(self, method: str, path: str, query: str, body: bytes) -> None:
        fake = self.server.fake
        content_type = self.headers.get("Content-Type", "")
        try:
            if "json" in content_type and body:
                params = json.loads(body)
            else:
                params = decode_form(body.decode("utf-8") if method == "POST" else query)
            result = _control_route(fake, method, path.removeprefix("/_fake/").strip("/"), params)
        except (ValueError, KeyError, FormError, json.JSONDecodeError) as exc:
            self._send_json(400, {"error": {"type": "invalid_request_error", "message": str(exc)}})
            return
        except FakeStripeError as exc:
            self._send_json(exc.status, exc.body())
            return
        if result is None:
            self._send_json(404, {"error": {"type": "invalid_request_error",
                                            "message": f"Unknown control request {method} {path}"}})
            return
        self._send_json(200, result)


def _as_int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an integer, got {value!r}") from None


def _control_route(fake: FakeStripe, method: str, path: str, params: dict[str, Any]) -> Any:
    parts = path.split("/")
    if method == "POST" and path == "reset":
        fake.reset()
        return {"reset": True}
    if path == "faults":
        if method == "DELETE":
            fake.clear_faults()
            return {"faults": []}
        if method == "POST":
            fault = fake.add_fault(
                str(params["kind"]), count=_as_int(params.get("count", 1), "count"), method=params.get("method"),
                path=params.get("path"), status=_as_int(params["status"], "status") if params.get("status") else None,
                code=params.get("code"), message=params.get("message"),
                retry_after=float(params["retry_after"]) if params.get("retry_after") else None)
            return {"kind": fault.kind, "remaining": fault.remaining, "method": fault.method, "path": fault.path}
        if method == "GET":
            return {"faults": [vars(f) for f in fake.faults]}
    if method == "POST" and path == "rate_limit":
        rps = float(params.get("requests_per_second") or 0)
        burst = _as_int(params["burst"], "burst") if params.get("burst") else None
        fake.set_rate_limit(rps or None, burst)
        return {"requests_per_second": rps or None, "burst": burst}
    if method == "POST" and path == "balance":
        fake.set_balance(str(params.get("currency", "usd")), _as_int(params["amount"], "amount"))
        return {"currency": str(params.get("currency", "usd")).lower(), "available": int(params["amount"])}
    if method == "POST" and len(parts) == 3 and parts[0] == "accounts":
        account_id, action = parts[1], parts[2]
        if action == "complete_onboarding":
            pending = str(params.get("pending_verification", "")).lower() in ("1", "true", "yes")
            return fake.complete_onboarding(account_id, pending_verification=pending)
        if action == "restrict":
            due = params.get("currently_due")
            return fake.restrict_account(account_id,
                                         disabled_reason=str(params.get("disabled_reason") or "requirements.past_due"),
                                         currently_due=[due] if isinstance(due, str) else due)
        if action == "activate":
            return fake.activate_account(account_id)
    if method == "POST" and path == "payouts":
        return fake.simulate_payout(str(params["account"]), amount=_as_int(params["amount"], "amount"),
                                    currency=str(params.get("currency", "usd")),
                                    outcome=str(params.get("outcome", "paid")),
                                    failure_code=params.get("failure_code"))
    if method == "POST" and len(parts) == 3 and parts[0] == "events" and parts[2] == "deliver":
        return {"event": parts[1], "endpoints": fake.redeliver(parts[1])}
    if method == "GET" and path == "requests":
        with fake.lock:
            return {"requests": list(fake.request_log)}
    if method == "GET" and path == "deliveries":
        with fake.lock:
            return {"deliveries": list(fake.delivery_log)}
    return None


def _onboarding_page(path: str, info: dict[str, Any]) -> str:
    account = info["account"]
    due = account["requirements"]["currently_due"]
    items = "".join(f"<li><code>{html.escape(item)}</code></li>" for item in due) or "<li>nothing</li>"
    session = html.escape(info["session"])
    action = html.escape(path)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Set up payouts (fake Stripe)</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}}
button{{font:inherit;padding:.5rem 1rem;margin:.25rem .25rem .25rem 0;border-radius:6px;border:1px solid #635bff;
background:#635bff;color:#fff;cursor:pointer}} button.secondary{{background:#fff;color:#635bff}}</style></head>
<body><h1>Set up payouts</h1>
<p>This page stands in for Stripe's hosted onboarding for connected account <code>{html.escape(account["id"])}</code>
(a local fake Stripe server: nothing leaves this machine).</p>
<p>Stripe would ask for:</p><ul>{items}</ul>
<form method="post" action="{action}">
<input type="hidden" name="session" value="{session}">
<button type="submit" name="action" value="complete">Complete onboarding</button>
<button type="submit" name="action" value="pending" class="secondary">Submit, verification pending</button>
<button type="submit" name="action" value="leave" class="secondary">Return without finishing</button>
</form></body></html>"""


class FakeStripeServer:
    """The fake on a real socket. ``port=0`` picks a free port; ``url`` says where it listens."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, public_url: str | None = None,
                 api_key: str | None = None, webhook_secret: str | None = None,
                 state_path: str | Path | None = None, **options: Any):
        self.fake = FakeStripe(api_key=api_key, webhook_secret=webhook_secret, state_path=state_path, **options)
        try:
            self.httpd = _HTTPServer((host, port), self.fake)
        except OSError:
            self.fake.close()  # no half-started server: stop the webhook thread too
            raise
        bound_host, bound_port = self.httpd.server_address[:2]
        self.url = f"http://{bound_host!s}:{bound_port}"
        self.fake.public_url = (public_url or self.url).rstrip("/")
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> FakeStripeServer:
        """Serve in a background thread (tests); ``serve_forever`` serves in the caller's (the command)."""
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="fakestripe-http", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def wait(self) -> None:
        """Block until the server stops (Ctrl-C reaches the caller: the join wakes up regularly)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=0.5)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.fake.close()
        if self._thread:
            self._thread.join(timeout=5)

    def __getattr__(self, name: str) -> Any:
        # The simulations and logs (reset, add_fault, complete_onboarding, request_log ...) live on the fake.
        if name == "fake":
            raise AttributeError(name)
        return getattr(self.fake, name)
