"""The control socket: newline-delimited JSON requests in, replies and events out.

Per connection there is one reader (decode, dispatch, never waits for an actor) and one
writer (the only task that writes to the stream). Replies from any actor reach the
writer through an unbounded channel; the writer drains everything ready, waits until
the journal has made it durable, and sends it with one ``send_all``. Back-pressure: at
most ``max_inflight`` requests per connection are unanswered; the reader stops reading
until replies go out, so a flooding client only slows itself (and is disconnected if its
replies stay unread for ``[limits] inflight_wait_s``). Replies are encoded when they are
put (``put_reply``), so what a connection holds is counted in bytes: while more than
``[limits] reply_bytes`` of its replies are unsent, the reader stops reading and its heavy
reads (``queue_heavy``: one at a time per connection) wait before building the next reply.
What one client can make the daemon hold is then about ``reply_bytes`` plus one reply,
whatever it pipelines (``too_many_reply_bytes`` if it stays over for ``inflight_wait_s``).

Each connection has a role (``access``): a read-only one gets ``forbidden`` for the ops
of ``protocol.WRITE_OPS``. A connection that breaks a limit (``Disconnect``: line size,
idle time, in-flight, subscriber buffer) is sent one error line and closed; nothing else
is affected. Every reply feeds the metrics (``metrics.Recorder``) and, per
``[logging] requests``, the canonical request log line (``requestlog``).

Connections are admitted against ``Budgets`` (per listener and role) and each runs
contained (``connection_failed``): an exception in it or in any task it started is
logged and costs that connection, never the daemon's connection nursery, where it would
cancel every other connection and stop the daemon.

What the listeners and connections use of the daemon is a ``Gateway``: the journal, the
hub, the metrics recorder, the budgets, the settings, the clock and the function that
answers a decoded request.
"""

from __future__ import annotations

import itertools
import math
import os
import socket as stdsocket
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING

import msgspec
import structlog
import trio

from backorder import protocol as p
from backorder.actors.events import BATCHES
from backorder.daemon import access, requestlog
from backorder.daemon.journal import part_bodies
from backorder.errors import Rejected
from backorder.timeutil import iso_ts

if TYPE_CHECKING:
    from backorder.config.settings import Settings
    from backorder.daemon.journal import Journal, Row
    from backorder.daemon.metrics import Recorder

log = structlog.get_logger()
_conn_ids = itertools.count(1)
TOO_LONG = object()
UNIX, TCP = "unix", "tcp"  # the listeners, each with its own connection budget


def new_connection_id() -> int:
    return next(_conn_ids)


class SocketInUse(Exception):
    """Raised by ``serve`` (before binding) when a live daemon already answers on the
    socket path: the path is left alone, it is that daemon's."""


@dataclass(eq=False, slots=True)
class Gateway:
    """What the listeners and their connections use of the daemon; built by the daemon
    once the journal is recovered, shared by every listener."""

    settings: Settings  # the running settings: a reload of [limits] and [access] applies at the next use
    journal: Journal  # a reply leaves once the journal is durable up to the events before it
    now: Callable[[], float]  # the engine's clock (the time of a `lagged` line)
    hub: Hub
    recorder: Recorder
    budgets: Budgets
    connections: set[Connection]  # open connections (a drain waits for it to empty)
    roles: access.Roles  # replaced by a reload, for the connections accepted after it
    # answers or routes one decoded request; raises Rejected for bad input
    handle: Callable[[Connection, p.Request, Reply, str], None]
    # Under the stepped clock: awaited with the op's name before each request is handled,
    # until the actors have decided everything the requests before it started and, for a
    # write, the advances before it are done (so the journal of a run does not depend on how
    # the lines were chunked or how fast the replies went out). None otherwise.
    quiet: Callable[[str], Awaitable[None]] | None = None
    accept_scopes: list[trio.CancelScope] = field(default_factory=list)  # cancelled by a drain
    draining: bool = False  # set once the drain begins: a connection accepted since is not read


