"""One JSON request to a channel's API, with the outbox's failure classes.

2xx: the decoded body (None when empty). 401/403: ``CredentialRejected`` (every notice to
this account would fail alike: the notifier opens the account's breaker). 408, 429 and 5xx,
no answer within the timeout, a refused connection: ``DeliveryError`` (retried with
backoff). Any other 4xx: ``Rejected`` with the channel's own error message (dead at once).
Blocking (urllib): run in a worker thread by ``Api.call``.
"""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from typing import Any

import msgspec
import trio

from backorder.config.settings import WritebackSettings
from backorder.notify.channels import CredentialRejected, DeliveryError, Rejected
from backorder.secrets import read_secret, why_missing

_RETRIED = frozenset({408, 425, 429})


def credential(wb: WritebackSettings, target: str) -> str:
    """The account's credential from its environment variable or file (first line), read
    at each send so a rotated token takes effect without a restart."""
    value = read_secret(wb.credential_env, wb.credential_file)
    if not value:
        raise CredentialRejected(f"{target}: {why_missing(wb.credential_env, wb.credential_file)}")
    return value


def basic(user_password: str) -> str:
    return "Basic " + base64.b64encode(user_password.encode()).decode()


def channel_message(status: int, body: bytes) -> str:
    """The channel's own error text from an error body: Shopify ``errors`` (a string or a
    field -> messages table), WooCommerce ``message``, BigCommerce ``title``/``errors`` or a
    list of ``{message}``, Amazon ``errors[].message``; else the body's start."""
    try:
        doc = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return f"HTTP {status}: {body[:300].decode(errors='replace')}"
    parts: list[str] = []
    items = doc if isinstance(doc, list) else [doc]
    for item in items:
        if not isinstance(item, dict):
            continue
        for key in ("message", "title", "detail"):
            if isinstance(item.get(key), str):
                parts.append(item[key])
        errors = item.get("errors")
        if isinstance(errors, str):
            parts.append(errors)
        elif isinstance(errors, dict):
            parts += [f"{k}: {v if isinstance(v, str) else '; '.join(map(str, v))}" for k, v in errors.items()]
        elif isinstance(errors, list):
            parts += [e.get("message", str(e)) if isinstance(e, dict) else str(e) for e in errors]
    return f"HTTP {status}: " + ("; ".join(parts) if parts else body[:300].decode(errors="replace"))


class Api:
    """The HTTP side of one channel account: ``call`` a method and path under
    ``base_url`` with the account's auth headers."""

    def __init__(self, target: str, wb: WritebackSettings) -> None:
        self.target = target
        self.wb = wb
        self.base = wb.base_url.rstrip("/")
        self._limiter = trio.CapacityLimiter(2)

    async def call(self, method: str, path: str, headers: dict[str, str], body: Any = None) -> Any:
        data = msgspec.json.encode(body) if body is not None else None
        req = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={"Accept": "application/json", "User-Agent": "backorder", **headers}
            | ({"Content-Type": "application/json"} if data is not None else {}),
        )
        # abandon_on_cancel: a cut attempt is repeated later, and every adapter makes its
        # request safe to repeat (see the adapters)
        return await trio.to_thread.run_sync(self._send, req, limiter=self._limiter, abandon_on_cancel=True)

    async def upload(self, url: str, content: bytes, content_type: str) -> None:
        """PUT ``content`` to a presigned ``url`` the channel answered with (its own auth is
        in the URL: no account headers go with it)."""
        req = urllib.request.Request(url, data=content, method="PUT", headers={"Content-Type": content_type})
        await trio.to_thread.run_sync(self._send, req, limiter=self._limiter, abandon_on_cancel=True)

    async def download(self, url: str) -> bytes:
        """GET a presigned ``url`` the channel answered with (a report): its bytes as sent."""
        req = urllib.request.Request(url, method="GET", headers={"User-Agent": "backorder"})
        raw: bytes = await trio.to_thread.run_sync(self._exchange, req, limiter=self._limiter, abandon_on_cancel=True)
        return raw

    def _send(self, req: urllib.request.Request) -> Any:
        raw = self._exchange(req)
        if not raw.strip():
            return None
        try:
            return msgspec.json.decode(raw)
        except msgspec.DecodeError:
            call = f"({req.get_method()} {req.selector.split('?')[0]})"
            raise DeliveryError(f"{self.target}: the answer is not JSON {call}") from None

    def _exchange(self, req: urllib.request.Request) -> bytes:
        # the status and the channel's words first (what a console column shows), then the call
        call = f"({req.get_method()} {req.selector.split('?')[0]})"
        try:
            with urllib.request.urlopen(req, timeout=self.wb.timeout_s) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            exc.close()
            message = f"{self.target}: {channel_message(exc.code, raw)} {call}"
            if exc.code in (401, 403):
                raise CredentialRejected(message) from None
            if exc.code in _RETRIED or exc.code >= 500:
                raise DeliveryError(message) from None
            raise Rejected(message) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise DeliveryError(f"{self.target}: {getattr(exc, 'reason', exc)} {call}") from None
        return raw
