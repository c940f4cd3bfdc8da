"""HTTP webhooks: the notice as JSON, POSTed with ``Idempotency-Key: <notice id>`` and
``X-Backorder-Signature: sha256=<hex HMAC-SHA256 of the raw body>`` under the secret in the
environment variable named by ``notifications.webhook.secret_env``. Any 2xx is delivery;
anything else (or no answer within ``timeout_s``) is a failed attempt."""

from __future__ import annotations

import hashlib
import hmac
import os
import urllib.error
import urllib.request

import trio

from backorder.actors.events import NoticeQueued
from backorder.config.settings import WebhookSettings
from backorder.notify.channels import DeliveryError, payload
from backorder.notify.render import Rendered


def signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class WebhookChannel:
    name = "webhook"

    def __init__(self, cfg: WebhookSettings) -> None:
        self.cfg = cfg
        self._limiter = trio.CapacityLimiter(4)

    def secret(self) -> bytes:
        # the config and the start-up refuse a missing secret; this is the last line: never
        # sign with an empty key, which anyone could forge
        if not self.cfg.secret_env:
            raise DeliveryError("notifications.webhook.secret_env is not set: refusing to send unsigned")
        value = os.environ.get(self.cfg.secret_env)
        if not value:
            raise DeliveryError(f"environment variable {self.cfg.secret_env} (webhook secret) is not set or empty")
        return value.encode()

    async def send(self, n: NoticeQueued, r: Rendered) -> str:
        if not self.cfg.url:
            raise DeliveryError("notifications.webhook.url is not set")
        body = payload(n, r)
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": n.notice_id,
            "X-Backorder-Signature": signature(self.secret(), body),
            "User-Agent": "backorder",
        }
        req = urllib.request.Request(self.cfg.url, data=body, headers=headers, method="POST")
        # abandon_on_cancel: see smtp.py - a cut attempt is repeated with the same key
        return await trio.to_thread.run_sync(self._post, req, limiter=self._limiter, abandon_on_cancel=True)

    def _post(self, req: urllib.request.Request) -> str:
        try:
            with urllib.request.urlopen(req, timeout=self.cfg.timeout_s) as resp:
                resp.read()
                return f"HTTP {resp.status}"
        except urllib.error.HTTPError as exc:
            exc.close()
            raise DeliveryError(f"HTTP {exc.code}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise DeliveryError(f"webhook: {getattr(exc, 'reason', exc)}") from None