class Reply:
    """Where the answer to one request goes; any actor may call ``ok`` or ``error`` once."""

    __slots__ = ("conn", "corr", "op", "req_id", "t0")

    def __init__(self, conn: Connection, req_id: msgspec.Raw, op: str = "-", t0: float = 0.0, corr: str = "-") -> None:
        self.conn = conn
        self.req_id = req_id
        self.op = op  # for the metrics: errors by op, latency from t0 (perf_counter) to sent
        self.t0 = t0
        self.corr = corr  # the journal's correlation id of this request (audit trail)

    def ok(self, result, skus=None) -> None:
        """``skus``: a read that shows only these SKUs (one SKU, an order's lines) says so;
        its reply then waits only for the events that may change them (``Journal.fence``),
        not for every event journaled before it."""
        if requestlog.wanted(self.op, True):
            requestlog.summary(self, True, result)
        conn = self.conn
        conn.put_reply(p.ok(self.req_id, result), self.t0, None if skus is None else conn.gateway.journal.fence(skus))

    def error(self, code: str, message: str) -> None:
        self.conn.gateway.recorder.error(self.op, code)
        if requestlog.wanted(self.op, False):
            requestlog.summary(self, False, code=code, message=message)
        self.conn.put_reply(p.err(self.req_id, code, message), self.t0)


class Disconnect(Exception):
    """A connection broke a limit: tell it why (code, message), then close it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Connection:
    """One client connection: its role, its reply channel (to the writer), the accounts
    of its limits (requests in flight, reply bytes unsent, events queued) and its queue
    of heavy reads."""

    def __init__(
        self,
        gateway: Gateway,
        nursery: trio.Nursery,
        role: str = access.WRITE,
        peer: str = "",
        conn_id: int | None = None,
        actor: str = "unknown",
    ) -> None:
        self.id = new_connection_id() if conn_id is None else conn_id
        self.role = role
        # Who this client is, journaled with every command it sends: the Unix peer's user
        # name, or ``token:NAME`` for a TCP client (``[tcp.clients.NAME]``).
        self.actor = actor
        self.read_only = role != access.WRITE
        self.peer = peer
        self.gateway = gateway
        self.nursery = nursery
        self.out_send, self.out_recv = trio.open_memory_channel(math.inf)
        self.max_inflight = gateway.settings.daemon.max_inflight
        self.slots = trio.Semaphore(self.max_inflight)
        # Encoded reply bytes put but not yet sent; over the budget, the reader and the
        # heavy reads wait in `reply_room` until the writer has sent enough.
        self.reply_budget: float = gateway.settings.limits.reply_bytes
        self.reply_bytes = 0
        self.sends = 0  # batches the writer has finished sending (progress, once the reader is done)
        self.reply_room = trio.lowlevel.ParkingLot()
        self.heavy: deque[Callable[[], Awaitable[None]]] = deque()  # heavy reads waiting their turn
        self.event_types: frozenset[str] = frozenset()
        self.queued_events = 0
        self.missed_events = 0
        self.read_scope = trio.CancelScope()
        self.requests = 0
        self.skipped = 0  # empty lines: read, never answered
        self.answered = 0
        self.broke: Disconnect | None = None  # a limit broken outside the reader
        self.all_answered = trio.Event()  # set by put_reply once nothing is owed

    def owed(self) -> int:
        """Requests read whose reply an actor has not produced yet."""
        return self.requests - self.skipped - self.answered

    async def wait_answered(self) -> None:
        """Once the reader has stopped (no request comes in any more): wait until every
        request read has its reply. A fresh event: the old one may be set from a moment
        earlier when nothing was owed."""
        if self.owed() > 0:
            self.all_answered = trio.Event()
            await self.all_answered.wait()

    def put_reply(self, msg, t0: float = 0.0, fence: int | None = None) -> None:
        self.answered += 1
        if self.owed() <= 0:
            self.all_answered.set()
        # Encoded now, not by the writer: the connection then holds bytes (a large result's
        # objects take several times its JSON), freed as the reply is built, and counted.
        # Measured on a 223-byte order reply: 0.44 us against 0.30 us for encode_into the
        # writer's batch; bench/throughput.py --orders 20000, 9 alternating runs: 58.4 against
        # 57.4 us of daemon CPU per order line, within the runs' spread (53..64).
        try:
            data = _encode(msg)
        except Exception as exc:
            log.exception("reply_failed", conn=self.id)
            data = _encode(p.err(msg.id, "internal_error", f"the reply did not encode: {exc}"))
        self.reply_bytes += len(data)
        # The reply may only leave once everything journaled so far is durable (or, for a
        # read that names its SKUs, everything it shows: ``fence``). The writer sends a
        # connection's replies in order, so a read never overtakes an earlier write's reply.
        seq = self.gateway.journal.last_seq if fence is None else fence
        try:
            self.out_send.send_nowait((seq, data, t0))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.reply_bytes -= len(data)  # the client went away; its request was still carried out

    async def wait_reply_room(self) -> None:
        """Wait until this connection's unsent replies are within ``[limits] reply_bytes``."""
        while self.reply_bytes > self.reply_budget:
            await self.reply_room.park()

    def sent(self, nbytes: int) -> None:
        """The writer sent ``nbytes`` of replies: wake whoever waits for room."""
        self.reply_bytes -= nbytes
        self.sends += 1
        if self.reply_room and self.reply_bytes <= self.reply_budget:
            self.reply_room.unpark_all()

    def no_more_replies(self) -> None:
        """Nothing more can be sent (the peer is gone, or the connection is closing): the
        heavy reads not started are dropped (their replies would be too) and nothing waits
        for room any more."""
        self.heavy.clear()
        self.reply_budget = math.inf
        self.reply_room.unpark_all()

    def queue_heavy(self, job: Callable[[], Awaitable[None]]) -> None:
        """Run ``job`` (a read that builds a large reply, e.g. ``audit.query``) after this
        connection's earlier heavy reads, once its unsent replies are within budget. One at
        a time per connection: a client pipelining thousands of them holds one result at a
        time, not thousands, and takes one turn at a time of a shared resource (the journal
        reader) instead of queueing every other client behind its whole batch."""
        self.heavy.append(job)
        if len(self.heavy) == 1:
            self.nursery.start_soon(self._run_heavy)

    async def _run_heavy(self) -> None:
        heavy = self.heavy
        while heavy:
            if self.reply_bytes > self.reply_budget:
                # the reader may be idle (every request already read): a client that never
                # reads is closed from here too, after as long as the reader would wait
                wait_s = self.gateway.settings.limits.inflight_wait_s
                with trio.move_on_after(wait_s) as waited:
                    await self.wait_reply_room()
                if waited.cancelled_caught:
                    self.close_for(replies_unread(self.reply_budget, wait_s))
                    return
                if not heavy:  # woken by no_more_replies, which dropped the jobs not started
                    return
            job = heavy[0]  # left in the queue while it runs: a job queued meanwhile waits its turn
            await job()  # a job answers its own request, errors included
            if heavy and heavy[0] is job:  # (no_more_replies may have emptied the queue)
                heavy.popleft()

    def put_events(self, lines: list[tuple[str, bytes]]) -> None:
        """Called by the hub after a commit with ``(type, event line)`` per journaled event:
        queue this subscriber's events, or count what its full buffer misses."""
        limit = self.gateway.settings.daemon.subscriber_buffer
        types = self.event_types
        for kind, line in lines:
            if kind not in types:
                continue
            if self.queued_events >= limit:
                if self.gateway.settings.limits.subscriber_overflow == "disconnect":
                    self._overflowed(limit)
                    return
                self.missed_events += 1
                continue
            self.queued_events += 1
            try:
                self.out_send.send_nowait(line)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return

    def _overflowed(self, limit: int) -> None:
        """``[limits] subscriber_overflow = "disconnect"``: a subscriber with ``limit`` events
        unread is told so and closed (instead of missing events and getting a `lagged` line)."""
        self.close_for(
            Disconnect(
                "subscriber_overflow", f"{limit} event lines unread (subscriber_buffer); the connection is closed"
            )
        )

    def close_for(self, broke: Disconnect) -> None:
        """From outside the reader: stop this connection's events and reading; it is sent
        ``broke`` and closed (the first reason given wins)."""
        if self.broke is None:
            self.broke = broke
            self.gateway.hub.discard(self)
            self.read_scope.cancel()


