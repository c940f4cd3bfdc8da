"""The driver of the grammar fuzzer: sends what ``fuzz_grammar`` generates to a real daemon
(its Unix socket, its TCP listener, its webhook listener), checks every reply, and ends each
run with ``kill -9`` and a restart that must replay the journal.

Used by ``tests/integration/test_fuzz.py`` (small, for CI) and ``bench/fuzz.py`` (a million
messages). The daemon is reached through a ``Target`` (its socket path, ports, process and
how to start it), so both can bring their own launcher.

What counts as a finding (each kept with the payloads last sent, most recent last):
the daemon process exits; a restart after ``kill -9`` fails (the journal does not replay);
a connection closed without a limit's error line; a reply that is not a JSON object with
``ok`` (and ``error.code``/``message`` when false); an error code that docs/protocol.md
does not document; ``internal_error`` (a bug, even when contained); an HTTP 5xx or a
listener that does not answer; ``health`` not answering; an SKU with negative stock or more
allocated than on hand; an SKU whose stock differs after the restart.
"""

from __future__ import annotations

import collections
import json
import re
import selectors
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
from fuzz_grammar import CHANNELS, SKUS, Grammar, SocketLine, TcpSession, WebhookPost

from backorder.daemon.tcp import MAX_AUTH_LINE, hash_token

ROOT = Path(__file__).resolve().parent.parent
TOKENS = {"write": "bo_fuzz_write_token_0123456789abcdef", "read": "bo_fuzz_read_token_0123456789abcdef"}
SECRET_ENV = "BO_FUZZ_SECRET"
SECRET = "fuzz-secret-\u00fc"
LINE_LIMIT = 65536  # [limits] line_bytes: small, so that the too-long path is cheap to reach
BODY_LIMIT = 65536  # [intake] max_body_bytes
# Codes a connection is closed with (the line's id is null); every other error is a reply.
DISCONNECT_CODES = frozenset(
    {"line_too_long", "too_many_inflight", "too_many_reply_bytes", "idle_timeout", "subscriber_overflow"}
)
HTTP_STATUSES = frozenset({200, 400, 401, 403, 404, 405, 408, 413, 422, 503})  # docs/intake.md
_dec = msgspec.json.Decoder()


def free_port() -> int:
    """A port free at this instant (the daemon binds it a moment later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(tcp_port: int) -> str:
    """The daemon's configuration for a fuzz run, without a ``[daemon]`` table (the caller
    adds its own): priority allocation (ranks are computed), small line and body limits,
    a TCP listener with a write and a read token, the webhook listener on a free port and
    every intake channel signed with one secret (from the environment, ``SECRET_ENV``)."""
    clients = "".join(
        f'[tcp.clients.fuzz_{role}]\ntoken_sha256 = "{hash_token(tok)}"\nrole = "{role}"\n\n'
        for role, tok in TOKENS.items()
    )
    channels = "".join(f'[channels.{ch}]\nsecret_env = "{SECRET_ENV}"\n\n' for ch in CHANNELS)
    return f"""
[allocation]
mode = "priority"

[logging]
requests = "none"

[limits]
line_bytes = {LINE_LIMIT}

[tcp]
port = {tcp_port}
auth_timeout_s = 2

{clients}
[intake]
listen = "127.0.0.1:0"
max_body_bytes = {BODY_LIMIT}

