"""TUI tests: the real Textual app (Pilot) against a real daemon process.

These tests run on asyncio (pytest-asyncio, strict mode: each async test is marked);
the daemon is the trio process started by the sync fixtures of tests/conftest.py.
The daemon's clock is simulated and stands (almost) still, so every date, waiting time
and id the screens show is the same on every run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tui_support import SITE, seed_site


@pytest.fixture
def site(make_daemon):
    d = make_daemon(SITE)
    with d.client() as c:
        seed_site(c)
    return d


@pytest.fixture(scope="module")
def shared_site(request, tmp_path_factory):
    """One seeded daemon for a module of tests that only read (the snapshots)."""
    root = str(Path(__file__).parent.parent / "conftest.py")
    (plugin,) = [p for p in request.config.pluginmanager.get_plugins() if getattr(p, "__file__", None) == root]
    workdir = tmp_path_factory.mktemp("site")
    d = plugin.DaemonProcess(workdir, SITE)
    d.config.write_text(SITE)
    try:
        d.start()
        with d.client() as c:
            seed_site(c)
        yield d
    finally:
        d.cleanup()