_encode = p.ENCODER.encode


def event_line(seq: int, at: str, event: bytes) -> bytes:
    """One line of the event stream: ``{"seq": N, "at": "<RFC 3339>", "event": {...}}``."""
    return b'{"seq":' + str(seq).encode() + b',"at":"' + at.encode() + b'","event":' + event + b"}\n"


class Hub:
    """Fan-out of committed events to subscribers; never blocks the journal."""

    def __init__(self) -> None:
        self.subscribers: set[Connection] = set()
        self._at_ts: float | None = None  # the events of one message share their ts
        self._at = ""

    def add(self, conn: Connection) -> None:
        self.subscribers.add(conn)

    def discard(self, conn: Connection) -> None:
        self.subscribers.discard(conn)

    def at(self, ts: float) -> str:
        """``iso_ts`` of an event's ``ts``, remembered for the next row with the same ts."""
        if ts != self._at_ts:
            self._at_ts, self._at = ts, iso_ts(ts)
        return self._at

    def publish(self, rows: list[Row]) -> None:
        subscribers = list(self.subscribers)
        if not subscribers:
            return
        # Each line is built once per row, whatever the number of subscribers, and only for
        # the event types someone subscribed to.
        wanted = frozenset().union(*(conn.event_types for conn in subscribers))
        at = self.at
        if any(BATCHES.get(row[2]) in wanted for row in rows):
            lines = self._expanded(rows, wanted)
        else:
            lines = [
                (kind, event_line(seq, at(ts), body))
                for seq, ts, kind, _sku, _oid, _cause, _corr, body, _actor in rows
                if kind in wanted
            ]
        if lines:
            for conn in subscribers:
                try:
                    conn.put_events(lines)
                except Exception:
                    log.exception("subscriber_failed", conn=conn.id)
                    conn.close_for(
                        Disconnect(
                            "internal_error",
                            "the daemon failed to queue this subscriber's "
                            "events (a bug, logged); the connection is closed",
                        )
                    )

    def _expanded(self, rows: list[Row], wanted: frozenset[str]) -> list[tuple[str, bytes]]:
        """The lines of ``rows`` with each batch row (``events.BATCHES``) streamed as the
        event of each of its parts (same seq): a ``lines_allocated`` row as an ``allocated``
        event per line, a ``shipments_created`` row as a ``shipment_created`` per shipment,
        as before the batch events."""
        at = self.at
        lines = []
        for seq, ts, kind, _sku, _oid, _cause, _corr, body, _actor in rows:
            part = BATCHES.get(kind)
            if part is not None:
                if part in wanted:
                    lines += [(part, event_line(seq, at(ts), b)) for b in part_bodies(body)]
            elif kind in wanted:
                lines.append((kind, event_line(seq, at(ts), body)))
        return lines


