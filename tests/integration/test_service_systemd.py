"""systemd integration: the notify datagrams of the real daemon process, captured from a
real AF_UNIX datagram socket standing in for systemd, and the unit file verified by
``systemd-analyze verify``."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from backorder.daemon.sdnotify import Notifier

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "config" / "backorderd.service"


class FakeSystemd:
    """A datagram socket bound where $NOTIFY_SOCKET points; collects what is sent."""

    def __init__(self, abstract: bool = False) -> None:
        self.dir = tempfile.mkdtemp(prefix="bon", dir="/tmp")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"backorder-test-{os.getpid()}-{time.monotonic_ns()}"
            self.sock.bind("\0" + name)
            self.env = "@" + name
        else:
            path = os.path.join(self.dir, "notify")
            self.sock.bind(path)
            self.env = path
        self.messages: list[dict[str, str]] = []

    def receive(self, timeout: float = 20.0) -> dict[str, str]:
        self.sock.settimeout(timeout)
        data = self.sock.recv(4096).decode()
        msg = dict(line.split("=", 1) for line in data.splitlines())
        self.messages.append(msg)
        return msg

    def wait_for(self, key: str, timeout: float = 20.0) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while True:
            msg = self.receive(max(0.01, deadline - time.monotonic()))
            if key in msg:
                return msg

    def close(self) -> None:
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def fake_systemd():
    fs = FakeSystemd()
    yield fs
    fs.close()


def test_ready_status_watchdog_and_stopping_datagrams(make_daemon, fake_systemd):
    d = make_daemon(start=False)
    # a first run journals something, so the second start has events to recover
    d.start()
    with d.client() as c:
        c.call("sku.configure", sku="A")
        c.call("stock.receive", sku="A", qty=3)
    assert d.stop() == 0
    d.env = {"NOTIFY_SOCKET": fake_systemd.env, "WATCHDOG_USEC": "200000"}
    d.start()
    ready = fake_systemd.wait_for("READY")
    before = fake_systemd.messages[:-1]
    statuses = [m["STATUS"] for m in before if "STATUS" in m]
    # recovery is announced before readiness, with the number of journaled events
    assert any(s.startswith("recovering ") and int(s.split()[1]) >= 2 for s in statuses), statuses
    assert ready["READY"] == "1" and ready["STATUS"].startswith("serving")
    assert int(ready["MAINPID"]) == d.proc.pid
    # READY=1 came after listen: the socket answers now
    with d.client() as c:
        assert c.call("health")["status"] == "serving"
    # the watchdog pings at half of WATCHDOG_USEC (0.1 s): several within a second
    t0 = time.monotonic()
    pings = 0
    while time.monotonic() - t0 < 1.0:
        if fake_systemd.receive(2.0).get("WATCHDOG") == "1":
            pings += 1
    assert 4 <= pings <= 20, pings
    d.proc.send_signal(signal.SIGTERM)
    stopping = fake_systemd.wait_for("STOPPING")
    assert stopping["STOPPING"] == "1" and stopping["STATUS"].startswith("draining")
    assert d.proc.wait(20) == 0


def test_no_watchdog_pings_without_watchdog_usec(make_daemon, fake_systemd):
    d = make_daemon(start=False)
    d.env = {"NOTIFY_SOCKET": fake_systemd.env}
    d.start()
    fake_systemd.wait_for("READY")
    fake_systemd.sock.settimeout(0.5)
    with pytest.raises(TimeoutError):
        while True:
            assert "WATCHDOG" not in fake_systemd.receive(0.5)


def test_notifier_reaches_an_abstract_namespace_socket():
    fs = FakeSystemd(abstract=True)
    n = Notifier({"NOTIFY_SOCKET": fs.env})
    try:
        assert n.enabled
        assert n.ready("serving x")
        msg = fs.receive(5)
        assert msg["READY"] == "1" and msg["STATUS"] == "serving x"
        assert n.stopping()
        assert fs.receive(5)["STOPPING"] == "1"
    finally:
        n.close()
        fs.close()


def test_notifier_is_silent_without_notify_socket_and_survives_a_gone_systemd(tmp_path):
    n = Notifier({})
    assert not n.enabled and n.send("READY=1") is False
    gone = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    try:
        assert gone.send("READY=1") is False  # logged, never raised
    finally:
        gone.close()
    assert Notifier({"WATCHDOG_USEC": "5000000", "WATCHDOG_PID": "1"}).watchdog_s is None
    assert Notifier({"WATCHDOG_USEC": "5000000"}).watchdog_s == 5.0


def test_unit_file_passes_systemd_analyze_verify(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (.ci/run installs systemd)")
    text = UNIT.read_text()
    for needed in (
        "Type=notify",
        "WatchdogSec=",
        "StateDirectory=backorder",
        "RuntimeDirectory=backorder",
        "Restart=on-failure",
        "RestartPreventExitStatus=65 78",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "--socket /run/backorder/",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ):
        assert needed in text, needed
    # verify checks that ExecStart exists: point it at this venv's real `backorder`
    exe = Path(sys.executable).parent / "backorder"
    assert exe.exists()
    unit = tmp_path / "backorderd.service"
    unit.write_text(text.replace("/opt/backorder/venv/bin/backorder", str(exe)))
    done = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "backorderd.service" not in done.stderr, done.stderr  # no warning about our unit
