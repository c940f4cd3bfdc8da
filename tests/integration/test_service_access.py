"""Who may do what: socket mode and group, the read and write roles (from a read-only
socket and from the peer's credentials), enforced for every op of protocol.WRITE_OPS."""

from __future__ import annotations

import grp
import json
import os
import signal
import stat
import subprocess
from pathlib import Path

import pytest
from bo_support import SIM_CONFIG, stock

from backorder import protocol as p
from backorder.launcher import wait_until

NOBODY = 65534
SYSTEM_PYTHON = Path("/usr/bin/python3")  # runnable by any user, unlike a venv under /root


def _a_group() -> grp.struct_group:
    """A group other than the test's own, to give the socket."""
    return next(g for g in grp.getgrall() if g.gr_gid not in (0, os.getgid()))


def test_socket_mode_and_group(make_daemon):
    g = _a_group()
    d = make_daemon(start=False)
    ro = d.sockdir / "ro.sock"
    d.config.write_text(f'[access]\ngroup = "{g.gr_name}"\nread_socket = "{ro}"\n')
    d.start()
    for path in (d.socket, ro):
        st = os.stat(path)
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o660
        assert st.st_gid == g.gr_gid
    assert d.stop() == 0
    assert not ro.exists()


def test_socket_mode_is_configurable(make_daemon):
    d = make_daemon('[access]\nsocket_mode = "0600"\n')
    assert stat.S_IMODE(os.stat(d.socket).st_mode) == 0o600


@pytest.fixture
def ro_daemon(make_daemon):
    """A daemon with a read-only socket next to its main one; returns (daemon, ro path)."""
    d = make_daemon(start=False)
    ro = d.sockdir / "ro.sock"
    d.config.write_text(f'[access]\nread_socket = "{ro}"\n' + SIM_CONFIG)
    d.start()
    return d, ro


def test_read_role_is_forbidden_every_write_op_and_nothing_changes(ro_daemon):
    from backorder.client import Client

    d, ro = ro_daemon
    with d.client() as w:
        stock(w, "A", 5)
        before = w.call("health")["journal"]["last_seq"]
        assert w.call("health")["role"] == "write"
    assert p.WRITE_OPS  # iterate whatever ops change state, including ops added later
    with Client(str(ro)) as r:
        assert r.call("health")["role"] == "read"
        for op in sorted(p.WRITE_OPS):
            # with and without plausible fields: the op alone decides
            for fields in ({}, {"sku": "A", "qty": 1, "order_id": "O0000001"}):
                reply = r.request(op, **fields)
                assert reply["ok"] is False, (op, reply)
                assert reply["error"]["code"] == "forbidden", (op, reply)
                assert op in reply["error"]["message"]
        # reads still work on the read-only connection
        assert r.call("sku.get", sku="A")["on_hand"] == 5
        assert r.call("stats")["counts"] is not None
    with d.client() as w:
        assert w.call("health")["journal"]["last_seq"] == before
        assert w.call("sku.get", sku="A")["on_hand"] == 5
        # the write socket still changes state
        w.call("stock.receive", sku="A", qty=1)
        assert w.call("sku.get", sku="A")["on_hand"] == 6


_CHILD = r"""
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
f = s.makefile("rwb")
out = []
for line in sys.argv[2:]:
    f.write(line.encode() + b"\n"); f.flush()
    out.append(json.loads(f.readline()))
print(json.dumps(out))
"""


def _as_nobody(sock: Path, *requests: dict) -> list[dict]:
    done = subprocess.run(
        [str(SYSTEM_PYTHON), "-I", "-c", _CHILD, str(sock), *map(json.dumps, requests)],
        user=NOBODY,
        group=NOBODY,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.skipif(
    os.geteuid() != 0 or not SYSTEM_PYTHON.exists(), reason="connecting as another uid needs root and a system python3"
)
def test_peer_credentials_map_to_roles_and_a_reload_changes_them(make_daemon):
    d = make_daemon(start=False)
    d.sockdir.chmod(0o755)  # let the other user reach the socket (mode 0660, group nogroup)
    base = f'[access]\ngroup = "{NOBODY}"\n' + SIM_CONFIG
    d.config.write_text(base)
    d.start()
    with d.client() as c:
        stock(c, "A", 5)
    receive = {"op": "stock.receive", "id": 2, "sku": "A", "qty": 1}
    health, refused = _as_nobody(d.socket, {"op": "health", "id": 1}, receive)
    assert health["result"]["role"] == "read"  # default_role: a peer no rule names reads
    assert refused["error"]["code"] == "forbidden"
    # map the user to write and reload (SIGHUP): new connections get the new role
    _reload_until_role(d, base.replace("[access]\n", '[access]\nwrite_uids = ["nobody"]\n'), "write")
    (accepted,) = _as_nobody(d.socket, receive)
    assert accepted["ok"] is True
    with d.client() as c:
        assert c.call("sku.get", sku="A")["on_hand"] == 6
    # group rules: the user's primary group mapped to read beats default_role = "write"
    _reload_until_role(
        d, base.replace("[access]\n", '[access]\ndefault_role = "write"\nread_groups = ["nogroup"]\n'), "read"
    )


def _reload_until_role(d, config: str, role: str) -> None:
    """Write the config, send SIGHUP, wait until a new connection of `nobody` has ``role``."""
    d.config.write_text(config)
    d.proc.send_signal(signal.SIGHUP)
    wait_until(
        lambda: _as_nobody(d.socket, {"op": "health", "id": 1})[0]["result"]["role"] == role,
        timeout=10,
        interval=0.05,
        message=f"the reload never gave the user the {role} role",
    )
