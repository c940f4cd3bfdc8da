"""Shared helpers for the benchmarks: a real daemon process and a lean load client.

The load client pre-encodes every request and, per connection, keeps a window of
requests in flight (pipelining), counting reply lines; it spends very little CPU so the
2-core machine's time goes to the daemon. Latency is measured per request from the
moment its window is sent to the moment its reply line arrives.
"""

from __future__ import annotations

import json
import os
import platform
import selectors
import shutil
import socket
import tempfile
import time
from pathlib import Path

from backorder import launcher
from backorder.launcher import WaitTimeout, wait_until  # noqa: F401 - the benches import them from here

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


class Daemon(launcher.Daemon):
    """The shared launcher (backorder/launcher.py) in a temp folder of its own, at log
    level warning; ``BENCH_DAEMON_PREFIX`` (e.g. ``-X importtime``) goes between the
    interpreter and ``-m``. ``start()`` returns the seconds until ``health`` serves."""

    ready_interval = 0.005  # the start time is a measured figure (bench/restart.py)

    def __init__(self, config: str = "", db: Path | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="bobench"))
        super().__init__(
            self.dir,
            config=self.dir / "bench.toml",
            db=db or self.dir / "bench.db",
            socket=self.dir / "d.sock",
            python_args=os.environ.get("BENCH_DAEMON_PREFIX", "").split(),
        )
        self.sock, self.cfg = self.socket, self.config
        self.cfg.write_text('[daemon]\nlog_level = "warning"\n' + config)

    def start(self, timeout: float = 600.0) -> float:
        return super().start(timeout)

    def rss_mib(self) -> float:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def cpu_seconds(self) -> float:
        """User + system CPU time the daemon has used so far (all its threads)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.alive():
            super().stop(timeout=120)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def call(path, req: dict, timeout: float = 60.0) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(json.dumps({"id": 0, **req}).encode() + b"\n")
        f = s.makefile("rb")
        try:
            return json.loads(f.readline())
        finally:
            f.close()


def run_load(path, streams: list[list[bytes]], window: int = 256, rate: float | None = None) -> dict:
    """Drive several connections at once. ``streams[i]`` is the list of encoded request
    lines of connection i. With ``rate`` (requests/s over all connections) requests are
    released on a schedule (open loop); otherwise each connection keeps ``window`` in flight.
    Returns throughput, error count and latency percentiles (ms)."""
    sel = selectors.DefaultSelector()
    conns = []
    for lines in streams:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(str(path))
        s.setblocking(False)
        c = {
            "sock": s,
            "lines": lines,
            "next": 0,
            "done": 0,
            "buf": b"",
            "out": bytearray(),
            "sent_at": [],
            "errors": 0,
        }
        conns.append(c)
        sel.register(s, selectors.EVENT_READ, c)
    total = sum(len(x) for x in streams)
    lat: list[float] = []
    error_samples: list[str] = []
    t0 = time.perf_counter()
    per_conn_rate = rate / len(streams) if rate else None
    while sum(c["done"] for c in conns) < total:
        now = time.perf_counter()
        for c in conns:
            if per_conn_rate is not None:
                due = min(len(c["lines"]), int((now - t0) * per_conn_rate) + 1)
            else:
                due = min(len(c["lines"]), c["done"] + window)
            if c["next"] < due:
                chunk = c["lines"][c["next"] : due]
                c["out"] += b"".join(chunk)
                c["sent_at"].extend([now] * len(chunk))
                c["next"] = due
            if c["out"]:
                try:
                    n = c["sock"].send(c["out"])
                    del c["out"][:n]
                except BlockingIOError:
                    pass
        pending_out = any(c["out"] for c in conns)
        if pending_out:
            timeout = 0.0
        elif per_conn_rate is not None:
            timeout = 1.0 / rate  # next request of the schedule
        else:
            timeout = 0.1  # closed loop: only a reply frees the window
        for key, _ in sel.select(timeout=timeout):
            c = key.data
            data = c["sock"].recv(1 << 20)
            if not data:
                raise RuntimeError("daemon closed a connection")
            data = c["buf"] + data
            parts = data.split(b"\n")
            c["buf"] = parts.pop()
            t = time.perf_counter()
            for line in parts:
                if b'"ok":false' in line:
                    c["errors"] += 1
                    if len(error_samples) < 3:
                        error_samples.append(line.decode()[:300])
                lat.append(t - c["sent_at"][c["done"]])
                c["done"] += 1
    elapsed = time.perf_counter() - t0
    for c in conns:
        c["sock"].close()
    lat.sort()

    def pct(q: float) -> float:
        return round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 2)

    return {
        "requests": total,
        "seconds": round(elapsed, 3),
        "req_per_s": round(total / elapsed),
        "errors": sum(c["errors"] for c in conns),
        "error_samples": error_samples,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": round(lat[-1] * 1000, 2),
    }


def machine() -> dict:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def save(name: str, data: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps({"machine": machine(), **data}, indent=2) + "\n")
    print(json.dumps(data, indent=2))


# --- helpers shared by latency.py, fill.py, restart.py, memory.py, run_all.py -----------


def result_name(name: str, quick: bool) -> str:
    """``--quick`` runs save under NAME_quick so they never overwrite a real result."""
    return f"{name}_quick" if quick else name


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so ``finally`` blocks stop the daemon and remove the folder."""
    import signal

    def _exit(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)