async def read_lines(stream: trio.abc.ReceiveStream, max_line: int = p.MAX_LINE, receive=None, first: bytes = b""):
    """Yield each newline-terminated line; a line over ``max_line`` yields TOO_LONG once
    and is skipped up to its newline without being buffered. ``receive`` (default
    ``stream.receive_some``) is awaited for each chunk; ``first``: bytes already read
    (what followed a TCP auth line), handled as the first chunk."""
    receive = receive or (lambda: stream.receive_some(65536))
    pending = [first] if first else []
    buf = bytearray()
    skipping = False
    while True:
        chunk = pending.pop() if pending else await receive()
        if not chunk:
            if buf and not skipping:
                yield bytes(buf)
            return
        start = 0
        if skipping:
            i = chunk.find(b"\n")
            if i < 0:
                continue
            skipping = False
            start = i + 1
        buf += chunk[start:] if start else chunk
        pos = 0
        while (i := buf.find(b"\n", pos)) >= 0:
            if i - pos > max_line:
                yield TOO_LONG
            else:
                yield bytes(buf[pos:i])
            pos = i + 1
        if pos:
            del buf[:pos]
        if len(buf) > max_line:
            buf.clear()
            skipping = True
            yield TOO_LONG


class Budgets:
    """Connection slots per listener and role, so that no kind of client can take another's.

    The Unix sockets (the main one and ``read_socket``) have ``[daemon] max_connections``,
    the TCP listener ``[tcp] max_connections``: a TCP flood cannot lock out local
    operators. Of each listener's slots, ``[limits] write_reserve`` (all but one at most)
    are for write-role connections only, so read-role clients (dashboards, the read-only
    socket, read tokens) cannot lock out the clients that run the site. TCP connections
    still authenticating hold a slot of ``[tcp] max_pending`` (at most
    ``max_pending_per_host`` of them from one address), never a connection slot, for
    ``[tcp] auth_timeout_s`` at most.
    Limits are read at each admission, so a reload of ``[limits]`` applies at once."""

    def __init__(self) -> None:
        self.held: Counter[tuple[str, str]] = Counter()  # (listener, role) -> connections served
        self.pending: Counter[str] = Counter()  # TCP peer host -> connections authenticating

    def admit(self, settings, listener: str, role: str) -> str | None:
        """Take a slot for a ``role`` connection on ``listener``; or say why there is none."""
        if listener == TCP:
            size, key = settings.tcp.max_connections, "[tcp] max_connections"
        else:
            size, key = settings.daemon.max_connections, "[daemon] max_connections"
        reads = self.held[listener, access.READ]
        if reads + self.held[listener, access.WRITE] >= size:
            return f"the daemon serves its maximum of {size} connections on this listener ({key}); retry later"
        reserve = min(settings.limits.write_reserve, size - 1)  # the read role keeps one slot at least
        if role != access.WRITE and reads >= size - reserve:
            return (
                f"the {size - reserve} connections this listener has for the read role are all taken "
                f"({reserve} more are kept for the write role: [limits] write_reserve); retry later"
            )
        self.held[listener, role] += 1
        return None

    def release(self, listener: str, role: str) -> None:
        self.held[listener, role] -= 1

    def take_pending(self, tcp, host: str) -> str | None:
        """Take an authentication slot for a new TCP connection from ``host``; or say why not."""
        if self.pending.total() >= tcp.max_pending:
            return f"{tcp.max_pending} connections are authenticating ([tcp] max_pending)"
        if self.pending[host] >= tcp.max_pending_per_host:
            return f"{tcp.max_pending_per_host} connections from {host} are authenticating ([tcp] max_pending_per_host)"
        self.pending[host] += 1
        return None

    def release_pending(self, host: str) -> None:
        self.pending[host] -= 1
        if not self.pending[host]:
            del self.pending[host]


