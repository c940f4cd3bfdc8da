"""Hostile input on the control socket and the TCP listener: each payload that once stopped
the daemon gets its documented error, and afterwards the daemon serves the same client
(where the connection stays open) and every other client; connection budgets per listener
and per role keep a read-role or TCP flood from locking out a local write-role client."""

from __future__ import annotations

import json
import socket
import time

import pytest
from bo_support import SIM_CONFIG, stock
from test_service_tcp import Tcp, _config, _port, _token

from backorder.client import Client
from backorder.launcher import wait_until

DEEP = 5000  # well past msgspec's recursion limit (~1,000 levels) wherever it is reached


def _nested(depth: int, open_: bytes = b"[", close: bytes = b"]") -> bytes:
    return open_ * depth + close * depth


# Lines nested too deep in each place the decoders meet them: the id (echoed raw), an
# unknown field (skipped), a typed field (an object chain), and the top level (not an
# object: refused before any recursion). Each with the code it gets.
DEEP_LINES = {
    "id": (b'{"op": "health", "id": ' + _nested(DEEP) + b"}", "too_deep"),
    "unknown field": (b'{"op": "health", "id": 1, "junk": ' + _nested(DEEP) + b"}", "too_deep"),
    "typed field": (
        b'{"op": "order.submit", "id": 2, "customer": ' + b'{"a":' * DEEP + b"1" + b"}" * DEEP + b"}",
        "too_deep",
    ),
    "about 1000 deep, 2 KB": (b'{"op": "health", "id": 3, "x": ' + _nested(1000) + b"}", "too_deep"),
    "top level": (_nested(DEEP), "malformed_json"),
}


def _unix(path) -> Client:
    return Client(str(path), timeout=20)


def _serves(d) -> None:
    """Another client, on a fresh connection, is served: state can still change and be read."""
    with d.client(timeout=20) as other:
        stock(other, "ALIVE", 1)
        assert other.call("sku.get", sku="ALIVE")["on_hand"] >= 1
        assert other.call("health")["status"] == "serving"


@pytest.mark.parametrize("socket_role", ["write", "read"])
def test_json_nested_too_deep_is_answered_and_the_daemon_goes_on(make_daemon, socket_role):
    d = make_daemon(start=False)
    ro = d.sockdir / "ro.sock"
    d.config.write_text(f'[access]\nread_socket = "{ro}"\n' + SIM_CONFIG)
    d.start()
    # a read-role connection checks the op before decoding (access.forbidden): its own path
    with _unix(d.socket if socket_role == "write" else ro) as c:
        for where, (line, code) in DEEP_LINES.items():
            assert len(line) < 1024 * 1024
            c.send_raw(line + b"\n")
            got = c.read_line()
            assert got["ok"] is False and got["error"]["code"] == code, (where, got)
            assert got["id"] is None, where  # the id is unreadable too: null, as for malformed_json
            assert c.call("health")["role"] == socket_role  # the same connection goes on
    _serves(d)
    assert d.proc.poll() is None
    assert '"connection_failed"' not in d.log.read_text()


def test_a_request_id_nested_deep_but_decodable_is_echoed_and_logged(make_daemon):
    d = make_daemon('[logging]\nrequests = "all"\n' + SIM_CONFIG)
    rid = json.loads(_nested(600))
    with d.client() as c:
        c.send_raw(json.dumps({"op": "sku.configure", "id": rid, "sku": "DEEPID"}).encode() + b"\n")
        got = c.read_line()
        assert got["ok"] is True and got["id"] == rid
        assert c.call("sku.get", sku="DEEPID")["sku"] == "DEEPID"
    _serves(d)
    lines = [json.loads(ln) for ln in d.log.read_text().splitlines() if '"DEEPID"' in ln and '"request"' in ln]
    # the request log names an array or object id by its JSON text (never decoded again)
    assert [ln["request_id"] for ln in lines if ln["op"] == "sku.configure"] == [json.dumps(rid, separators=(",", ":"))]
    assert '"connection_failed"' not in d.log.read_text()


