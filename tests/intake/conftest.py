"""A daemon with every channel configured and the webhook listener on a free port."""

from __future__ import annotations

import pytest
from intake_support import CONFIG, ENV


@pytest.fixture
def intake_daemon(make_daemon, monkeypatch):
    """``intake_daemon(extra_toml)``: secrets come from the environment (never the config)."""
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)

    def make(extra: str = ""):
        return make_daemon(CONFIG + "\n" + extra)

    return make