class running:
    """A started ``Daemon`` that is stopped (killed if it will not stop) and whose temp
    folder is removed on exit, also when the benchmark fails."""

    def __init__(self, config: str = "", start: bool = True) -> None:
        self.daemon = Daemon(config)
        self.start = start

    def __enter__(self) -> Daemon:
        if self.start:
            try:
                self.daemon.start()
            except BaseException:
                hard_cleanup(self.daemon)
                raise
        return self.daemon

    def __exit__(self, *exc) -> None:
        hard_cleanup(self.daemon)


def hard_cleanup(d: Daemon) -> None:
    try:
        d.stop()
    except BaseException:
        if d.proc is not None and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()
    finally:
        shutil.rmtree(d.dir, ignore_errors=True)


def health(path) -> dict:
    return call(path, {"op": "health"})["result"]


def ok(path, req: dict, timeout: float = 60.0):
    """One request; its result, or RuntimeError with the daemon's error."""
    reply = call(path, req, timeout)
    if not reply.get("ok"):
        raise RuntimeError(f"{req.get('op')}: {reply.get('error')}")
    return reply["result"]


def wait_journal_idle(path, timeout: float = 600.0) -> dict:
    """Poll ``health`` until every appended event is durable (journal lag 0) twice in a row."""
    quiet = 0

    def idle_twice() -> dict | None:
        nonlocal quiet
        h = health(path)
        quiet = quiet + 1 if h["journal"]["lag"] == 0 else 0
        return h if quiet >= 2 else None

    return wait_until(idle_twice, timeout, message="journal did not become idle")


def encode(req: dict) -> bytes:
    return json.dumps(req, separators=(",", ":")).encode() + b"\n"


