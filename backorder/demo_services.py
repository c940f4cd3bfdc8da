"""The demo site's receivers of notices, started by the demo on loopback.

- a local SMTP sink (aiosmtpd on its own thread) that keeps every mail it accepts: the
  Shopify store's customers are told by email;
- one flaky webhook receiver (http.server on its own thread) for the WooCommerce store's
  notices, which checks the signature and answers 503 now and then, so the notifications
  screen shows retries and an open breaker; one notice in ``POISON_EVERY`` (the third
  notice is the first of them) is refused until it has died (``max_attempts``), so the
  outbox always has a dead notice that ``R`` (``notifications.retry``) recovers: its next
  attempt is accepted, with the same id;
- the other channels' notices go to the file channel (``outbox/`` in the demo's folder).

The webhook signing secret is made at run time and given to the daemon in its environment
(``BO_DEMO_WEBHOOK_SECRET``), never written to a file.
"""

from __future__ import annotations

import collections
import hmac
import json
import random
import secrets
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from backorder.notify.webhook import signature

WEBHOOK_SECRET_ENV = "BO_DEMO_WEBHOOK_SECRET"
FLAKY_SHARE = 0.2  # of webhook attempts answered 503 at random
POISON_EVERY = 20  # of webhook notices (the 3rd, 23rd, ...): refused until dead, then accepted after a retry
MAX_ATTEMPTS = 4
# no "*": the history's orders (channel "history") are told nothing
ROUTES = {"shopify": "email", "woocommerce": "webhook", "amazon_sp": "file", "x12_850": "file", "csv": "file"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config_toml(smtp_port: int, webhook_url: str, outbox: Path) -> list[str]:
    """The ``[notifications]`` tables: routes, real-time retry pacing sized to the demo
    (a few seconds from first try to dead), the receivers' addresses."""
    q = json.dumps
    out = ["", "[notifications]", f"max_attempts = {MAX_ATTEMPTS}"]
    out += ["backoff_base_s = 0.5", "backoff_max_s = 2.0", "breaker_failures = 4", "breaker_reset_s = 3.0"]
    out += ["", "[notifications.routes]", *(f"{q(k)} = {q(v)}" for k, v in ROUTES.items())]
    out += ["", "[notifications.smtp]", 'host = "127.0.0.1"', f"port = {smtp_port}"]
    out += ['sender = "orders@demo-coffee.example"', "timeout_s = 10.0"]
    out += ["", "[notifications.webhook]", f"url = {q(webhook_url)}", f"secret_env = {q(WEBHOOK_SECRET_ENV)}"]
    out += ["timeout_s = 5.0", "", "[notifications.file]", f"dir = {q(str(outbox))}"]
    return out


class MailSink:
    """aiosmtpd handler: counts the mails it accepted, by notice kind (``X-Backorder-Kind``
    if the daemon sets it, else the subject's first word)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.accepted = 0
        self.subjects: collections.Counter[str] = collections.Counter()

    async def handle_DATA(self, server, session, envelope) -> str:
        import email
        import email.policy

        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.accepted += 1
            self.subjects[str(msg.get("Subject", "")).split(" ")[0]] += 1
        return "250 Message accepted for delivery"


class _HookHandler(BaseHTTPRequestHandler):
    server: _HookServer

    def do_POST(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        status = self.server.hook.answer(dict(self.headers.items()), body)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format, *args) -> None:  # quiet: the console owns the terminal
        pass


class _HookServer(ThreadingHTTPServer):
    daemon_threads = True
    hook: FlakyHook


class FlakyHook:
    """The WooCommerce store's notice endpoint: checks the signature, fails on purpose."""

    def __init__(self, secret: bytes, rng: random.Random) -> None:
        self.secret = secret
        self.rng = rng
        self.lock = threading.Lock()
        self.attempts: collections.Counter[str] = collections.Counter()  # per notice id
        self.delivered: set[str] = set()
        self.poisoned: set[str] = set()  # refused until dead
        self.failed = 0
        self.bad_signatures = 0
        self.recovered = 0  # poisoned notices accepted after a retry

    def answer(self, headers: dict[str, str], body: bytes) -> int:
        h = {k.lower(): v for k, v in headers.items()}
        want = signature(self.secret, body)
        notice = h.get("idempotency-key", "")
        with self.lock:
            if not hmac.compare_digest(want, h.get("x-backorder-signature", "")):
                self.bad_signatures += 1
                return 401
            if notice not in self.attempts and len(self.attempts) % POISON_EVERY == 2:
                self.poisoned.add(notice)
            self.attempts[notice] += 1
            tries = self.attempts[notice]
            if notice in self.poisoned:
                if tries <= MAX_ATTEMPTS:
                    self.failed += 1
                    return 503
                self.recovered += notice not in self.delivered
            elif self.rng.random() < FLAKY_SHARE:
                self.failed += 1
                return 503
            self.delivered.add(notice)
            return 200


class Services:
    """The SMTP sink and the webhook receiver. ``start()`` before the daemon (its config
    names their ports); ``stop()`` after it."""

    def __init__(self, folder: Path, rng: random.Random) -> None:
        self.secret = secrets.token_hex(24)
        self.mail = MailSink()
        self.hook = FlakyHook(self.secret.encode(), rng)
        self.smtp_port = free_port()
        self.outbox = folder / "outbox"
        self.files_written = 0
        self._controller = None
        self._http: _HookServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def env(self) -> dict[str, str]:
        """What the daemon's environment needs (the webhook signing secret)."""
        return {WEBHOOK_SECRET_ENV: self.secret}

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        self._controller = Controller(self.mail, hostname="127.0.0.1", port=self.smtp_port)
        self._controller.start()
        self._http = _HookServer(("127.0.0.1", 0), _HookHandler)
        self._http.hook = self.hook
        self._thread = threading.Thread(target=self._http.serve_forever, name="demo-webhook", daemon=True)
        self._thread.start()

    @property
    def webhook_url(self) -> str:
        assert self._http is not None
        return f"http://127.0.0.1:{self._http.server_address[1]}/notices"

    def config(self) -> list[str]:
        return config_toml(self.smtp_port, self.webhook_url, self.outbox)

    def files(self) -> int:
        """Notices the file channel wrote (counted at ``stop()``: the folder may be gone by now)."""
        if self.outbox.is_dir():
            self.files_written = len(list(self.outbox.glob("*.json")))
        return self.files_written

    def summary(self) -> str:
        return (
            f"  notices mail={self.mail.accepted} webhook_delivered={len(self.hook.delivered)} "
            f"webhook_failed={self.hook.failed} webhook_recovered={self.hook.recovered} files={self.files()}"
        )

    def stop(self) -> None:
        self.files()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
