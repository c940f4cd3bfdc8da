"""Client commands without a daemon: the real CLI says what is wrong and how to start or
find the daemon, exits 2, and prints no traceback."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CSV = ROOT / "tests" / "intake" / "fixtures" / "csv" / "orders.csv"


@pytest.fixture
def short_dir():
    path = Path(tempfile.mkdtemp(prefix="bnd", dir="/tmp"))  # AF_UNIX paths are short
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "backorder", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _stale_socket(path: Path) -> None:
    """A socket file with nothing listening on it: what a killed daemon leaves behind."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.close()


COMMANDS = {
    "send": lambda sock: ("send", "--socket", sock, '{"op":"stats","id":1}'),
    "import": lambda sock: ("import", str(CSV), "--channel", "csv", "--socket", sock),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_missing_socket_is_explained(short_dir, command):
    sock = str(short_dir / "backorder.sock")
    done = _cli(*COMMANDS[command](sock))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert (
        f"backorder: no daemon at {sock} (not found): start it with `backorder serve`, "
        "or pass --socket PATH" in done.stderr
    )


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_socket_nobody_listens_on_is_explained(short_dir, command):
    sock = short_dir / "backorder.sock"
    _stale_socket(sock)
    done = _cli(*COMMANDS[command](str(sock)))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"backorder: no daemon at {sock} (nothing listens on it" in done.stderr
    assert "start it with `backorder serve`" in done.stderr


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--jobs", "0"), "argument --jobs: must be at least 1, not 0"),
        (("--seeds", "0"), "argument --seeds: must be at least 1, not 0"),
        (("--skus", "-3"), "argument --skus: must be at least 1, not -3"),
        (("--days", "ten"), "argument --days: not a whole number: 'ten'"),
    ],
)
def test_a_lab_of_nothing_is_refused_before_it_starts(tmp_path, args, said):
    """A lab of 0 seeds would write an empty report that says every invariant held; 0 jobs
    was the process pool's ValueError."""
    got = _cli("lab", "--out", str(tmp_path / "out"), *args)
    assert got.returncode == 2 and said in got.stderr and "Traceback" not in got.stderr
    assert not (tmp_path / "out").exists()
