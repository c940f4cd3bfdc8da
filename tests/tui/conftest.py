"""TUI tests: the real Textual app (Pilot) against a real daemon process.

These tests run on asyncio (pytest-asyncio, strict mode: each async test is marked);
the daemon is the trio process started by the sync fixtures of tests/conftest.py.
The daemon's clock is simulated and stands (almost) still, so every date, waiting time
and id the screens show is the same on every run.
"""

from __future__ import annotations

import pytest
from tui_support import SITE, seed_site


@pytest.fixture
def site(make_daemon):
    d = make_daemon(SITE)
    with d.client() as c:
        seed_site(c)
    return d


@pytest.fixture(scope="module")
def shared_site(make_module_daemon):
    """One seeded daemon for a module of tests that only read (the snapshots)."""
    d = make_module_daemon(SITE)
    with d.client() as c:
        seed_site(c)
    return d