{channels}"""


def documented_codes() -> frozenset[str]:
    """The codes of the "Error codes" table of docs/protocol.md."""
    text = (ROOT / "docs" / "protocol.md").read_text()
    table = text.split("## Error codes", 1)[1]
    return frozenset(re.findall(r"^\| `([a-z0-9_]+)` \|", table, re.M))


@dataclass
class Target:
    """How the driver reaches and restarts one daemon."""

    socket: Path
    tcp_port: int
    proc: Callable[[], object]  # the current subprocess.Popen
    start: Callable[[], None]  # start (again); raises if it does not become ready
    kill9: Callable[[], None]
    log_tail: Callable[[], str]
    http_port: int = 0


@dataclass
class Finding:
    kind: str
    detail: str
    payloads: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"{self.kind}: {self.detail}"] + [f"    sent: {pl}" for pl in self.payloads]
        return "\n".join(lines)


def show(data: bytes, limit: int = 300) -> str:
    """A payload as a printable Python bytes literal, long ones cut with their length."""
    if len(data) <= limit:
        return repr(data)
    return f"{data[:limit]!r}... ({len(data)} bytes)"


class _Conn:
    __slots__ = ("buf", "closing", "last", "out", "outstanding", "pending", "sock")

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(path))
        self.sock.setblocking(False)
        self.buf = b""
        self.out = bytearray()
        self.outstanding = 0
        self.pending: dict[int, bytes] = {}  # tracked id -> line, until its reply
        self.closing = False  # an oversize line went out, or a limit's error line came
        self.last = b""  # the last line received (said in a finding about the close)


class Fuzzer:
    """One run: ``run(n)`` sends ``n`` grammar messages, then ``finish()`` checks, kills -9,
    restarts and checks again. ``stop_on_finding``: raise at the first problem (tests);
    otherwise a daemon that exits is restarted (and its journal replayed) and the run goes on,
    so one bug does not hide the next (bench)."""

    def __init__(
        self,
        target: Target,
        seed: int,
        *,
        conns: int = 4,
        window: int = 64,
        stop_on_finding: bool = True,
        on_exit_restart: Callable[[], None] | None = None,
        mix: dict[str, float] | None = None,
    ) -> None:
        self.t = target
        self.seed = seed
        self.grammar = Grammar(
            seed,
            tokens=TOKENS,
            secrets={ch: SECRET for ch in CHANNELS},
            line_limit=LINE_LIMIT,
            body_limit=BODY_LIMIT,
            mix=mix,
        )
        self.n_conns = conns
        self.window = window
        self.stop_on_finding = stop_on_finding
        self.on_exit_restart = on_exit_restart
        self.codes = documented_codes()
        self.recent: collections.deque[str] = collections.deque(maxlen=40)
        self.findings: list[Finding] = []
        self.finding_counts: collections.Counter[str] = collections.Counter()
        self.counts: collections.Counter[str] = collections.Counter()  # what was sent
        self.replies: collections.Counter[str] = collections.Counter()  # "ok" or the error code
        self.kinds_sent: collections.Counter[str] = collections.Counter()
        self.http: collections.Counter[str] = collections.Counter()
        self.tcp: collections.Counter[str] = collections.Counter()
        self.internal_samples: list[str] = []
        self.daemon_exits = 0
        self.restarts_ok = 0
        self.unreplayable = 0
        self.rss: list[tuple[int, float]] = []  # (messages sent, MiB)
        self.kept: list[tuple[int, dict]] = []  # (messages sent, orders / SKUs / dead letters held)
        self.sel = selectors.DefaultSelector()
        self.conns: list[_Conn] = []
        self._rr = 0
        self._http_sock: socket.socket | None = None
        self._http_sent: collections.deque[bytes] = collections.deque(maxlen=4)  # on the open connection
        self.state_before: dict | None = None
        self.seconds = 0.0

    # --- findings ---------------------------------------------------------------------

    def finding(self, kind: str, detail: str, payloads: list[str] | None = None) -> None:
        f = Finding(kind, detail, payloads if payloads is not None else list(self.recent)[-12:])
        self.finding_counts[kind] += 1
        if self.finding_counts[kind] <= 5:  # a bug that repeats is told by its count
            self.findings.append(f)
        if self.stop_on_finding:
            raise FuzzFailure(self, f)

    def _note(self, surface: str, data: bytes) -> None:
        self.recent.append(f"[{surface}] {show(data)}")

    # --- the daemon ---------------------------------------------------------------------

    def _alive(self) -> bool:
        return self.t.proc().poll() is None

    def _check_alive(self, grace: float = 0.0) -> bool:
        """False (after recording it, and restarting when the run goes on) if the daemon exited.
        ``grace``: after something went wrong on a connection, a daemon that is exiting gets
        that long to be seen exited (a crash closes its sockets before the process ends)."""
        if grace:
            try:
                self.t.proc().wait(grace)
            except subprocess.TimeoutExpired:
                pass
        if self._alive():
            return True
        self.daemon_exits += 1
        rc = self.t.proc().poll()
        payloads = list(self.recent)[-12:]
        tail = self.t.log_tail()
        self._close_all()
        self.finding("daemon_exit", f"exit code {rc}, {_last_exception(tail)}; log tail:\n{tail}", payloads)
        self._restart()
        return False

    def _restart(self) -> None:
        try:
            self.t.start()
        except Exception as exc:
            self.unreplayable += 1
            self.finding("unreplayable_journal", f"restart failed, {_last_exception(str(exc))}: ...{str(exc)[-1500:]}")
            if self.on_exit_restart is None:
                raise
            self.on_exit_restart()  # a fresh journal, so that the run can go on
            self.t.start()
        else:
            self.restarts_ok += 1
        self._open_all()

    def rss_mib(self) -> float:
        with open(f"/proc/{self.t.proc().pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def call(self, op: str, timeout: float = 60.0, **fields) -> dict:
        """One request on a fresh connection; its reply (a finding when there is none)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(self.t.socket))
            s.sendall(msgspec.json.encode({"op": op, "id": 0, **fields}) + b"\n")
            with s.makefile("rb") as f:
                while True:
                    line = f.readline()
                    if not line:
                        raise ConnectionError(f"{op}: connection closed without a reply")
                    reply = json.loads(line)
                    if "ok" in reply:
                        return reply

    def health(self) -> None:
        try:
            reply = self.call("health", timeout=30)
            if reply.get("ok") is not True or reply["result"].get("status") != "serving":
                self.finding("health", f"health replied {reply}")
        except (OSError, ValueError) as exc:
            if self._check_alive(grace=3):
                self.finding("health", f"health did not answer: {exc!r}")

    def http_port(self) -> int:
        return self.call("health")["result"]["intake"]["http_port"]

    # --- the Unix socket connections ----------------------------------------------------

    def _open_all(self) -> None:
        self._close_all()
        self.t.http_port = self.http_port()
        for _ in range(self.n_conns):
            self._open_one()

    def _open_one(self) -> _Conn:
        c = _Conn(self.t.socket)
        self.conns.append(c)
        self.sel.register(c.sock, selectors.EVENT_READ, c)
        return c

    def _close_all(self) -> None:
        for c in self.conns:
            self.sel.unregister(c.sock)
            c.sock.close()
        self.conns = []
        if self._http_sock is not None:
            self._http_sock.close()
            self._http_sock = None

    def _drop(self, c: _Conn) -> None:
        self.sel.unregister(c.sock)
        c.sock.close()
        self.conns.remove(c)
        self.counts["replies_lost_to_disconnect"] += c.outstanding

    def _room(self) -> _Conn | None:
        n = len(self.conns)
        for i in range(n):
            c = self.conns[(self._rr + i) % n]
            if not c.closing and c.outstanding < self.window:
                self._rr = (self._rr + i + 1) % n
                return c
        return None

    def _queue(self, c: _Conn, sl: SocketLine) -> None:
        c.out += sl.line + b"\n"
        c.outstanding += sl.replies
        if sl.tracked is not None:
            c.pending[sl.tracked] = sl.line
        if sl.oversize:
            c.closing = True  # the daemon answers line_too_long and closes: nothing more on it
        self.counts["socket_lines"] += 1
        self.kinds_sent[sl.kind] += 1
        self._note("socket", sl.line)

    def _pump(self, timeout: float) -> None:
        for c in list(self.conns):
            if c.out and c in self.conns:  # a restart (after an exit) replaces every connection
                try:
                    n = c.sock.send(c.out)
                    del c.out[:n]
                except BlockingIOError:
                    pass
                except (BrokenPipeError, ConnectionResetError):
                    self._eof(c)
        busy = any(c.out for c in self.conns)
        for key, _ in self.sel.select(0 if busy else timeout):
            c = key.data
            if c not in self.conns:
                continue  # dropped by an earlier line of this round
            try:
                data = c.sock.recv(1 << 20)
            except ConnectionResetError:
                data = b""
            if not data:
                self._eof(c)
                continue
            data = c.buf + data
            lines = data.split(b"\n")
            c.buf = lines.pop()
            for line in lines:
                self._reply(c, line)
            if lines:
                c.last = lines[-1]

    def _eof(self, c: _Conn) -> None:
        if c not in self.conns:
            return
        self._drop(c)
        if not self._check_alive(grace=0 if c.closing else 3):
            return
        if not c.closing:
            self.finding(
                "connection_closed",
                f"the daemon closed a connection with {c.outstanding} replies owed "
                f"and no limit's error line; the last line was {show(c.last)}",
            )
        try:
            self._open_one()
        except OSError as exc:
            if self._check_alive(grace=5):
                self.finding("connect", f"the socket refuses a new connection: {exc!r}")

    def _decode(self, line: bytes):
        """A line from the daemon, decoded; None (a finding) when it is not UTF-8 JSON."""
        try:
            return _dec.decode(line)
        except UnicodeDecodeError as exc:
            self.finding("bad_reply", f"not UTF-8 ({exc}): {show(line)}")
        except msgspec.DecodeError as exc:
            try:  # an echoed id such as 1e400 is JSON, but past what msgspec decodes
                reply = json.loads(line)
            except ValueError:
                self.finding("bad_reply", f"not JSON ({exc}): {show(line)}")
            else:
                self.counts["replies_past_msgspec_range"] += 1
                return reply
        return None

    def _reply(self, c: _Conn, line: bytes) -> None:
        reply = self._decode(line)
        if reply is None:
            c.outstanding -= 1
            return
        if not isinstance(reply, dict):
            self.finding("bad_reply", f"not an object: {show(line)}")
            return
        if "ok" not in reply:
            if "event" in reply and "seq" in reply:
                self.counts["event_lines"] += 1
            else:
                self.finding("bad_reply", f"neither a reply nor an event: {show(line)}")
            return
        c.outstanding -= 1
        rid = reply.get("id")
        sent = c.pending.pop(rid, None) if type(rid) is int else None
        code = self._check_reply(reply, line, sent)
        if rid is None and (code in DISCONNECT_CODES or code == "internal_error"):
            c.closing = True  # a limit broken, or a connection's failure contained: it is closed

    def _check_reply(self, reply: dict, line: bytes, sent: bytes | None) -> str:
        ok = reply.get("ok")
        if ok is True:
            if "result" not in reply:
                self.finding("bad_reply", f"ok without result: {show(line)}")
            self.replies["ok"] += 1
            return "ok"
        err = reply.get("error")
        if (
            ok is not False
            or not isinstance(err, dict)
            or not isinstance(err.get("code"), str)
            or not isinstance(err.get("message"), str)
        ):
            self.finding("bad_reply", f"malformed reply: {show(line)}")
            return "-"
        code = err["code"]
        self.replies[code] += 1
        who = [f"[reply to] {show(sent)}"] if sent is not None else None
        if code not in self.codes:
            self.finding("undocumented_code", f"{code!r} is not in docs/protocol.md: {show(line)}", who)
        if code == "internal_error":
            if len(self.internal_samples) < 20:
                self.internal_samples.append(f"{err['message'][:300]} <- {show(sent) if sent else '(untracked)'}")
            self.finding("internal_error", err["message"][:500], who)
        return code

    # --- TCP -------------------------------------------------------------------------------

    def _tcp(self, s: TcpSession) -> None:
        self.counts["tcp_sessions"] += 1
        self._note("tcp-auth", s.auth)
        try:
            sock = socket.create_connection(("127.0.0.1", self.t.tcp_port), timeout=30)
        except OSError as exc:
            if self._check_alive(grace=3):
                self.finding("tcp_connect", repr(exc))
            return
        with sock, sock.makefile("rb") as f:
            try:
                self._tcp_session(sock, f, s)
            except (OSError, ValueError) as exc:
                if self._check_alive(grace=3):
                    self.finding("tcp", f"{exc!r} (auth line {show(s.auth)})")

    def _tcp_session(self, sock: socket.socket, f, s: TcpSession) -> None:
        lines = b"".join(sl.line + b"\n" for sl in s.lines)
        try:
            sock.sendall(s.auth + (lines if s.same_write else b""))
            if s.half_close:
                sock.shutdown(socket.SHUT_WR)
            first = f.readline()
        except OSError:  # the daemon refused and closed while we were still writing
            first = b""
        if not first:
            if len(s.auth) > MAX_AUTH_LINE:
                # refused unread: the reset may overtake the ``unauthorized`` line
                self.tcp["reset:auth_line_too_long"] += 1
                return
            if self._check_alive(grace=3):
                self.finding("tcp", f"no reply to the auth line {show(s.auth)}")
            return
        reply = self._decode(first)
        if reply is None:
            return
        if s.token_role is None:
            code = (reply.get("error") or {}).get("code") if isinstance(reply, dict) else None
            self.tcp[f"refused:{code}"] += 1
            if code != "unauthorized":
                self.finding("tcp", f"auth line {show(s.auth)} answered {show(first)}")
            return
        if not (isinstance(reply, dict) and reply.get("ok") is True and reply["result"].get("role") == s.token_role):
            self.finding("tcp", f"valid token answered {show(first)}")
            return
        self.tcp[f"authenticated:{s.token_role}"] += 1
        if not s.same_write and lines:
            sock.sendall(lines)
        owed = sum(sl.replies for sl in s.lines)
        for sl in s.lines:
            self.counts["tcp_lines"] += 1
            self.kinds_sent[sl.kind] += 1
            self._note("tcp", sl.line)
        while owed:
            line = f.readline()
            if not line:
                if self._check_alive(grace=3):
                    self.finding("tcp", f"connection closed with {owed} replies owed")
                return
            reply = self._decode(line)
            if isinstance(reply, dict) and "ok" not in reply and "event" in reply:
                continue
            owed -= 1
            if reply is None:
                continue
            if not isinstance(reply, dict):
                self.finding("bad_reply", f"tcp: not an object: {show(line)}")
                continue
            self._check_reply(reply, line, None)

    # --- HTTP --------------------------------------------------------------------------

    def _webhook(self, w: WebhookPost) -> None:
        self.counts["webhook_posts"] += 1
        self.kinds_sent[f"webhook:{w.kind}"] += 1
        head = [f"{w.method} {w.path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(w.body)}"]
        head += [f"{k}: {v}" for k, v in w.headers]
        data = ("\r\n".join(head) + "\r\n\r\n").encode("utf-8", "surrogateescape") + w.body
        self._note("http", data)
        for attempt in (0, 1):  # a kept-alive connection the server closed meanwhile: once more
            fresh = self._http_sock is None
            try:
                if fresh:
                    self._http_sock = socket.create_connection(("127.0.0.1", self.t.http_port), timeout=30)
                    self._http_sent.clear()
                self._http_sent.append(data)
                self._http_sock.sendall(data)
                status, headers, body = _http_response(self._http_sock)
                break
            except (OSError, ValueError) as exc:
                if self._http_sock is not None:
                    self._http_sock.close()
                    self._http_sock = None
                if not self._check_alive(grace=3 if fresh or attempt else 0):
                    return
                if isinstance(exc, TimeoutError):  # not a connection closed meanwhile: a request left unanswered
                    self.finding(
                        "http_timeout",
                        f"no response in 30 s ({'fresh' if fresh else 'kept-alive'} "
                        "connection; what it carried, oldest first)",
                        [f"[http] {show(sent, 3000)}" for sent in self._http_sent],
                    )
                    return
                if fresh or attempt:
                    self.finding("http", f"no response: {exc!r}")
                    return
        self.http[str(status)] += 1
        if headers.get("connection", "").lower() == "close":
            self._http_sock.close()
            self._http_sock = None
        if status not in HTTP_STATUSES:  # the whole request: a 5xx is to be replayed exactly
            self.finding("http_status", f"{status}: {show(body)}", [f"[http] {show(data, 100_000)}"])
        elif headers.get("content-type", "").startswith("application/json"):
            try:
                doc = _dec.decode(body)
            except msgspec.DecodeError:
                self.finding("http_body", f"{status} with a body that is not JSON: {show(body)}")
                return
            if (
                isinstance(doc, dict)
                and status == 200
                and doc.get("outcome") not in ("accepted", "duplicate", "updated", "ignored")
            ):
                self.finding("http_body", f"200 with {show(body)}")

    # --- the run ------------------------------------------------------------------------

    def setup(self) -> None:
        """The SKUs the grammar works on: a policy each and stock to allocate."""
        for sku in SKUS:
            for op, fields in (
                ("sku.configure", {"reorder_point": 5, "order_up_to": 40}),
                ("stock.receive", {"qty": 50}),
            ):
                reply = self.call(op, sku=sku, **fields)
                assert reply["ok"], reply

    def run(
        self,
        messages: int,
        progress: Callable[[int], None] | None = None,
        rss_samples: int = 10,
        keep: Callable[[SocketLine | TcpSession | WebhookPost], bool] | None = None,
    ) -> None:
        """Send ``messages`` grammar messages; with ``keep``, only those it accepts (the others
        are drawn and dropped). Called again, the run goes on: counts and time add up."""
        self._open_all()
        self.health()
        t0 = time.perf_counter()
        self.rss.append((self.counts["messages"], self.rss_mib()))
        step = max(1, messages // rss_samples)
        held: SocketLine | None = None
        sent = 0
        while sent < messages or held is not None:
            for _ in range(64):
                if held is None:
                    if sent >= messages:
                        break
                    msg = self.grammar.next()
                    while keep is not None and not keep(msg):
                        msg = self.grammar.next()
                    sent += 1
                    if sent % step == 0:
                        self._sample(sent, progress)
                    if isinstance(msg, TcpSession):
                        self._tcp(msg)
                        continue
                    if isinstance(msg, WebhookPost):
                        self._webhook(msg)
                        continue
                    held = msg
                c = self._room()
                if c is None:
                    break
                self._queue(c, held)
                held = None
            self._pump(0.05)
            if not self._check_alive():
                held = None
        self._drain()
        self.seconds += time.perf_counter() - t0
        self.counts["messages"] += sent
        self.rss.append((self.counts["messages"], self.rss_mib()))

    def _sample(self, sent: int, progress) -> None:
        sent += self.counts["messages"]  # of the runs before this one
        self.rss.append((sent, self.rss_mib()))
        self.health()
        try:  # what the daemon legitimately keeps, next to its RSS
            counts = self.call("stats", timeout=30)["result"]["counts"]
            self.kept.append((sent, {k: counts.get(k) for k in ("orders", "skus", "dead_letters")}))
        except (OSError, ValueError, KeyError):
            self._check_alive(grace=3)
        if progress is not None:
            progress(sent)

    def _drain(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while any(c.outstanding > 0 or c.out for c in self.conns):
            if time.monotonic() > deadline:
                owed = sum(c.outstanding for c in self.conns)
                self.finding("no_reply", f"{owed} replies still owed after {timeout:g} s")
                return
            self._pump(0.05)
            self._check_alive()

    # --- the end of every run: state, kill -9, replay -------------------------------------

    def state(self) -> dict[str, tuple[int, int, int]]:
        """Per SKU (on_hand, allocated, backordered), with the invariants checked."""
        out: dict[str, tuple[int, int, int]] = {}
        offset = 0
        while True:
            reply = self.call("skus.list", limit=10000, offset=offset)
            skus = reply["result"]["skus"]
            for s in skus:
                out[s["sku"]] = (s["on_hand"], s["allocated"], s["backordered"])
                if not (s["on_hand"] >= 0 and 0 <= s["allocated"] <= s["on_hand"] and s["backordered"] >= 0):
                    self.finding("invariant", f"SKU {s['sku']!r}: {s}", [])
            if len(skus) < 10000:
                return out
            offset += 10000

    def finish(self) -> None:
        """Health, the state, ``kill -9``, a restart that must replay the journal, health, the
        same state again."""
        self.health()
        before = self.state()
        self._close_all()
        self.t.kill9()
        try:
            self.t.start()
        except Exception as exc:
            self.unreplayable += 1
            self.finding(
                "unreplayable_journal",
                f"restart after kill -9 failed, {_last_exception(str(exc))}: ...{str(exc)[-1500:]}",
            )
            return
        self.restarts_ok += 1
        self.health()
        after = self.state()
        changed = {
            k: (before.get(k), after.get(k)) for k in before.keys() | after.keys() if before.get(k) != after.get(k)
        }
        if changed:
            sample = dict(list(changed.items())[:10])
            self.finding("state_changed", f"{len(changed)} SKUs differ after kill -9 and restart: {sample}", [])
        self.counts["skus_at_end"] = len(after)

    def report(self) -> dict:
        rss = [m for _, m in self.rss]
        return {
            "seed": self.seed,
            "messages": self.counts["messages"],
            "sent": {k: v for k, v in self.counts.items() if k != "messages"},
            "seconds": round(self.seconds, 1),
            "msgs_per_s": round(self.counts["messages"] / self.seconds) if self.seconds else None,
            "daemon_exits": self.daemon_exits,
            "restarts_ok": self.restarts_ok,
            "unreplayable_journals": self.unreplayable,
            "rss_start_mib": round(rss[0], 1) if rss else None,
            "rss_end_mib": round(rss[-1], 1) if rss else None,
            "rss_max_mib": round(max(rss), 1) if rss else None,
            "rss_growth_mib": round(rss[-1] - rss[0], 1) if rss else None,
            # once the finite pools are used up, a correct daemon's state stops growing
            "rss_growth_second_half_mib": round(rss[-1] - rss[len(rss) // 2], 1) if rss else None,
            "rss_samples": [(n, round(m, 1)) for n, m in self.rss],
            "state_samples": self.kept,
            "reply_codes": dict(self.replies.most_common()),
            "http_status": dict(self.http.most_common()),
            "tcp": dict(self.tcp.most_common()),
            "kinds_sent": dict(self.kinds_sent.most_common()),
            "internal_error_samples": self.internal_samples,
            "finding_counts": dict(self.finding_counts),
            "findings": [str(f) for f in self.findings],
        }


def creates_nothing(msg: SocketLine | TcpSession | WebhookPost) -> bool:
    """A message after which a correct daemon keeps nothing new: a socket line of a read op or
    one that does not decode, a TCP session without a valid token, a webhook post not signed
    right. A stream of these must leave RSS flat, whatever the state already held."""
    if isinstance(msg, SocketLine):
        return not msg.write
    if isinstance(msg, TcpSession):
        return msg.token_role is None
    return not msg.signed


class FuzzFailure(AssertionError):
    """A finding in a run that stops at the first one (the test)."""

    def __init__(self, fuzzer: Fuzzer, finding: Finding) -> None:
        super().__init__(
            f"seed {fuzzer.seed}, after {sum(fuzzer.counts[k] for k in ('socket_lines', 'tcp_sessions', 'webhook_posts'))} "
            f"messages: {finding}"
        )
        self.finding = finding


def _last_exception(log: str) -> str:
    """The last ``SomeError: message`` line of a traceback in the daemon's log."""
    found = re.findall(r"^[\s|+]*((?:[\w.]+)?(?:Error|Exception|Exit)\b:? .*)$", log, re.M)
    return found[-1][:300] if found else "no exception in the log"


def _http_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a response")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed in the body")
        body += chunk
    return status, headers, body[:length]