async def handle_client(stream: trio.abc.Stream, gateway: Gateway, role: str | None = None) -> None:
    """Serve one Unix-socket connection, contained. ``role`` None: decided from the peer's
    credentials."""
    conn_id = new_connection_id()
    peer = ""
    try:
        mapped, peer, actor = _unix_peer(stream, gateway.roles)
        role = mapped if role is None else role
        refused = gateway.budgets.admit(gateway.settings, UNIX, role)
        if refused is not None:
            await refuse(stream, msgspec.Raw(b"null"), refused)
            log.warning("connection_refused", reason="too_many_connections", listener=UNIX, role=role, peer=peer)
            return
        try:
            await serve_connection(stream, gateway, role, peer, conn_id=conn_id, actor=actor)
        finally:
            gateway.budgets.release(UNIX, role)
    except* Exception as failure:
        await connection_failed(stream, failure, conn=conn_id, listener=UNIX, peer=peer)
    finally:
        await close(stream)


async def refuse(stream: trio.abc.Stream, req_id: msgspec.Raw, why: str) -> None:
    """Tell a client that found no connection slot (``too_many_connections``)."""
    with trio.move_on_after(DISCONNECT_FLUSH_S):
        try:
            await stream.send_all(p.ENCODER.encode(p.err(req_id, "too_many_connections", why)) + b"\n")
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass


INTERNAL_ERROR = (
    p.ENCODER.encode(
        p.err(
            msgspec.Raw(b"null"),
            "internal_error",
            "the daemon failed serving this connection (a bug, logged); it is closed, the daemon goes on",
        )
    )
    + b"\n"
)


async def connection_failed(stream: trio.abc.Stream, failure: BaseExceptionGroup, **where) -> None:
    """A connection (or a task it started) raised: log it with its traceback, tell the
    client with one ``internal_error`` line if it can still take one; the caller closes it.
    Used in ``except* Exception`` so that a drain's cancellation still passes through."""
    leaves = failure.exceptions
    exc = leaves[0] if len(leaves) == 1 else failure
    log.error("connection_failed", **where, error=f"{type(exc).__name__}: {exc}", exc_info=exc)
    with trio.move_on_after(DISCONNECT_FLUSH_S):
        try:
            await stream.send_all(INTERNAL_ERROR)
        except Exception:
            pass


async def close(stream: trio.abc.Stream) -> None:
    """Close a connection's stream, gracefully within ``DISCONNECT_FLUSH_S``, else forcefully.
    Never raises but Cancelled: it runs in the ``finally`` of the containment."""
    with trio.move_on_after(DISCONNECT_FLUSH_S):
        try:
            await stream.aclose()
        except Exception:
            pass
    await trio.aclose_forcefully(stream)


async def serve_connection(
    stream: trio.abc.Stream,
    gateway: Gateway,
    role: str,
    peer: str,
    first: bytes = b"",
    *,
    conn_id: int,
    actor: str = "unknown",
) -> None:
    """Serve an admitted connection until it ends; the caller contains and closes it."""
    async with trio.open_nursery() as nursery:
        conn = Connection(gateway, nursery, role, peer, conn_id, actor)
        log_ = log.bind(conn=conn.id)
        gateway.connections.add(conn)
        if gateway.draining:  # accepted (or authenticated) as the drain began
            conn.read_scope.cancel()
        try:
            await _serve_connection(stream, conn, gateway, nursery, first, log_)
        finally:
            # only now: a drain waits for this set to empty, i.e. for every reply to be sent
            gateway.connections.discard(conn)
            gateway.hub.discard(conn)


