"""The polling helper and the daemon launcher shared by the demo, the tests and the
benchmarks (backorder/launcher.py)."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest

from backorder.launcher import DaemonStartError, WaitTimeout, wait_until


def test_wait_until_returns_the_first_truthy_value():
    calls = itertools.count(1)
    assert wait_until(lambda: (n := next(calls)) >= 3 and f"after {n}", timeout=5, interval=0) == "after 3"


def test_wait_until_fails_with_the_message_and_the_last_value():
    values = iter([[], [], None])
    with pytest.raises(WaitTimeout) as exc:
        wait_until(lambda: next(values, 0), timeout=0.05, interval=0.01, message="no rows")
    assert isinstance(exc.value, AssertionError)  # a test that waits fails like an assert
    assert "no rows" in str(exc.value) and "last value: 0" in str(exc.value)
    assert exc.value.last == 0
    # a message function is called at the timeout, not before
    seen = []
    with pytest.raises(WaitTimeout, match="at the end"):
        wait_until(lambda: seen.append(1), timeout=0.02, interval=0.01, message=lambda: f"at the end ({len(seen)})")


def test_wait_until_treats_ignored_exceptions_as_not_yet_and_propagates_others():
    attempts = itertools.count()

    def connect() -> str:
        if next(attempts) < 2:
            raise ConnectionRefusedError("not yet")
        return "connected"

    assert wait_until(connect, timeout=5, interval=0, ignore=OSError) == "connected"
    with pytest.raises(WaitTimeout) as exc:
        wait_until(lambda: 1 / 0, timeout=0.02, interval=0.01, ignore=ZeroDivisionError)
    assert isinstance(exc.value.last, ZeroDivisionError)
    with pytest.raises(KeyError):  # not ignored: at once, not after the timeout
        wait_until(lambda: {}["x"], timeout=60)


def test_the_launcher_imports_nothing_of_the_daemon():
    """The demo and the benchmarks are clients: starting a daemon must not load trio or
    the daemon's modules into them."""
    code = (
        "import sys, backorder.launcher; "
        "print(sorted(m for m in sys.modules if m == 'trio' or m.startswith('backorder.daemon')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_daemon_that_exits_at_start_is_reported_with_its_log(make_daemon):
    d = make_daemon("[daemon]\nno_such_key = 1\n", start=False)
    with pytest.raises(DaemonStartError) as exc:
        d.start(timeout=30)
    assert "daemon exited with" in str(exc.value) and "no_such_key" in str(exc.value)
    assert d.starts == 1 and not d.alive()
    # the log keeps every run (appended): a second failed start adds to it
    with pytest.raises(DaemonStartError):
        d.start(timeout=30)
    assert d.log.read_text().count("no_such_key") >= 2
