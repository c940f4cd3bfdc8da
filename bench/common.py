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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


class Daemon:
    def __init__(self, config: str = "", db: Path | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="bobench"))
        self.sock = self.dir / "d.sock"
        self.db = db or self.dir / "bench.db"
        self.cfg = self.dir / "bench.toml"
        self.cfg.write_text('[daemon]\nlog_level = "warning"\n' + config)
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 600.0) -> float:
        """Start and return seconds until the socket answers health."""
        t0 = time.perf_counter()
        prefix = os.environ.get("BENCH_DAEMON_PREFIX", "").split()
        self.proc = subprocess.Popen(
            [sys.executable, *prefix, "-m", "backorder", "serve", "--config", str(self.cfg), "--db", str(self.db),
             "--socket", str(self.sock)],
            stdout=open(self.dir / "daemon.log", "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115
        while time.perf_counter() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError((self.dir / "daemon.log").read_text()[-2000:])
            try:
                if call(self.sock, {"op": "health"})["result"]["status"] == "serving":
                    return time.perf_counter() - t0
            except OSError:
                time.sleep(0.005)
        raise RuntimeError("daemon did not start")

    def rss_mib(self) -> float:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(120)

    def kill9(self) -> None:
        self.proc.kill()
        self.proc.wait()

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
        c = {"sock": s, "lines": lines, "next": 0, "done": 0, "buf": b"", "out": bytearray(),
             "sent_at": [], "errors": 0}
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
                chunk = c["lines"][c["next"]:due]
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

    return {"requests": total, "seconds": round(elapsed, 3), "req_per_s": round(total / elapsed),
            "errors": sum(c["errors"] for c in conns), "error_samples": error_samples, "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "max_ms": round(lat[-1] * 1000, 2)}


def machine() -> dict:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "cpu": _cpu_model()}


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
