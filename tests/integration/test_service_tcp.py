"""The optional TCP listener: a bearer token per client (made by `backorder token`, stored
hashed), accepted or refused; the token's role; TLS with a configured certificate."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys

import pytest
import trustme

from backorder.client import CallError, Client
from backorder.launcher import wait_until


def _token(name: str, role: str = "write") -> tuple[str, str]:
    """(token, config lines) as printed by `backorder token`."""
    out = subprocess.run(
        [sys.executable, "-m", "backorder", "token", name, "--role", role],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    token = out.split("stored anywhere): ", 1)[1].split()[0]
    config = out[out.index(f"[tcp.clients.{name}]") :]
    assert token not in config  # only the hash goes into the config
    return token, config


def _port(d) -> int:
    listening = wait_until(
        lambda: [ln for ln in d.log.read_text().splitlines() if '"tcp_listening"' in ln],
        timeout=10,
        interval=0.05,
        message="no tcp_listening line in the log",
    )
    return json.loads(listening[0])["ports"][0]


class Tcp:
    def __init__(self, sock) -> None:
        self.sock = sock
        self.sock.settimeout(20)
        self.f = sock.makefile("rwb")

    def send(self, *msgs: dict) -> None:
        self.f.write(b"".join(json.dumps(m).encode() + b"\n" for m in msgs))
        self.f.flush()

    def read(self) -> dict | None:
        line = self.f.readline()
        return json.loads(line) if line else None

    def close(self) -> None:
        self.f.close()
        self.sock.close()


@pytest.fixture
def tokens():
    return {"erp": _token("erp"), "dash": _token("dash", "read")}


def _config(tokens, extra: str = "") -> str:
    return "[tcp]\nport = 0\nauth_timeout_s = 0.5\n" + extra + "\n" + "".join(c for _, c in tokens.values())


def test_token_accepted_refused_and_its_role(make_daemon, tokens):
    d = make_daemon(_config(tokens))
    port = _port(d)
    good = Tcp(socket.create_connection(("127.0.0.1", port)))
    try:
        # auth and the first requests in one write: nothing after the auth line is lost
        good.send(
            {"op": "auth", "id": "a", "token": tokens["erp"][0]},
            {"op": "sku.configure", "id": 1, "sku": "T"},
            {"op": "health", "id": 2},
        )
        assert good.read() == {"id": "a", "ok": True, "result": {"client": "erp", "role": "write"}}
        replies = {r["id"]: r for r in (good.read(), good.read())}
        assert replies[1]["ok"] is True
        assert replies[2]["result"]["role"] == "write"
    finally:
        good.close()
    dash = Tcp(socket.create_connection(("127.0.0.1", port)))
    try:
        dash.send(
            {"op": "auth", "id": 1, "token": tokens["dash"][0]}, {"op": "stock.receive", "id": 2, "sku": "T", "qty": 1}
        )
        assert dash.read()["result"]["role"] == "read"
        assert dash.read()["error"]["code"] == "forbidden"
    finally:
        dash.close()
    for first in (
        {"op": "auth", "id": 1, "token": tokens["erp"][0] + "x"},  # wrong token
        {"op": "auth", "id": 1},  # no token
        {"op": "health", "id": 1},  # no auth at all
        None,
    ):  # nothing within auth_timeout_s
        bad = Tcp(socket.create_connection(("127.0.0.1", port)))
        try:
            if first is not None:
                bad.send(first, {"op": "sku.configure", "id": 9, "sku": "EVIL"})
            reply = bad.read()
            assert reply["ok"] is False and reply["error"]["code"] == "unauthorized", (first, reply)
            assert bad.read() is None  # closed, the request behind it never ran
        finally:
            bad.close()
    with d.client() as c:
        with pytest.raises(Exception, match="unknown_sku"):
            c.call("sku.get", sku="EVIL")
        assert c.call("sku.get", sku="T")["sku"] == "T"


def test_tls_listener(make_daemon, tokens, tmp_path):
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    for pem in cert.cert_chain_pems[1:]:
        pem.write_to_path(str(certfile), append=True)
    cert.private_key_pem.write_to_path(str(keyfile))
    d = make_daemon(_config(tokens, f'certfile = "{certfile}"\nkeyfile = "{keyfile}"\n'))
    port = _port(d)
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    with Client.tcp("127.0.0.1", port, tokens["erp"][0], ssl_context=ctx, server_hostname="localhost") as c:
        assert c.call("health")["role"] == "write"
        c.call("sku.configure", sku="TLS")
    with pytest.raises(CallError) as refused:
        Client.tcp("127.0.0.1", port, "bo_wrong", ssl_context=ctx, server_hostname="localhost")
    assert refused.value.code == "unauthorized"
    # plain text on the TLS port gets nowhere, and the daemon keeps serving
    plain = Tcp(socket.create_connection(("127.0.0.1", port)))
    try:
        plain.send({"op": "auth", "id": 1, "token": tokens["erp"][0]})
        try:
            assert plain.read() is None
        except (ConnectionResetError, json.JSONDecodeError, UnicodeDecodeError):
            pass
    finally:
        plain.close()
    with d.client() as c:
        assert c.call("health")["status"] == "serving"


def test_listener_is_off_by_default_and_binds_localhost(make_daemon, tokens):
    d = make_daemon()
    assert '"tcp_listening"' not in d.log.read_text()
    d2 = make_daemon(_config(tokens))
    line = next(ln for ln in d2.log.read_text().splitlines() if '"tcp_listening"' in ln)
    assert json.loads(line)["host"] == "127.0.0.1"