async def _serve_connection(
    stream, conn: Connection, gateway: Gateway, nursery: trio.Nursery, first: bytes, log_
) -> None:
    log_.debug("connection_opened", role=conn.role, peer=conn.peer)
    writer_done = trio.Event()
    nursery.start_soon(_writer, stream, conn, writer_done)
    broke: Disconnect | None = None
    try:
        with conn.read_scope:
            await _reader(stream, conn, gateway, first)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    except Disconnect as exc:
        broke = exc
    finally:
        gateway.hub.discard(conn)
    broke = broke or conn.broke
    if broke is not None:
        gateway.recorder.error("-", broke.code)
        conn.put_reply(p.err(msgspec.Raw(b"null"), broke.code, broke.message))
        log_.warning("connection_limit", code=broke.code, reason=broke.message, role=conn.role, peer=conn.peer)
    # Replies still owed by the actors (a drain stopped the reader, or the client
    # half-closed): wait for them before closing the channel, or they would be lost
    # although their requests are carried out. Bounded by the grace period (a drain's
    # deadline bounds it too), so a reply that never comes cannot hold the connection;
    # counted from the last reply, so replies still coming (a connection's audit.query run
    # one at a time) are not cut off.
    if broke is None:
        while conn.owed() > 0:
            answered = conn.answered
            with trio.move_on_after(gateway.settings.daemon.grace_s):
                await conn.wait_answered()
            if conn.answered == answered:
                break
    # Let every reply still owed go out (the writer ends when the channel is empty).
    await conn.out_send.aclose()
    conn.no_more_replies()  # a reply put from now on is dropped: run no more heavy reads
    if broke is None:
        await _wait_writer(conn, writer_done, gateway, nursery, log_)
    else:  # an offender that does not read gets a moment for its error line, no more
        with trio.move_on_after(DISCONNECT_FLUSH_S):
            await writer_done.wait()
        nursery.cancel_scope.cancel()
    log_.debug("connection_closed", requests=conn.requests)


DISCONNECT_FLUSH_S = 1.0


async def _wait_writer(
    conn: Connection, writer_done: trio.Event, gateway: Gateway, nursery: trio.Nursery, log_
) -> None:
    """Wait for the writer to send what is left. The reader no longer applies back-pressure
    (it has stopped), so a peer that half-closed and never reads would keep the writer in
    ``send_all``, and the connection and its slot, for ever: as for the reader, a writer
    that sends nothing for ``inflight_wait_s`` closes the connection."""
    while not writer_done.is_set():
        sends = conn.sends
        wait_s = gateway.settings.limits.inflight_wait_s
        with trio.move_on_after(wait_s):
            await writer_done.wait()
        if not writer_done.is_set() and conn.sends == sends:
            log_.warning(
                "connection_stalled", reason=f"replies unread for {wait_s:g} s", role=conn.role, peer=conn.peer
            )
            nursery.cancel_scope.cancel()
            return


def _unix_peer(stream: trio.abc.Stream, roles: access.Roles) -> tuple[str, str, str]:
    """(role, peer, actor) of a Unix-socket client, from its credentials (SO_PEERCRED)."""
    sock = getattr(stream, "socket", None)
    if sock is None or sock.family != stdsocket.AF_UNIX:
        return access.WRITE, "", "unknown"
    try:
        pid, uid, gid = access.peer_credentials(sock)
    except OSError:
        return roles.default, "", "unknown"
    return roles.role_for(uid, gid), f"pid={pid} uid={uid} gid={gid}", roles.name_for(uid)


async def _receive(stream, conn: Connection, gateway: Gateway) -> bytes:
    """The next chunk from the client; a client that sends nothing for
    ``limits.idle_timeout_s`` while it is owed nothing and subscribes to nothing is idle."""
    while True:
        idle = gateway.settings.limits.idle_timeout_s
        if not idle:
            return await stream.receive_some(65536)
        with trio.move_on_after(idle):
            return await stream.receive_some(65536)
        if conn in gateway.hub.subscribers or conn.slots.value < conn.max_inflight:
            continue  # waiting for events or replies is not idleness
        raise Disconnect("idle_timeout", f"no request for {idle:g} s; the connection is closed")


