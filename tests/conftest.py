"""Shared fixtures. Tests under tests/actors run on trio (marked by folder, see
tests/actors/conftest.py); integration tests drive the real daemon process over its
real socket with the blocking client; unit tests are plain sync tests."""

from __future__ import annotations

import contextlib
import itertools
import os
from pathlib import Path

import pytest

from backorder.launcher import Daemon


class DaemonProcess(Daemon):
    """A real ``backorder serve`` process on a temporary socket and SQLite file (the
    launcher shared with the demo and the benchmarks, see backorder/launcher.py): config
    ``workdir/backorder.toml``, journal ``workdir/journal.db``, log ``workdir/daemon.log``
    (appended across restarts), socket in a short folder under /tmp; ``env`` holds extra
    environment for the next start (e.g. NOTIFY_SOCKET); ``starts`` counts the starts."""

    def __init__(self, workdir: Path, config: str = "") -> None:
        super().__init__(workdir)


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