def run_open_loop(path, streams: list[list[bytes]], rate: float) -> dict:
    """Open-loop load with a fixed schedule and per-request latency matched by reply id.

    Request ``j`` of connection ``i`` (of ``n``) is due at ``t0 + (j * n + i) / rate``:
    the connections interleave into one stream of ``rate`` requests/s. Each request's
    ``"id"`` must be the integer ``j`` (its index in its connection's list). Latency is
    reply arrival minus the *scheduled* send time, so a late sender or a full socket
    counts against the daemon (no coordinated omission), and replies that come back out
    of order are still matched to the right request.

    Returns the offered rate actually achieved (releases per second, worst one-second
    window, worst release lag behind the schedule), throughput, errors, replies that
    arrived out of order, and latency percentiles (ms) overall and per op (first word of
    ``kinds[i][j]`` when streams carry ``(kind, line)`` pairs).
    """
    n = len(streams)
    kinds = [[k for k, _ in s] if s and isinstance(s[0], tuple) else None for s in streams]
    streams = [[ln for _, ln in s] if s and isinstance(s[0], tuple) else s for s in streams]
    sel = selectors.DefaultSelector()
    conns = []
    for i, lines in enumerate(streams):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(str(path))
        s.setblocking(False)
        c = {
            "i": i,
            "sock": s,
            "lines": lines,
            "next": 0,
            "done": 0,
            "buf": b"",
            "out": bytearray(),
            "lat": [0.0] * len(lines),
            "seen": 0,
            "max_id": -1,
        }
        conns.append(c)
        sel.register(s, selectors.EVENT_READ, c)
    total = sum(len(x) for x in streams)
    errors = reordered = released = 0
    error_samples: list[str] = []
    max_release_lag = 0.0
    blocked_sends = 0
    per_second: list[int] = []  # requests released in each second of the schedule
    done = 0
    t0 = time.perf_counter() + 0.005
    last_release = t0
    try:
        while done < total:
            now = time.perf_counter()
            due_total = min(total, int((now - t0) * rate) + 1) if now >= t0 else 0
            for c in conns:
                i = c["i"]
                due = min(len(c["lines"]), max(0, (due_total - i + n - 1) // n))
                if c["next"] < due:
                    j = c["next"]
                    lag = now - (t0 + (j * n + i) / rate)  # the oldest released now is the latest
                    max_release_lag = max(max_release_lag, lag)
                    c["out"] += b"".join(c["lines"][j:due])
                    sec = int(now - t0)
                    while len(per_second) <= sec:
                        per_second.append(0)
                    per_second[sec] += due - j
                    released += due - j
                    last_release = now
                    c["next"] = due
                if c["out"]:
                    try:
                        sent = c["sock"].send(c["out"])
                        del c["out"][:sent]
                    except BlockingIOError:
                        sent = 0
                    if c["out"]:
                        blocked_sends += 1
            if any(c["out"] for c in conns):
                timeout = 0.0005
            elif released < total:
                timeout = max(0.0, t0 + released / rate - time.perf_counter())
            else:
                timeout = 0.5
            for key, _ in sel.select(timeout=timeout):
                c = key.data
                data = c["sock"].recv(1 << 20)
                if not data:
                    raise RuntimeError("daemon closed a connection")
                t = time.perf_counter()
                data = c["buf"] + data
                parts = data.split(b"\n")
                c["buf"] = parts.pop()
                i = c["i"]
                for line in parts:
                    if not line.startswith(b'{"id":'):
                        continue  # an event line (never subscribed here) or a refusal
                    j = int(line[6 : line.index(b",", 6)])
                    if b'"ok":false' in line:
                        errors += 1
                        if len(error_samples) < 3:
                            error_samples.append(line.decode()[:300])
                    c["lat"][j] = t - (t0 + (j * n + i) / rate)
                    if j < c["max_id"]:
                        reordered += 1
                    c["max_id"] = max(c["max_id"], j)
                    c["done"] += 1
                    done += 1
    finally:
        for c in conns:
            c["sock"].close()
    end = time.perf_counter()

    def summary(lat: list[float]) -> dict:
        lat = sorted(lat)

        def pct(q: float) -> float:
            return round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 2)

        return {
            "count": len(lat),
            "p50_ms": pct(0.50),
            "p90_ms": pct(0.90),
            "p99_ms": pct(0.99),
            "p999_ms": pct(0.999),
            "max_ms": round(lat[-1] * 1000, 2),
        }

    all_lat = [x for c in conns for x in c["lat"]]
    by_kind: dict[str, list[float]] = {}
    for c in conns:
        ks = kinds[c["i"]]
        if ks is not None:
            for k, x in zip(ks, c["lat"], strict=True):
                by_kind.setdefault(k, []).append(x)
    full = per_second[:-1] if len(per_second) > 1 else per_second  # the last second is partial
    send_span = last_release - t0
    return {
        "requests": total,
        "rate_target": rate,
        "offered_per_s": round((total - 1) / send_span) if send_span > 0 else None,
        "offered_min_1s_window": min(full) if full else None,
        "offered_max_1s_window": max(full) if full else None,
        "max_release_lag_ms": round(max_release_lag * 1000, 2),
        "blocked_sends": blocked_sends,
        "seconds": round(end - t0, 3),
        "completed_per_s": round(total / (end - t0)),
        "errors": errors,
        "error_samples": error_samples,
        "replies_out_of_order": reordered,
        **{k: v for k, v in summary(all_lat).items() if k != "count"},
        "by_op": {k: summary(v) for k, v in by_kind.items()},
    }