async def _reader(stream, conn: Connection, gateway: Gateway, first: bytes = b"") -> None:
    prefix = f"c{conn.id}."
    max_line = gateway.settings.limits.line_bytes
    read_only = conn.read_only
    recorder = gateway.recorder
    record = recorder.request
    handle = gateway.handle
    quiet = gateway.quiet
    lines = read_lines(stream, max_line, lambda: _receive(stream, conn, gateway), first)
    turn = perf_counter()  # when this reader last let the other tasks run
    # aclosing: when the loop ends by an exception, the generator is closed here, not by the
    # garbage collector later (where its own exit would be an unraisable exception)
    async with aclosing(lines):
        async for line in lines:
            # Fair turns: a chunk of 64 KiB holds ~1,000 pipelined reads, each answered on
            # the spot, so without a checkpoint one client's burst holds the loop for the
            # whole chunk while every other connection's requests and replies wait. After
            # TURN_S of handling, the reader yields: every runnable task (the other
            # readers, the writers, the actors) runs before its next request. Shielded:
            # the line read is handled whatever happens meanwhile (a drain cancels at the
            # next real checkpoint, as before).
            now = perf_counter()
            if now - turn > TURN_S:
                await trio.lowlevel.cancel_shielded_checkpoint()
                turn = perf_counter()
            try:  # no other checkpoint per request while under the in-flight limit
                conn.slots.acquire_nowait()
            except trio.WouldBlock:
                # Back-pressure: wait for replies to go out; a client that never reads them
                # would hold its slots for ever, so after a while it is disconnected.
                with trio.move_on_after(gateway.settings.limits.inflight_wait_s) as waited:
                    await conn.slots.acquire()
                if waited.cancelled_caught:
                    raise Disconnect(
                        "too_many_inflight",
                        f"{conn.max_inflight} requests unanswered for "
                        f"{gateway.settings.limits.inflight_wait_s:g} s (replies not read)",
                    ) from None
            if conn.reply_bytes > conn.reply_budget:  # inline: one comparison per request
                await _wait_reply_room(conn, gateway)
            conn.requests += 1
            if line is TOO_LONG:
                conn.slots.release()
                recorder.rejected += 1
                raise Disconnect("line_too_long", f"a request line may be at most {max_line} bytes")
            if not line.strip():
                conn.slots.release()
                conn.skipped += 1
                continue
            op = "-"  # not known until decoded
            try:
                if read_only and (refused := access.forbidden(line, conn.role)) is not None:
                    raise refused
                req = p.decode_request(line)
                op = req.__struct_config__.tag
                if quiet is not None:
                    await quiet(op)
                record(op)
                corr = prefix + str(conn.requests)
                reply = Reply(conn, req.id, op, perf_counter(), corr)
                handle(conn, req, reply, corr)
            except Rejected as exc:
                # the canonical `request` line (requestlog) says why
                Reply(conn, p.request_id(line), op).error(exc.code, exc.message)
                recorder.rejected += 1
            except Exception as exc:  # a bug must cost one request, never the daemon
                Reply(conn, p.request_id(line), op).error("internal_error", f"{type(exc).__name__}: {exc}")
                log.exception("request_failed", conn=conn.id)


# The longest a connection's reader handles requests before the other tasks get a turn.
# tests/integration/test_fair_turns.py (one client pipelining 20,000 order.get, another
# timing its own order.get meanwhile, 4 runs each on the shared 2-core machine): the
# other client's p90 / max wait was 1-175 / 260-300 ms without turns, 15-31 / 32-68 ms
# with 1 ms turns, 5-10 / 12-21 ms with 0.5 ms turns (and writer batches bounded by
# WRITE_BATCH_BYTES), 2-8 / 8-31 ms with 0.2 ms turns: 0.5 ms, for a checkpoint every
# ~50 pipelined order.submit. bench/reads.py (50,000 pipelined order.get over 100,000
# waiting lines): the other client's p99 29-31 ms with turns, 153-207 ms without; the
# burst itself 4.4 s with them, 1.6-2.2 s without (smaller reply batches, more wake-ups).
TURN_S = 0.0005
WRITE_BATCH_BYTES = 256 * 1024


async def _wait_reply_room(conn: Connection, gateway: Gateway) -> None:
    """Back-pressure on reply bytes: read nothing more until the writer has sent enough; a
    client that leaves them unread for ``inflight_wait_s`` is disconnected."""
    wait_s = gateway.settings.limits.inflight_wait_s
    with trio.move_on_after(wait_s) as waited:
        await conn.wait_reply_room()
    if waited.cancelled_caught:
        raise replies_unread(conn.reply_budget, wait_s)


