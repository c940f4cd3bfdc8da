"""Real receivers for the notification tests (imported as ``notify_support``): an SMTP
server (aiosmtpd, on its own thread) and an HTTP webhook receiver (http.server, on its own
thread), both in the test process, both recording exactly what arrived."""

from __future__ import annotations

import email
import email.policy
import gc
import hashlib
import hmac
import json
import socket
import threading
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

from backorder.launcher import wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MailSink:
    """aiosmtpd handler: keeps every message it accepted (parsed), optionally slowly."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []
        self.started: list[str] = []  # Message-IDs whose DATA arrived (answered or not)
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        import asyncio

        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.started.append(msg["Message-ID"])  # the whole mail is here; the answer is not yet
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), msg))
        return "250 Message accepted for delivery"

    def ids(self) -> list[str]:
        with self.lock:
            return [m["Message-ID"] for _, m in self.messages]


class SmtpServer:
    """``tls_context`` + ``login``: the server requires STARTTLS, then AUTH with that
    (user, password) - anything else is refused."""

    def __init__(self, delay_s: float = 0.0, tls_context=None, login: tuple[str, str] | None = None) -> None:
        self.sink = MailSink(delay_s)
        self.port = free_port()
        self.logins: list[tuple[str, bool]] = []
        extra = {}
        if tls_context is not None:
            extra = {
                "tls_context": tls_context,
                "require_starttls": True,
                "auth_required": True,
                "auth_require_tls": True,
                "authenticator": self._authenticate,
                # one mechanism: a refused login is one answer, not a round of fallbacks
                "auth_exclude_mechanism": ["LOGIN"],
            }
        self.login = login
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.port, **extra)

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = (
            isinstance(auth_data, LoginPassword)
            and self.login is not None
            and (auth_data.login.decode(), auth_data.password.decode()) == self.login
        )
        self.logins.append((auth_data.login.decode() if isinstance(auth_data, LoginPassword) else "?", ok))
        return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()
        # aiosmtpd's stop() leaves the transport of a session still open (the daemon keeps
        # its SMTP connection between notices) to the garbage collector, whose
        # ResourceWarning would then fail whichever later test happens to collect it.
        # Collect it here, where it belongs, with that one warning silenced.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()


class Hook:
    """What the webhook receiver saw: (headers, raw body, signature valid, status answered)."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self.fail_next = 0  # answer 503 to this many requests
        self.down = False  # answer 500 to every request
        self.requests: list[tuple[dict, bytes, bool, int]] = []
        self.lock = threading.Lock()

    def delivered(self) -> list[dict]:
        """Bodies of the requests answered 2xx."""
        with self.lock:
            return [json.loads(body) for _, body, _, status in self.requests if status == 200]


class _Handler(BaseHTTPRequestHandler):
    hook: Hook

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        expected = "sha256=" + hmac.new(self.hook.secret, body, hashlib.sha256).hexdigest()
        valid = hmac.compare_digest(expected, self.headers.get("X-Backorder-Signature", ""))
        with self.hook.lock:
            if self.hook.down:
                status = 500
            elif self.hook.fail_next > 0:
                self.hook.fail_next -= 1
                status = 503
            else:
                status = 200 if valid else 401
            self.hook.requests.append((dict(self.headers), body, valid, status))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


class HookServer:
    def __init__(self, secret: bytes) -> None:
        self.hook = Hook(secret)
        handler = type("Handler", (_Handler,), {"hook": self.hook})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HookServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def wait_for(predicate, timeout: float = 20.0, what: str = "condition"):
    """Poll ``predicate`` (a receiver's state, which no reply can tell) until it is truthy;
    ``wait_until`` with this module's defaults."""
    return wait_until(predicate, timeout, 0.05, f"timed out waiting for {what}")