@pytest.mark.parametrize("after_seq", [2**63, 2**64 - 1, 10**400, 2**53])
def test_audit_after_seq_past_the_bound_is_invalid_request_naming_it(shared_daemon, after_seq):
    with shared_daemon.client() as c:
        stock(c, "AQ", 1)
        c.send_raw(b'{"op": "audit.query", "id": 9, "after_seq": ' + str(after_seq).encode() + b"}\n")
        got = c.read_line()
        assert got["id"] == 9 and got["ok"] is False, got
        assert got["error"]["code"] == "invalid_request"
        assert "after_seq" in got["error"]["message"]
        # the largest allowed value is a query like any other
        page = c.call("audit.query", after_seq=2**53 - 1)
        assert page == {"records": [], "next_after_seq": 2**53 - 1}
        assert c.call("audit.query", sku="AQ")["records"]
    _serves(shared_daemon)


@pytest.mark.parametrize(
    "op", ["orders.list", "skus.list", "procurement.list", "shipments.list", "notifications.list", "skus.board"]
)
def test_a_page_offset_past_the_bound_is_invalid_request_naming_it(shared_daemon, op):
    with shared_daemon.client() as c:
        for offset in (2**63, 2**53):
            c.send_raw(json.dumps({"op": op, "id": 1, "offset": offset}).encode() + b"\n")
            got = c.read_line()
            assert got["ok"] is False and got["error"]["code"] == "invalid_request", got
            assert "offset" in got["error"]["message"]
        assert c.call(op, offset=2**53 - 1)  # the bound itself: an empty page, not an error
    _serves(shared_daemon)


# --- TCP ------------------------------------------------------------------------------


@pytest.fixture
def tokens():
    return {"erp": _token("erp"), "dash": _token("dash", "read")}


def _tcp(port: int, source: str = "127.0.0.1") -> Tcp:
    return Tcp(socket.create_connection(("127.0.0.1", port), source_address=(source, 0)))


def _authenticated(port: int, token: str, source: str = "127.0.0.1") -> Tcp:
    conn = _tcp(port, source)
    conn.send({"op": "auth", "id": "a", "token": token})
    reply = conn.read()
    assert reply is not None and reply["ok"] is True, reply
    return conn


def test_an_auth_line_nested_too_deep_is_unauthorized_and_the_daemon_goes_on(make_daemon, tokens):
    d = make_daemon(_config(tokens))
    port = _port(d)
    for line in (
        b'{"op": "auth", "id": ' + _nested(1900) + b', "token": "x"}',
        b'{"op": "auth", "token": "x", "junk": ' + _nested(1000) + b"}",
    ):
        assert len(line) < 4096  # the auth line's own limit
        bad = _tcp(port)
        try:
            bad.f.write(line + b"\n")
            bad.f.flush()
            reply = bad.read()
            assert reply == {
                "id": None,
                "ok": False,
                "error": {"code": "unauthorized", "message": reply["error"]["message"]},
            }
            assert bad.read() is None
        finally:
            bad.close()
    good = _authenticated(port, tokens["erp"][0])
    try:
        good.send({"op": "health", "id": 1})
        assert good.read()["result"]["role"] == "write"
    finally:
        good.close()
    _serves(d)


def _read_until_closed(conn: Tcp, timeout: float) -> float:
    """Seconds until the daemon closed ``conn`` (EOF or reset), reading whatever it sends."""
    t0 = time.monotonic()
    conn.sock.settimeout(timeout)
    try:
        while conn.sock.recv(4096):
            pass
    except (ConnectionResetError, TimeoutError):
        pass
    return time.monotonic() - t0


