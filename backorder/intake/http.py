"""The webhook listener: ``POST /webhooks/<channel>[?account=NAME]`` with the source's own
headers and raw body, served by hypercorn's trio worker inside the daemon's nursery.

Status codes: 200 accepted / duplicate / updated / ignored; 401 signature failures; 413
an oversized body; 400 an unparseable body; 422 an invalid order; 503 + Retry-After when
intake is saturated; 404 an unknown channel or path. The reply body is the outcome as JSON
(the same object ``order.ingest`` returns), sent once its events are durable. A failure
after authentication is a dead letter: 500 with its ``letter_id``.

Slow or idle peers cannot hold the listener: at most ``[intake] max_connections`` are
served at once (the others wait in the kernel's accept backlog, holding no descriptor of
ours), a request's body must arrive within ``body_timeout_s`` (else 408 and the connection
is closed; a reply sent before the whole body was read, such as 413, closes the connection
too, once the rest has been read and dropped within that deadline), a connection with no
request in progress is closed after ``idle_timeout_s`` (this also bounds the time to send
the request line and headers, at most ``max_header_bytes``) and any silence longer than
``read_timeout_s`` ends it.
"""

from __future__ import annotations

import itertools
import logging
from urllib.parse import parse_qs

import msgspec
import structlog
import trio
from hypercorn.config import Config
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState
from hypercorn.utils import repr_socket_addr, wrap_app

from backorder.errors import Rejected
from backorder.intake import governance as g
from backorder.intake.service import HTTP_STATUS, IntakeService
from backorder.threepl.service import ThreeplService

log = structlog.get_logger()
_ENC = msgspec.json.Encoder(decimal_format="string")


