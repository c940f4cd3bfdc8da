"""The webhook listener: ``POST /webhooks/<channel>[?account=NAME]`` with the source's own
headers and raw body, served by hypercorn's trio worker inside the daemon's nursery.

Status codes: 200 accepted / duplicate / updated / ignored; 401 signature failures; 413
an oversized body; 400 an unparseable body; 422 an invalid order; 503 + Retry-After when
intake is saturated; 404 an unknown channel or path. The reply body is the outcome as JSON
(the same object ``order.ingest`` returns), sent once its events are durable.
"""

from __future__ import annotations

import itertools
from functools import partial
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

import msgspec
import structlog
import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve

from backorder.errors import Rejected
from backorder.intake import governance as g
from backorder.intake.service import HTTP_STATUS

if TYPE_CHECKING:
    from backorder.daemon.app import Daemon

log = structlog.get_logger()
_ENC = msgspec.json.Encoder(decimal_format="string")


class WebhookApp:
    """A minimal ASGI app: one route, the raw body read up to the size limit."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self._n = itertools.count(1)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path = scope["path"]
        if scope["method"] != "POST" or not path.startswith("/webhooks/"):
            await _reply(send, 404, {"error": "not_found", "message": "POST /webhooks/<channel>"})
            return
        channel = path[len("/webhooks/"):].strip("/")
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        account = (query.get("account") or [None])[0]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        limit = self.daemon.settings.intake.max_body_bytes
        body = bytearray()
        more = True
        while more:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            body += msg.get("body", b"")
            more = msg.get("more_body", False)
            if len(body) > limit:
                body = body[:limit + 1]  # enough to be refused as too large; the rest is not kept
                break
        d = g.Delivery(channel=channel, account=account, headers=headers, body=bytes(body), via="http")
        try:
            result = await self.daemon.intake.ingest(d, f"h{next(self._n)}")
        except Rejected as exc:
            if exc.code == "busy":
                await _reply(send, 503, {"error": "busy", "message": exc.message},
                             [(b"retry-after", str(self.daemon.settings.intake.retry_after_s).encode())])
            else:
                await _reply(send, 404 if exc.code == "unknown_channel" else 400,
                             {"error": exc.code, "message": exc.message})
            return
        status = 200
        if result["outcome"] == "rejected":
            status = HTTP_STATUS.get(result["code"], 422)
        await _reply(send, status, result)


async def _reply(send, status: int, body: dict, extra: list | None = None) -> None:
    data = _ENC.encode(body)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            *(extra or [])]})
    await send({"type": "http.response.body", "body": data})


async def start(daemon: Daemon, nursery: trio.Nursery) -> int:
    """Start the listener in ``nursery``; returns the bound port (``listen`` may ask for 0)."""
    config = Config()
    config.bind = [daemon.settings.intake.listen]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 1.0
    binds = await nursery.start(partial(hypercorn_serve, WebhookApp(daemon), config))
    port = int(binds[0].rsplit(":", 1)[1])
    daemon.intake.http_port = port
    log.info("webhook_listener_ready", listen=binds[0], port=port)
    return port