def replies_unread(budget: float, wait_s: float) -> Disconnect:
    return Disconnect(
        "too_many_reply_bytes",
        f"more than {budget:g} bytes of replies unread for {wait_s:g} s ([limits] reply_bytes, inflight_wait_s)",
    )


async def _writer(stream, conn: Connection, done: trio.Event) -> None:
    gateway = conn.gateway
    journal = gateway.journal
    buf = bytearray()
    observe = gateway.recorder.latency.observe
    try:
        async for item in conn.out_recv:
            items = [item]
            # A batch is bounded in bytes too: building and sending it is one turn of this
            # task, which other connections' replies wait behind (see TURN_S).
            size = 0
            while len(items) < 4096 and size < WRITE_BATCH_BYTES:
                try:
                    it = conn.out_recv.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel):  # EndOfChannel: the reader is done
                    break
                items.append(it)
                size += len(it[1]) if type(it) is tuple else len(it)
            seq = max((it[0] for it in items if type(it) is tuple), default=0)
            await journal.wait_durable(seq)
            buf.clear()
            replies = 0
            reply_bytes = 0
            for it in items:
                if type(it) is tuple:
                    data = it[1]
                    buf += data
                    buf += b"\n"
                    reply_bytes += len(data)
                    replies += 1
                else:
                    buf += it
                    conn.queued_events -= 1
            if conn.missed_events and not conn.queued_events:
                buf += event_line(
                    journal.committed_seq,
                    iso_ts(gateway.now()),
                    b'{"type":"lagged","missed":' + str(conn.missed_events).encode() + b"}",
                )
                conn.missed_events = 0
            try:
                await stream.send_all(buf)
            finally:
                for _ in range(replies):
                    conn.slots.release()
                conn.sent(reply_bytes)
            sent = perf_counter()
            for it in items:
                if type(it) is tuple and it[2]:
                    observe(sent - it[2])
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        conn.read_scope.cancel()  # the peer is gone: stop reading its requests too
        conn.no_more_replies()
        async for _ in conn.out_recv:  # drain so nothing blocks on us
            pass
    finally:
        done.set()


def prepare_socket_path(path: Path) -> None:
    """Remove a stale socket left by a crash; raise SocketInUse if a live daemon answers on it."""
    if not path.exists() and not path.is_symlink():
        path.parent.mkdir(parents=True, exist_ok=True)
        return
    probe = stdsocket.socket(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM)
    try:
        probe.connect(os.fspath(path))
    except (ConnectionRefusedError, FileNotFoundError):
        path.unlink(missing_ok=True)
        log.info("stale_socket_removed", socket=str(path))
    else:
        raise SocketInUse(f"another backorder daemon is serving {path}")
    finally:
        probe.close()


async def serve(
    path: Path,
    gateway: Gateway,
    nursery: trio.Nursery,
    role: str | None = None,
    *,
    task_status=trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve a Unix socket, its connections in ``nursery``; ``role`` None decides each
    peer's role from its credentials (``[access]``), ``"read"`` makes every client of this
    socket read-only. Raises SocketInUse when another daemon serves ``path``."""
    prepare_socket_path(path)
    sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    await sock.bind(os.fspath(path))
    acc = gateway.settings.access
    gid = access.socket_group(acc)
    if gid is not None:
        os.chown(path, -1, gid)
    # a socket file's inode, once at start (and below at stop): no disk wait worth a thread
    path.chmod(int(acc.socket_mode, 8))  # noqa: ASYNC240 - default 0660: access by group membership
    sock.listen(128)
    listener = trio.SocketListener(sock)
    try:
        await serve_until_drain(
            gateway,
            listeners=[listener],
            nursery=nursery,
            handler=lambda stream: handle_client(stream, gateway, role),
            task_status=task_status,
        )
    finally:
        path.unlink(missing_ok=True)  # noqa: ASYNC240


async def serve_until_drain(gateway: Gateway, *, listeners: list, nursery: trio.Nursery, handler, task_status) -> None:
    """Accept on ``listeners`` until the daemon drains: a drain cancels the accept loops at
    once (new clients are refused), while the connections, in ``nursery`` (the daemon's
    connection nursery), finish what they were asked."""
    with trio.CancelScope() as accepting:
        gateway.accept_scopes.append(accepting)
        await trio.serve_listeners(handler, listeners, handler_nursery=nursery, task_status=task_status)