class WebhookApp:
    """A minimal ASGI app: one route, the raw body read up to the size limit; each delivery
    goes to ``intake``, whose settings (``[intake]``, read at each use) bound the request."""

    def __init__(self, intake: IntakeService, threepl: ThreeplService | None = None) -> None:
        self.intake = intake
        self.threepl = threepl  # the 3PL's shipment webhooks, ``POST /threepl/<provider>``
        self._n = itertools.count(1)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        started = False
        body = _Body(receive, trio.current_time() + self.intake.cfg.body_timeout_s)

        async def tracked(msg: dict) -> None:
            nonlocal started
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self._request(scope, body, tracked)
        except Exception:
            log.exception("webhook_failed", path=scope.get("path", ""))
            if not started:
                await _reply(
                    send,
                    body,
                    500,
                    {"error": "internal_error", "message": "the request failed; see the log"},
                    close=True,
                )

    async def _request(self, scope, body: _Body, send) -> None:
        path = scope["path"]
        if scope["method"] == "POST" and path.startswith("/carriers/"):
            await self._tracking(scope, body, send)
            return
        if scope["method"] == "POST" and path.startswith("/threepl/") and self.threepl is not None:
            await self._threepl(scope, body, send)
            return
        if scope["method"] != "POST" or not path.startswith("/webhooks/"):
            await _reply(send, body, 404, {"error": "not_found", "message": "POST /webhooks/<channel>"})
            return
        channel = path[len("/webhooks/") :].strip("/")
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        account = (query.get("account") or [None])[0]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        cfg = self.intake.cfg
        data = None
        with trio.move_on_at(body.deadline) as deadline:
            data = await body.read(cfg.max_body_bytes)
        if deadline.cancelled_caught:  # nothing reached intake: nothing is recorded
            await _reply(
                send,
                body,
                408,
                {"error": "body_timeout", "message": f"the body did not arrive within {cfg.body_timeout_s:g} s"},
            )
            return
        if data is None:  # the peer went away
            return
        d = g.Delivery(channel=channel, account=account, headers=headers, body=data, via="http")
        try:
            result = await self.intake.ingest(d, f"h{next(self._n)}")
        except Rejected as exc:
            if exc.code == "busy":
                await _reply(
                    send,
                    body,
                    503,
                    {"error": "busy", "message": exc.message},
                    [(b"retry-after", str(self.intake.cfg.retry_after_s).encode())],
                )
            else:
                await _reply(
                    send,
                    body,
                    404 if exc.code == "unknown_channel" else 400,
                    {"error": exc.code, "message": exc.message},
                )
            return
        status = 200
        if result["outcome"] == "rejected":
            status = HTTP_STATUS.get(result["code"], 422)
        await _reply(send, body, status, result)

    async def _tracking(self, scope, body: _Body, send) -> None:
        """``POST /carriers/<carrier>/tracking``: a carrier's tracking webhook. A bad signature
        is 401, a parcel we never shipped 404 (both counted, nothing recorded); an update is
        journaled (``shipment_tracked``, with the customer's delivered / exception notice)
        and answered 200 once durable; an event we do not track (pre-transit...) is 200 too,
        so the carrier does not resend it."""
        from backorder.actors import order_rules
        from backorder.notify.carriers import APIS, BadSignature

        counts = self.intake.carrier_webhooks
        parts = scope["path"].strip("/").split("/")
        if len(parts) != 3 or parts[2] != "tracking" or parts[1] not in APIS:
            await _reply(send, body, 404, {"error": "not_found", "message": "POST /carriers/<carrier>/tracking"})
            return
        name = parts[1]
        cfg = self.intake.cfg
        data = None
        with trio.move_on_at(body.deadline) as deadline:
            data = await body.read(cfg.max_body_bytes)
        if deadline.cancelled_caught or data is None:
            if deadline.cancelled_caught:
                await _reply(send, body, 408, {"error": "body_timeout", "message": "the body did not arrive in time"})
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        api = APIS[name](getattr(self.intake.settings.carriers, name))
        try:
            updates = api.tracking(headers, data)
        except BadSignature as exc:
            counts["bad_signature"] += 1
            log.warning("carrier_webhook_refused", carrier=name, reason=str(exc))
            await _reply(send, body, 401, {"error": "signature_invalid", "message": str(exc)})
            return
        except ValueError as exc:  # signed by the carrier, yet not JSON
            counts["ignored"] += 1
            await _reply(send, body, 400, {"error": "invalid_body", "message": str(exc)[:200]})
            return
        engine = self.intake.engine
        world = engine.world
        changed = []
        for tracking, status, detail in updates:
            sid = world.by_tracking.get(tracking)
            if sid is None or world.shipments[sid].carrier != name:
                counts["unknown_shipment"] += 1
                log.warning("carrier_webhook_unknown_shipment", carrier=name, tracking=tracking)
                await _reply(
                    send, body, 404, {"error": "unknown_shipment", "message": f"no {name} shipment {tracking!r}"}
                )
                return
            engine.context("carrier_webhook", f"{name}:{tracking}")
            if order_rules.tracked(world, sid, status, detail, engine.emit, engine.now()):
                changed.append({"shipment_id": sid, "tracking_status": status})
        if not updates:
            counts["ignored"] += 1
        elif changed:
            counts["accepted"] += 1
            await engine.journal.wait_durable(engine.journal.last_seq)
        else:
            counts["unchanged"] += 1
        await _reply(send, body, 200, {"outcome": "updated" if changed else "ignored", "shipments": changed})

    async def _threepl(self, scope, body: _Body, send) -> None:
        """A 3PL shipment webhook: the body within the same bounds as an order delivery."""
        assert self.threepl is not None
        name = scope["path"][len("/threepl/") :].strip("/")
        query = {k: v[0] for k, v in parse_qs(scope.get("query_string", b"").decode("latin-1")).items()}
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        cfg = self.intake.cfg
        data = None
        with trio.move_on_at(body.deadline) as deadline:
            data = await body.read(cfg.max_body_bytes)
        if deadline.cancelled_caught or data is None:
            if data is None and not deadline.cancelled_caught:
                return
            await _reply(send, body, 408, {"error": "body_timeout", "message": "the body did not arrive in time"})
            return
        if len(data) > cfg.max_body_bytes:
            await _reply(send, body, 413, {"error": "body_too_large", "message": "over [intake] max_body_bytes"})
            return
        status, doc = await self.threepl.webhook(name, headers, query, data)
        await _reply(send, body, status, doc)


class _Body:
    """A request's body as hypercorn hands it over: a queue of at most ``max_app_queue_size``
    chunks, which hypercorn's reader fills and which must be emptied to its end. hypercorn
    closes a request's stream by putting ``http.disconnect`` in that same queue, from the
    app's last send: an app that stopped reading with the queue full waits there for good,
    and so does the reader (with the socket unread: the peer's write stalls, and once the
    peer gives up the connection stays in CLOSE-WAIT, holding its slot). So whatever is
    left unread when the reply goes out is read and dropped (see ``_reply``)."""

    def __init__(self, receive, deadline: float) -> None:
        self.receive = receive
        self.deadline = deadline  # the whole body, by body_timeout_s
        self.ended = False  # the last chunk or the peer's disconnect was seen: nothing more comes
        self.closed = False  # the stream's end (``http.disconnect``) was seen

    async def read(self, limit: int) -> bytes | None:
        """The body, cut at ``limit`` + 1 bytes (enough to be refused as too large; the rest
        is left for ``drop``); None when the peer disconnected."""
        body = bytearray()
        while not self.ended:
            msg = await self._next()
            if msg["type"] == "http.disconnect":
                return None
            body += msg.get("body", b"")
            if len(body) > limit:
                return bytes(body[: limit + 1])
        return bytes(body)

    async def drop(self, ended: trio.Event) -> None:
        """Read and drop the rest, up to the end of the stream (``http.disconnect``);
        ``ended`` is set at the body's end."""
        while not self.ended:
            await self._next()
        ended.set()
        while not self.closed:
            await self._next()

    async def _next(self) -> dict:
        msg = await self.receive()
        self.closed = msg["type"] == "http.disconnect"
        self.ended = self.ended or self.closed or not msg.get("more_body", False)
        return msg


