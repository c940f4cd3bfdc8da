"""The optional TCP listener for remote integrators (``[tcp]``, off by default).

Same protocol as the Unix socket, but the first line must be
``{"op": "auth", "id": ..., "token": "..."}`` with a token whose SHA-256 is configured under
``[tcp.clients.NAME]``. Tokens are random (``backorder token``: 256 bits), so one SHA-256
is enough to store them (no password stretching needed) and the digests are compared in
constant time. TLS (``trio.SSLStream``) when ``certfile`` and ``keyfile`` are set.

Budgets (``server.Budgets``): a connection authenticating holds one of ``max_pending``
slots (``max_pending_per_host`` per address) for ``auth_timeout_s`` at most, TLS
handshake included; once authenticated it holds one of ``max_connections``, a budget
apart from the Unix sockets' one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import ssl

import msgspec
import structlog
import trio

from backorder import protocol as p
from backorder.config.settings import TcpClient, TcpSettings
from backorder.daemon import server

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


async def serve_tcp(gateway: server.Gateway, nursery: trio.Nursery, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Listen on ``[tcp] host`` and ``port``; connections are served in ``nursery``."""
    t = gateway.settings.tcp
    listeners = await trio.open_tcp_listeners(t.port or 0, host=t.host)
    ports = sorted({lst.socket.getsockname()[1] for lst in listeners})
    ctx = ssl_context(t)
    if ctx is not None:
        listeners = [trio.SSLListener(lst, ctx, https_compatible=False) for lst in listeners]
    log.info("tcp_listening", host=t.host, ports=ports, tls=ctx is not None)
    await server.serve_until_drain(
        gateway,
        listeners=listeners,
        nursery=nursery,
        handler=lambda stream: _serve_one(stream, gateway),
        task_status=task_status,
    )


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


async def _serve_one(stream: trio.abc.Stream, gateway: server.Gateway) -> None:
    """One TCP connection, contained like a Unix one: authenticate it within
    ``[tcp] auth_timeout_s`` (TLS handshake included) holding a slot of ``[tcp]
    max_pending``, then serve it in a slot of ``[tcp] max_connections``."""
    conn_id = server.new_connection_id()
    peer = "?"
    budgets = gateway.budgets
    admitted = None
    try:
        peer = _peer(stream)
        host = peer.rpartition(":")[0] or peer
        refused = budgets.take_pending(gateway.settings.tcp, host)
        if refused is not None:  # unauthenticated: it is owed no explanation
            log.warning("tcp_refused", peer=peer, reason=refused)
            return
        try:
            admitted = await _authenticate(stream, gateway, peer)
        finally:
            budgets.release_pending(host)
        if admitted is None:
            return
        name, role, rest = admitted
        try:
            await server.serve_connection(
                stream, gateway, role, f"tcp:{name}@{peer}", rest, conn_id=conn_id, actor=f"token:{name}"
            )
        finally:
            budgets.release(server.TCP, role)
    except* Exception as failure:
        await server.connection_failed(stream, failure, conn=conn_id, listener=server.TCP, peer=peer)
    finally:
        if admitted is None:  # a graceful TLS close would first finish the handshake it never did
            await trio.aclose_forcefully(stream)
        else:
            await server.close(stream)


async def _authenticate(stream: trio.abc.Stream, gateway: server.Gateway, peer: str) -> tuple[str, str, bytes] | None:
    """Read and answer the auth line. Returns (client name, role, bytes read after the
    line) with a connection slot taken, or None once the client was refused."""
    t = gateway.settings.tcp
    line = None
    rest = b""
    # One deadline for the TLS handshake (done by the first receive) and the auth line.
    with trio.move_on_after(t.auth_timeout_s):
        try:
            line, rest = await _first_line(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError):  # TLS handshake failed, reset
            log.info("tcp_refused", peer=peer, reason="connection broken before auth")
            return None
    req_id, auth = _parse_auth(line) if line is not None else (msgspec.Raw(b"null"), None)
    found = find_client(t.clients, auth.token) if auth is not None and auth.op == "auth" else None
    if found is None:
        reason = "no auth line in time" if line is None else "bad or unknown token"
        log.warning("tcp_refused", peer=peer, reason=reason)
        await _send_within(
            stream,
            p.err(req_id, "unauthorized", 'the first line must be {"op": "auth", "token": ...} with a valid token'),
        )
        return None
    name, client = found
    refused = gateway.budgets.admit(gateway.settings, server.TCP, client.role)
    if refused is not None:
        log.warning(
            "connection_refused",
            reason="too_many_connections",
            listener=server.TCP,
            role=client.role,
            peer=f"tcp:{name}@{peer}",
        )
        await server.refuse(stream, req_id, refused)
        return None
    sent = False
    try:
        sent = await _send_within(stream, p.ok(req_id, {"client": name, "role": client.role}))
    finally:
        if not sent:  # not served after all (or cancelled): the slot goes back
            gateway.budgets.release(server.TCP, client.role)
    if not sent:
        return None
    log.info("tcp_authenticated", peer=peer, client=name, role=client.role)
    return name, client.role, rest


def _parse_auth(line: bytes) -> tuple[msgspec.Raw, Auth | None]:
    """(the id to answer with, the auth request), or (null, None) for a line that is not one."""
    try:
        auth = _AUTH.decode(line)
        bytes(auth.id).decode()  # the id is echoed: it must be UTF-8 (msgspec does not check a Raw)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep
        return msgspec.Raw(b"null"), None
    return auth.id, auth


async def _send_within(stream: trio.abc.Stream, reply) -> bool:
    """Send one reply of the authentication, bounded: a peer that does not read cannot
    hold its slot. False when it could not be sent."""
    with trio.move_on_after(server.DISCONNECT_FLUSH_S):
        try:
            await stream.send_all(p.ENCODER.encode(reply) + b"\n")
            return True
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
    return False


def _peer(stream) -> str:
    inner = getattr(stream, "transport_stream", stream)
    try:
        host, port = inner.socket.getpeername()[:2]
        return f"{host}:{port}"
    except (OSError, AttributeError):
        return "?"
