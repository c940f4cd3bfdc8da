"""Shared fixtures. Tests under tests/actors run on trio (marked by folder, see
tests/actors/conftest.py); integration tests drive the real daemon process over its
real socket with the blocking client; unit tests are plain sync tests."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from backorder.client import Client


class DaemonProcess:
    """A real ``backorder serve`` process on a temporary socket and SQLite file."""

    def __init__(self, workdir: Path, config: str = "") -> None:
        self.workdir = workdir
        # AF_UNIX paths are limited to ~107 bytes: keep the socket in a short temp dir.
        self.sockdir = Path(tempfile.mkdtemp(prefix="bo", dir="/tmp"))
        self.socket = self.sockdir / "d.sock"
        self.db = workdir / "journal.db"
        self.config = workdir / "backorder.toml"
        self.log = workdir / "daemon.log"
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.env: dict[str, str] = {}  # extra environment (e.g. NOTIFY_SOCKET)

    def start(self, timeout: float = 20.0) -> None:
        self.starts += 1
        logf = open(self.log, "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "backorder", "serve", "--config", str(self.config),
             "--db", str(self.db), "--socket", str(self.socket)],
            stdout=logf, stderr=subprocess.STDOUT, cwd=self.workdir,
            env={**os.environ, **self.env} if self.env else None,
        )
        logf.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                with Client(str(self.socket), timeout=5) as c:
                    if c.call("health")["status"] == "serving":
                        return
            except (OSError, ConnectionError):
                time.sleep(0.02)
        raise RuntimeError("daemon did not become ready:\n" + self.log.read_text()[-3000:])

    def client(self, timeout: float = 30.0) -> Client:
        return Client(str(self.socket), timeout=timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        return rc

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        shutil.rmtree(self.sockdir, ignore_errors=True)


@contextlib.contextmanager
def _daemon_factory(new_workdir):
    """``make(config_toml, start=True)`` starts a daemon in a fresh folder; all are killed
    when the block ends."""
    made: list[DaemonProcess] = []

    def make(config: str = "", start: bool = True) -> DaemonProcess:
        d = DaemonProcess(new_workdir(), config)
        d.config.write_text(config)
        made.append(d)
        if start:
            d.start()
        return d

    try:
        yield make
    finally:
        for d in made:
            d.cleanup()


@pytest.fixture
def make_daemon(tmp_path):
    """Factory: ``make_daemon(config_toml)`` starts a daemon; all are killed after the test."""
    numbers = itertools.count()

    def new_workdir() -> Path:
        path = tmp_path / f"d{next(numbers)}"
        path.mkdir()
        return path

    with _daemon_factory(new_workdir) as make:
        yield make


@pytest.fixture(scope="module")
def make_module_daemon(tmp_path_factory):
    """The same factory for daemons shared by the tests of one module (many read-only or
    refused requests, where a daemon per test would only cost start-up time)."""
    with _daemon_factory(lambda: tmp_path_factory.mktemp("shared")) as make:
        yield make


@pytest.fixture
def daemon(make_daemon):
    return make_daemon()


@pytest.fixture
def client(daemon):
    with daemon.client() as c:
        yield c


os.environ.setdefault("PYTHONUNBUFFERED", "1")