async def _reply(send, body: _Body, status: int, doc: dict, extra: list | None = None, *, close: bool = False) -> None:
    """Send the reply. Before the request's body has all been read (too large, not waited
    for, or late), the reply says ``Connection: close`` and goes out at once; the rest of the
    body is then read and dropped until its end or the body deadline, so a peer that writes
    its whole request before reading (most do) gets to read its reply, and the connection
    closes clean (closing with unread bytes would reset it, and the peer could lose the
    reply)."""
    data = _ENC.encode(doc)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()), *(extra or [])]
    if close or not body.ended:
        headers.append((b"connection", b"close"))
    if body.ended:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})
        return
    ended = trio.Event()
    async with trio.open_nursery() as nursery:
        # dropping runs until the stream's end, which comes from the last send below
        nursery.start_soon(body.drop, ended)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data, "more_body": True})
        with trio.move_on_at(body.deadline):
            await ended.wait()
        await send({"type": "http.response.body", "body": b""})


class _Slots(trio.abc.Listener):
    """A listener that accepts only while fewer than ``limit`` connections are open: the
    cap hypercorn lacks. Beyond it, peers wait in the kernel's backlog."""

    def __init__(self, inner: trio.SocketListener, slots: trio.Semaphore) -> None:
        self.inner = inner
        self.slots = slots

    async def accept(self) -> trio.SocketStream:
        try:  # no extra checkpoint while slots are free: accepting stays as eager as hypercorn's
            self.slots.acquire_nowait()
        except trio.WouldBlock:
            await self.slots.acquire()
        try:
            return await self.inner.accept()
        except BaseException:
            self.slots.release()
            raise

    async def aclose(self) -> None:
        await self.inner.aclose()


class _Connection(TCPServer):
    """hypercorn's connection, closed as soon as the peer has gone: hypercorn itself keeps
    the socket until its keep-alive timer ends (measured: every closed connection held its
    descriptor and slot 5 s more), which under the connection cap cut throughput to
    ``max_connections`` / ``idle_timeout_s`` requests a second."""

    async def _read_data(self) -> None:
        await super()._read_data()
        await self.idle_task.stop()


class _ErrorLog(logging.Handler):
    """hypercorn's own error log (protocol errors, its internal failures) into our log."""

    def emit(self, record: logging.LogRecord) -> None:
        log.error("webhook_server_error", message=record.getMessage(), exc_info=record.exc_info)


def _config(intake: IntakeService) -> Config:
    cfg = intake.cfg
    config = Config()
    config.bind = [cfg.listen]
    config.accesslog = None
    errors = logging.getLogger("backorder.hypercorn")
    if not errors.handlers:
        errors.addHandler(_ErrorLog())
        errors.propagate = False
    config.errorlog = errors
    config.graceful_timeout = 1.0
    config.keep_alive_timeout = cfg.idle_timeout_s
    config.read_timeout = cfg.read_timeout_s
    config.h11_max_incomplete_size = cfg.max_header_bytes
    return config


async def serve(
    intake: IntakeService, threepl: ThreeplService | None = None, *, task_status=trio.TASK_STATUS_IGNORED
) -> None:
    """hypercorn's trio worker loop, with the connection cap: ``hypercorn.trio.serve``
    builds its listeners itself, so this runs hypercorn's per-connection ``TCPServer``
    (HTTP/1.1, h11) over capped listeners. No lifespan events: the app needs none."""
    config = _config(intake)
    app = wrap_app(WebhookApp(intake, threepl), config.wsgi_max_body_size, "asgi")
    context = WorkerContext(None)
    slots = trio.Semaphore(intake.cfg.max_connections)
    listeners, binds = [], []
    for sock in config.create_sockets().insecure_sockets:
        sock.listen(config.backlog)
        listeners.append(_Slots(trio.SocketListener(trio.socket.from_stdlib_socket(sock)), slots))
        binds.append(repr_socket_addr(sock.family, sock.getsockname()))

    async def connection(stream: trio.SocketStream) -> None:
        try:
            await _Connection(app, config, context, ConnectionState({}), stream).run()
        finally:
            slots.release()

    task_status.started(binds)
    await trio.serve_listeners(connection, listeners)


async def start(intake: IntakeService, nursery: trio.Nursery, threepl: ThreeplService | None = None) -> int:
    """Start the listener for ``intake`` (and the 3PL's webhooks) in ``nursery``; returns
    the bound port (``listen`` may ask for 0)."""
    binds = await nursery.start(serve, intake, threepl)
    port = int(binds[0].rsplit(":", 1)[1])
    intake.http_port = port
    log.info("webhook_listener_ready", listen=binds[0], port=port)
    return port
