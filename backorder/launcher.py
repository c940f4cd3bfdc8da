"""Start, stop and wait for a real ``backorder serve`` process.

One launcher for everything that runs the daemon from outside: ``backorder demo``, the
tests (``tests/conftest.py``) and the benchmarks (``bench/common.py``). It only spawns
``python -m backorder serve --config ... --db ... --socket ...`` and talks to it through
the public socket with the blocking ``Client``: it imports nothing of the daemon (no
trio), so a client-side program pays nothing for it.

``wait_until`` is the one polling helper of the tree: a launcher waiting for ``health``,
a test waiting for a log line, a benchmark waiting for the journal to settle.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from backorder.client import CallError, Client

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """``wait_until`` ran out of time. An AssertionError, so that a test that waits for a
    marker fails like a failed ``assert`` (with the message and the last value seen)."""

    def __init__(self, message: str, last: object) -> None:
        super().__init__(f"{message} (last value: {last!r})")
        self.last = last


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.02,
    message: str | Callable[[], str] = "condition not reached",
    *,
    ignore: type[BaseException] | tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``predicate`` every ``interval`` seconds until it returns something truthy, and
    return that value. After ``timeout`` seconds raise ``WaitTimeout`` with ``message`` and
    the last value returned, or the last exception of a type in ``ignore`` (those count as
    "not yet", e.g. ``OSError`` while a socket is not there yet). Any other exception
    propagates at once, so a predicate can fail fast (a process that has exited).
    ``message`` may be a function, called at the timeout (e.g. for a log's tail then)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = predicate()
        except ignore as exc:
            last = exc
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise WaitTimeout(f"{text} (waited {timeout:g} s)", last)
        time.sleep(interval)


class DaemonStartError(RuntimeError):
    """The daemon exited or did not answer ``health`` in time; the message ends with the
    tail of its log."""


class Daemon:
    """A ``backorder serve`` process on its own config, journal, socket and log.

    ``workdir`` holds the config, the journal and the log (and is the process's working
    directory); the socket goes in a short folder of its own under /tmp (AF_UNIX paths are
    limited to ~107 bytes, and a pytest tmp_path is longer) unless ``socket`` is given.
    The log is appended to, so it keeps every run of a restarted daemon. ``env`` holds
    extra environment variables for the next start (e.g. NOTIFY_SOCKET); ``python_args``
    go between the interpreter and ``-m`` (a profiler, ``-X importtime``); with
    ``new_session`` the daemon gets its own process group, so a Ctrl-C in the terminal
    reaches only the parent.
    """

    ready_interval = 0.02  # between two health probes while starting

    def __init__(
        self,
        workdir: Path,
        *,
        config: Path | None = None,
        db: Path | None = None,
        socket: Path | None = None,
        log: Path | None = None,
        env: Mapping[str, str] | None = None,
        python_args: Sequence[str] = (),
        new_session: bool = False,
    ) -> None:
        self.workdir = Path(workdir)
        self.config = config or self.workdir / "backorder.toml"
        self.db = db or self.workdir / "journal.db"
        self.log = log or self.workdir / "daemon.log"
        self.sockdir: Path | None = None  # created here, so removed by cleanup()
        if socket is None:
            self.sockdir = Path(tempfile.mkdtemp(prefix="bo", dir="/tmp"))
            socket = self.sockdir / "d.sock"
        self.socket = socket
        self.env: dict[str, str] = dict(env or {})
        self.python_args = list(python_args)
        self.new_session = new_session
        self.proc: subprocess.Popen | None = None
        self.starts = 0  # how many times start() was called (a crash test counts recoveries)

    def command(self) -> list[str]:
        return [
            sys.executable,
            *self.python_args,
            "-m",
            "backorder",
            "serve",
            "--config",
            str(self.config),
            "--db",
            str(self.db),
            "--socket",
            str(self.socket),
        ]

    def start(self, timeout: float = 20.0) -> float:
        """Spawn the daemon and return once ``health`` answers "serving"; returns the
        seconds that took. Raises DaemonStartError (with the log's tail) if the process
        exits first or does not serve within ``timeout``."""
        self.starts += 1
        t0 = time.perf_counter()
        with open(self.log, "ab") as logf:
            self.proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env={**os.environ, **self.env} if self.env else None,
                start_new_session=self.new_session,
            )
        proc = self.proc

        def serving() -> bool:
            if proc.poll() is not None:
                raise DaemonStartError(f"daemon exited with {proc.returncode}:\n{self.log_tail()}")
            with Client(str(self.socket), timeout=5) as c:
                return c.call("health")["status"] == "serving"

        try:
            wait_until(serving, timeout, self.ready_interval, ignore=(OSError, CallError))
        except WaitTimeout:
            raise DaemonStartError(
                f'daemon did not become ready (health never answered "serving") within '
                f"{timeout:g} s:\n{self.log_tail()}"
            ) from None
        return time.perf_counter() - t0

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def client(self, timeout: float = 30.0) -> Client:
        return Client(str(self.socket), timeout=timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0, *, kill_on_timeout: bool = False) -> int | None:
        """Send ``sig`` (a graceful drain for SIGTERM) and wait for the exit code. If the
        process outlives ``timeout``: SIGKILL with ``kill_on_timeout``, else TimeoutExpired.
        None if it was never started."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            if not kill_on_timeout:
                raise
            self.proc.kill()
            return self.proc.wait(10)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def cleanup(self) -> None:
        """Kill the process if it still runs and remove the socket folder made here."""
        if self.alive():
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(10)
        if self.sockdir is not None:
            shutil.rmtree(self.sockdir, ignore_errors=True)
