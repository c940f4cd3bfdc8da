"""Fixtures of the integration tests: a daemon on a simulated clock, so that every date
the engine computes is fixed. The daemon fixtures themselves are in tests/conftest.py;
request helpers are in bo_support.py."""

from __future__ import annotations

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
def shared_daemon(make_module_daemon):
    """A simulated-clock daemon shared by the tests of one module."""
    return make_module_daemon(SIM_CONFIG)