def test_silent_tcp_connections_cannot_lock_out_tcp_or_unix_clients(make_daemon, tokens):
    d = make_daemon(
        _config(tokens, "max_pending = 6\nmax_pending_per_host = 3\n").replace(
            "auth_timeout_s = 0.5", "auth_timeout_s = 6"
        )
    )
    port = _port(d)
    silent = [_tcp(port) for _ in range(40)]  # far more than the pending budget, from one address
    try:
        # all but three (whichever the daemon took first) are closed at once, without a word
        quick = [s for s in silent if _read_until_closed(s, 0.5) < 0.5]
        assert len(quick) == len(silent) - 3
        # the three that hold pending slots do not lock out a client from another address
        client = _authenticated(port, tokens["erp"][0], source="127.0.0.2")
        try:
            client.send({"op": "sku.configure", "id": 1, "sku": "TCPOK"})
            assert client.read()["ok"] is True
        finally:
            client.close()
        _serves(d)  # nor the local operators
        # and each of the three is closed at the auth deadline
        for s in silent:
            if s not in quick:
                assert _read_until_closed(s, 15) < 10
    finally:
        for s in silent:
            s.close()
    log = d.log.read_text()
    assert "max_pending_per_host" in log


def test_tls_handshake_counts_against_the_auth_deadline(make_daemon, tokens, tmp_path):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    d = make_daemon(_config(tokens, f'certfile = "{certfile}"\nkeyfile = "{keyfile}"\n'))
    port = _port(d)
    # a client that opens the connection and never says hello, and one that stops halfway
    # through its ClientHello: both are closed at auth_timeout_s (0.5 s)
    silent = _tcp(port)
    half = _tcp(port)
    try:
        half.sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        assert _read_until_closed(silent, 10) < 3
        assert _read_until_closed(half, 10) < 3
    finally:
        silent.close()
        half.close()
    _serves(d)


def test_read_role_clients_cannot_take_the_write_reserve(make_daemon, tokens):
    d = make_daemon(start=False)
    ro = d.sockdir / "ro.sock"
    d.config.write_text(
        f'[access]\nread_socket = "{ro}"\n'
        "[limits]\nwrite_reserve = 2\n"
        + SIM_CONFIG.replace("[daemon]", "[daemon]\nmax_connections = 6")
        + _config(tokens, "max_connections = 3\n")
    )
    d.start()
    port = _port(d)
    held = []
    try:
        # a read-role flood on the read-only socket: 4 of the 6 Unix slots, not one more
        readers = []
        while len(readers) < 10:
            c = _unix(ro)
            held.append(c)
            c.send_raw(b'{"op": "health", "id": 1}\n')
            got = c.read_line()
            if not got["ok"]:
                assert got["error"]["code"] == "too_many_connections"
                assert "write_reserve" in got["error"]["message"]
                break
            readers.append(c)
        assert len(readers) == 4
        # a read token fills the TCP listener's read share (1 of 3): that budget is apart
        dash = _authenticated(port, tokens["dash"][0])
        held.append(dash)
        refused = _tcp(port)
        held.append(refused)
        refused.send({"op": "auth", "id": "r", "token": tokens["dash"][0]})
        assert refused.read()["error"]["code"] == "too_many_connections"
        assert refused.read() is None
        # the local operator still gets in, twice (the reserve), and works
        with d.client() as op1, d.client() as op2:
            assert op1.call("health")["role"] == "write"
            stock(op2, "RESERVED", 2)
            assert op1.call("sku.get", sku="RESERVED")["on_hand"] == 2
            assert op1.call("health")["connections"] == 4 + 1 + 2
            # the Unix budget is now full for everyone
            with _unix(d.socket) as third:
                assert third.read_line()["error"]["code"] == "too_many_connections"
        # and so does a write token on TCP, in the TCP reserve
        erp = _authenticated(port, tokens["erp"][0])
        held.append(erp)
        erp.send({"op": "health", "id": 2})
        assert erp.read()["result"]["role"] == "write"
        # a reader that leaves frees its slot for the next reader
        readers.pop().close()

        def reader_admitted() -> bool:
            with _unix(ro) as again:
                again.send_raw(b'{"op": "health", "id": 1}\n')
                return again.read_line()["ok"]

        wait_until(reader_admitted, timeout=10, message="the reader's slot was never released")
    finally:
        for c in held:
            c.close()
