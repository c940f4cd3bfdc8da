"""Fixtures of the integration tests: a daemon on a simulated clock, so that every date
the engine computes is fixed. The daemon fixtures themselves are in tests/conftest.py;
request helpers are in bo_support.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from bo_support import SIM_CONFIG


@pytest.fixture
def sim(make_daemon):
    """``sim(extra_toml)`` starts a daemon whose clock starts at 2024-03-01T00:00:00Z.
    ``extra`` may hold top-level keys and tables (but not ``[daemon]``)."""

    def make(extra: str = "", start: bool = True):
        return make_daemon(extra + "\n" + SIM_CONFIG, start=start)

    return make


@pytest.fixture
def sim_client(sim):
    with sim().client() as c:
        yield c


@pytest.fixture(scope="module")
def shared_daemon(request, tmp_path_factory):
    """A simulated-clock daemon shared by the tests of one module (for many read-only or
    refused requests, where a daemon per test would only cost start-up time)."""
    root = str(Path(__file__).parent.parent / "conftest.py")
    (plugin,) = [p for p in request.config.pluginmanager.get_plugins() if getattr(p, "__file__", None) == root]
    workdir = tmp_path_factory.mktemp("shared")
    d = plugin.DaemonProcess(workdir, SIM_CONFIG)
    d.config.write_text(SIM_CONFIG)
    try:
        d.start()
        yield d
    finally:
        d.cleanup()
