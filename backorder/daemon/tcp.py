"""The optional TCP listener for remote integrators (``[tcp]``, off by default).

Same protocol as the Unix socket, but the first line must be
``{"op": "auth", "id": ..., "token": "..."}`` with a token whose SHA-256 is configured under
``[tcp.clients.NAME]``. Tokens are random (``backorder token``: 256 bits), so one SHA-256
is enough to store them (no password stretching needed) and the digests are compared in
constant time. TLS (``trio.SSLStream``) when ``certfile`` and ``keyfile`` are set.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import ssl
from typing import TYPE_CHECKING

import msgspec
import structlog
import trio

from backorder.config.settings import TcpClient, TcpSettings
from backorder.daemon import protocol as p
from backorder.daemon import server

if TYPE_CHECKING:
    from backorder.daemon.app import Daemon

log = structlog.get_logger()
MAX_AUTH_LINE = 4096


class Auth(msgspec.Struct, kw_only=True):
    op: str
    token: str = ""
    id: msgspec.Raw = msgspec.Raw(b"null")


_AUTH = msgspec.json.Decoder(Auth)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "bo_" + secrets.token_urlsafe(32)


def find_client(clients: dict[str, TcpClient], token: str) -> tuple[str, TcpClient] | None:
    """The client whose digest matches; every digest is compared (constant time each)."""
    digest = hash_token(token)
    found = None
    for name, client in clients.items():
        if hmac.compare_digest(digest, client.token_sha256) and found is None:
            found = (name, client)
    return found


def ssl_context(t: TcpSettings) -> ssl.SSLContext | None:
    if not (t.certfile and t.keyfile):
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(t.certfile, t.keyfile)
    return ctx


async def serve_tcp(daemon: Daemon, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    t = daemon.settings.tcp
    listeners = await trio.open_tcp_listeners(t.port or 0, host=t.host)
    ports = sorted({lst.socket.getsockname()[1] for lst in listeners})
    ctx = ssl_context(t)
    if ctx is not None:
        listeners = [trio.SSLListener(lst, ctx, https_compatible=False) for lst in listeners]
    log.info("tcp_listening", host=t.host, ports=ports, tls=ctx is not None)
    await server.serve_until_drain(daemon, listeners, lambda stream: _serve_one(stream, daemon), task_status)


async def _first_line(stream: trio.abc.ReceiveStream) -> tuple[bytes | None, bytes]:
    buf = b""
    while b"\n" not in buf:
        chunk = await stream.receive_some(MAX_AUTH_LINE)
        if not chunk:
            return None, b""
        buf += chunk
        if len(buf) > MAX_AUTH_LINE and b"\n" not in buf:
            return None, b""
    line, _, rest = buf.partition(b"\n")
    return line, rest


_pending = {"n": 0}  # connections still authenticating (bounded like the connections)


async def _serve_one(stream: trio.abc.Stream, daemon: Daemon) -> None:
    t = daemon.settings.tcp
    peer = _peer(stream)
    if _pending["n"] >= daemon.settings.daemon.max_connections:
        await trio.aclose_forcefully(stream)  # unauthenticated: it is owed no explanation
        log.warning("tcp_refused", peer=peer, reason="too many connections authenticating")
        return
    line = None
    rest = b""
    _pending["n"] += 1
    try:
        with trio.move_on_after(t.auth_timeout_s):
            line, rest = await _first_line(stream)
    except (trio.BrokenResourceError, trio.ClosedResourceError):  # TLS handshake failed, reset
        await trio.aclose_forcefully(stream)
        log.info("tcp_refused", peer=peer, reason="connection broken before auth")
        return
    finally:
        _pending["n"] -= 1
    req_id = msgspec.Raw(b"null")
    found = None
    if line is not None:
        try:
            auth = _AUTH.decode(line)
            req_id = auth.id
            if auth.op == "auth":
                found = find_client(t.clients, auth.token)
        except (msgspec.DecodeError, UnicodeDecodeError):
            pass
    if found is None:
        reason = "no auth line in time" if line is None else "bad or unknown token"
        log.warning("tcp_refused", peer=peer, reason=reason)
        try:
            await stream.send_all(p.ENCODER.encode(p.err(req_id, "unauthorized",
                                  "the first line must be {\"op\": \"auth\", \"token\": ...} with a valid token"))
                                  + b"\n")
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        await trio.aclose_forcefully(stream)
        return
    name, client = found
    try:
        await stream.send_all(p.ENCODER.encode(p.ok(req_id, {"client": name, "role": client.role})) + b"\n")
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        await trio.aclose_forcefully(stream)
        return
    log.info("tcp_authenticated", peer=peer, client=name, role=client.role)
    await server.handle_client(stream, daemon, role=client.role, peer=f"tcp:{name}@{peer}", first=rest)


def _peer(stream) -> str:
    inner = getattr(stream, "transport_stream", stream)
    try:
        host, port = inner.socket.getpeername()[:2]
        return f"{host}:{port}"
    except (OSError, AttributeError):
        return "?"
