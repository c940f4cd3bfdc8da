"""The webhook listener against hostile or careless peers, over real HTTP to the real
daemon: invented account names cost no memory, payloads an adapter cannot read become
dead letters, and slow or idle connections are closed without starving anyone else."""

from __future__ import annotations

import http.client
import json
import os
import socket
import time
from pathlib import Path

from intake_support import (
    CONFIG,
    ENV,
    GENERIC_SECRET,
    doc,
    encode,
    generic_headers,
    http_port,
    post,
    raw,
    shopify_headers,
    sign,
    woo_headers,
)

from backorder.launcher import wait_until


def with_intake(make_daemon, monkeypatch, keys: str):
    """The intake tests' daemon with more ``[intake]`` keys."""
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    return make_daemon(CONFIG.replace("[intake]\n", "[intake]\n" + keys.strip() + "\n", 1))


CSV = b"order_id,currency,email,sku,qty,unit_price,ship_address1,ship_country\nH1,USD,a@example.com,SKU-1,1,1.00,1 St,US\n"


def test_unauthenticated_posts_naming_new_accounts_keep_state_and_replies_bounded(intake_daemon):
    d = intake_daemon("[channels.csv.accounts.known]\npriority = true\n")
    with d.client() as c:
        port = http_port(c)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)  # keep-alive: one connection
        bad = {"X-Backorder-Hmac-Sha256": "AAAA", "X-Filler": "f" * 4000}
        for n in range(2000):
            conn.request("POST", f"/webhooks/csv?account=acct-{n}", body=CSV, headers=bad)
            resp = conn.getresponse()
            assert resp.status == 401 and json.loads(resp.read())["code"] == "signature_invalid"
        for n in range(1000):  # Shopify names the shop in a header: a claim too until the signature holds
            headers = {**shopify_headers(CSV, secret="wrong"), "X-Shopify-Shop-Domain": f"s{n}.myshopify.com"}
            conn.request("POST", "/webhooks/shopify", body=CSV, headers=headers)
            resp = conn.getresponse()
            assert resp.status == 401
            resp.read()
        conn.request("POST", "/webhooks/csv?account=known", body=CSV, headers=bad)  # a configured account
        assert conn.getresponse().status == 401
        conn.close()
        reply = c.request("sources.health")
        health = {(s["channel"], s["account"]): s for s in reply["result"]["sources"]}
        assert set(health) == {("csv", "(unverified)"), ("shopify", "(unverified)"), ("csv", "known")}
        csv_src = health[("csv", "(unverified)")]
        assert csv_src["bad_signatures"] == 2000 and csv_src["rejections"] == {"signature_invalid": 2000}
        assert len(csv_src["signature_samples"]) == 20  # [intake] signature_samples
        sample = csv_src["signature_samples"][-1]
        assert sample["account"] == "acct-1999" and len(sample["headers"]["x-filler"]) == 256
        assert health[("shopify", "(unverified)")]["bad_signatures"] == 1000
        assert health[("csv", "known")]["bad_signatures"] == 1
        assert len(json.dumps(reply)) < 200_000  # 20 samples a source, each cut to a few KB
        assert len(c.call("stats")["intake"]["rejections"]) == 3


def test_max_sources_caps_the_table_of_trusted_sources_too(make_daemon, monkeypatch):
    d = with_intake(make_daemon, monkeypatch, "max_sources = 3")
    with d.client() as c:
        for n in range(6):
            body = CSV.replace(b"H1", f"T{n}".encode())
            assert (
                c.call("order.ingest", channel="csv", account=f"shop-{n}", body=body.decode())["outcome"] == "accepted"
            )
        health = {s["account"]: s for s in c.call("sources.health")["sources"]}
        assert set(health) == {"shop-0", "shop-1", "shop-2", "(other)"}
        assert health["(other)"]["deliveries"] == 3
        assert c.call("stats")["counts"]["orders"] == 6  # only the health table is capped, never intake


def _signed_json(name: str, mutate) -> bytes:
    body = doc(name)
    mutate(body)
    return encode(body)


def test_signed_payloads_an_adapter_used_to_crash_on_are_dead_letters_named_in_the_reply(intake_daemon):
    """Each of these made an adapter raise (HTTP 500, nothing logged, nothing kept)."""
    d = intake_daemon()
    shop = _signed_json("shopify/orders_create.json", lambda b: b.update(shipping_lines=True))
    amazon = _signed_json("amazon_sp/order_unshipped.json", lambda b: b["getOrder"]["payload"].update(OrderTotal=[1]))
    woo = _signed_json(
        "woocommerce/order_created.json", lambda b: b.update(date_created_gmt="0001-01-01T00:00:00+05:00")
    )
    deep = b'{"id": 1, "line_items": ' + b"[" * 3000 + b"]" * 3000 + b"}"
    x12 = raw("x12_850/two_pos.edi").replace(b"CTT*1", b"CTT*\xc2\xb2", 1)
    assert x12 != raw("x12_850/two_pos.edi")
    cases = [
        ("shopify", shop, shopify_headers(shop), 400, "malformed_body"),
        ("shopify", deep, shopify_headers(deep), 400, "malformed_body"),
        ("amazon_sp", amazon, generic_headers(amazon), 400, "malformed_body"),
        ("woocommerce", woo, woo_headers(woo), 422, "invalid_date"),
        ("x12_850", x12, generic_headers(x12), 422, "order_items_mismatch"),
    ]
    with d.client() as c:
        port = http_port(c)
        for channel, body, headers, status, code in cases:
            got, res, _ = post(port, channel, body, headers)
            assert (got, res["code"]) == (status, code), (channel, got, res)
            assert isinstance(res["letter_id"], int), res
        # read before any signature: a source header that is no URL is still only a 401
        got, res, _ = post(
            port, "woocommerce", b"{}", {"X-WC-Webhook-Source": "http://[oops/", "X-WC-Webhook-Topic": "order.created"}
        )
        assert (got, res["code"]) == (401, "signature_missing")
        letters = c.call("deadletters.list")["dead_letters"]
        assert sorted(x["cause"] for x in letters) == sorted(code for *_, code in cases)
        assert c.call("stats")["counts"]["orders"] == 0
        assert c.call("health")["status"] == "serving"
    assert "Traceback" not in d.log.read_text()


# --- slow and idle peers ---------------------------------------------------------------

SLOW = """
max_connections = 3
body_timeout_s = 1.0
idle_timeout_s = 1.0
"""


def _slow(port: int) -> socket.socket:
    """A connection that announces a body and sends none."""
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(b"POST /webhooks/csv HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nX-Backorder-Hmac-Sha256: AAAA\r\n\r\n")
    return s


def _read_all(s: socket.socket) -> bytes:
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    return out


def _held(pid: int, port: int) -> int:
    """Connections to ``port`` the daemon holds a descriptor for (accepted, not closed:
    open, or closed by the peer only)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            cols = row.split()
            if int(cols[1].rsplit(":", 1)[1], 16) == port and cols[3] != "0A":  # not the listening socket
                inodes.add(cols[9])
    held = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        held += link.startswith("socket:[") and link[8:-1] in inodes
    return held


def test_slow_bodies_get_408_and_closed_while_others_are_served(make_daemon, monkeypatch):
    d = with_intake(make_daemon, monkeypatch, SLOW)
    with d.client() as c:
        port = http_port(c)
        slow = [_slow(port) for _ in range(2)]
        t0 = time.monotonic()
        assert c.call("health")["status"] == "serving"  # the control socket meanwhile
        status, res, _ = post(port, "csv", CSV, generic_headers(CSV))  # the third slot
        assert (status, res["outcome"]) == (200, "accepted")
        for s in slow:
            reply = _read_all(s)  # ends: the daemon closed the connection
            assert reply.startswith(b"HTTP/1.1 408") and b'"body_timeout"' in reply
            s.close()
        assert time.monotonic() - t0 < 15
        idle = socket.create_connection(("127.0.0.1", port), timeout=20)  # says nothing at all
        assert _read_all(idle) == b""  # closed after idle_timeout_s
        idle.close()
        assert c.call("stats")["counts"]["orders"] == 1


def test_a_connection_the_peer_closed_is_released_at_once(intake_daemon):
    """hypercorn alone kept each closed connection's descriptor (and, here, its slot) until
    its keep-alive timer ended: idle_timeout_s, 5 s by default."""
    d = intake_daemon()
    with d.client() as c:
        port = http_port(c)
        for _ in range(5):
            assert post(port, "csv", CSV, generic_headers(CSV))[0] == 200
        wait_until(
            lambda: not _held(d.proc.pid, port),
            timeout=2,
            interval=0.01,
            message="the closed connections' descriptors are still held",
        )


def test_the_connection_cap_holds_and_waiting_peers_are_served_in_turn(make_daemon, monkeypatch):
    d = with_intake(make_daemon, monkeypatch, SLOW)
    with d.client() as c:
        port = http_port(c)
        slow = [_slow(port) for _ in range(7)]
        wait_until(
            lambda: _held(d.proc.pid, port) >= 3,
            timeout=10,  # the first three are accepted
            message="three slow peers were never accepted",
        )
        for _ in range(10):  # and no more while they are open (an absence: watched for 0.3 s)
            assert _held(d.proc.pid, port) <= 3
            time.sleep(0.03)
        assert c.call("health")["status"] == "serving"
        for s in slow:  # each in turn: accepted when a slot frees, then 408 after its own deadline
            assert _read_all(s).startswith(b"HTTP/1.1 408")
            s.close()
        status, _res, _ = post(port, "csv", CSV, generic_headers(CSV))
        assert status == 200


# --- one partner's secret is not another's ------------------------------------------------

PARTNERS = """
[channels.x12_850.accounts.BUYERCO]
secret_env = "BO_TEST_BUYERCO_SECRET"

[channels.x12_850.accounts.PARTNER-A]
secret_env = "BO_TEST_PARTNER_A_SECRET"

[channels.amazon_sp.accounts.A2EXAMPLESELLER]
secret_env = "BO_TEST_BUYERCO_SECRET"
"""


def _post_signed(port: int, channel: str, body: bytes, secret: str, account: str | None = None):
    return post(
        port, channel, body, {"X-Backorder-Hmac-Sha256": sign(body, secret)}, f"?account={account}" if account else ""
    )


def test_a_partner_cannot_book_or_cancel_another_partners_orders(intake_daemon, monkeypatch):
    monkeypatch.setenv("BO_TEST_BUYERCO_SECRET", "buyerco-secret")
    monkeypatch.setenv("BO_TEST_PARTNER_A_SECRET", "partner-a-secret")
    d = intake_daemon(PARTNERS)
    edi = raw("x12_850/two_pos.edi")  # ISA06 (the sender) is BUYERCO
    cancel = edi.replace(b"BEG*00*", b"BEG*01*")
    assert cancel != edi
    amazon = raw("amazon_sp/order_unshipped.json")  # seller_id A2EXAMPLESELLER
    with d.client() as c:
        port = http_port(c)
        # signed by partner A for itself, the payload is BUYERCO's: refused, nothing booked
        status, res, _ = _post_signed(port, "x12_850", edi, "partner-a-secret", "PARTNER-A")
        assert (status, res["code"]) == (403, "account_mismatch"), res
        # signed with the channel's secret, for an account that has a secret of its own
        status, res, _ = _post_signed(port, "x12_850", edi, GENERIC_SECRET)
        assert (status, res["code"]) == (403, "account_mismatch"), res
        status, res, _ = _post_signed(port, "amazon_sp", amazon, GENERIC_SECRET)
        assert (status, res["code"]) == (403, "account_mismatch"), res
        assert c.call("stats")["counts"]["orders"] == 0
        # BUYERCO with its own secret: booked to BUYERCO
        status, res, _ = _post_signed(port, "x12_850", edi, "buyerco-secret", "BUYERCO")
        assert (status, res["outcome"], res["account"]) == (200, "accepted", "BUYERCO"), res
        status, res, _ = _post_signed(port, "amazon_sp", amazon, "buyerco-secret", "A2EXAMPLESELLER")
        assert (status, res["outcome"]) == (200, "accepted"), res
        seq = c.call("health")["journal"]["last_seq"]
        # partner A tries to cancel BUYERCO's purchase orders: refused, nothing changes
        status, res, _ = _post_signed(port, "x12_850", cancel, "partner-a-secret", "PARTNER-A")
        assert (status, res["code"]) == (403, "account_mismatch"), res
        for ext in ("PO-778812", "PO-778813"):
            assert c.call("order.get", channel="x12_850", account="BUYERCO", external_id=ext)["status"] != "cancelled"
        letters = c.call("deadletters.list")["dead_letters"]
        assert [x["cause"] for x in letters] == ["account_mismatch"] * 4  # authenticated: kept for triage
        assert c.call("health")["journal"]["last_seq"] == seq + 1  # only the dead letter
        # a retry of the kept delivery is held to the same rule
        retried = c.call("deadletters.retry", cause="account_mismatch")
        assert retried["resolved"] == 0
        assert c.call("stats")["counts"]["orders"] == 3


# --- a request answered before its body was read ------------------------------------------


def _head(path: str, length: int, headers: dict | None = None) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: x", f"Content-Length: {length}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _response(s: socket.socket) -> tuple[int, dict[str, str], bytes]:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        assert chunk, f"closed before a response: {buf!r}"
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    while len(body) < int(headers["content-length"]):
        chunk = s.recv(65536)
        assert chunk, "closed in the body"
        body += chunk
    return int(lines[0].split()[1]), headers, body


def test_an_oversized_body_gets_its_answer_and_its_connection_is_released(make_daemon, monkeypatch):
    """A body over ``max_body_bytes`` is answered 413 once the listener has seen too much;
    the rest is read and dropped, so a peer that writes its whole request before reading
    (most do) reads its answer, then the connection is closed and released. Before, hypercorn's
    queue of body chunks to the app filled while the delivery waited for an intake worker
    (here the only one, busy with a large delivery), and the app's reply and hypercorn's
    reader then waited on each other: the connection never answered again, never closed,
    and stayed held (in CLOSE-WAIT, with its ``max_connections`` slot) after the peer left."""
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    d = make_daemon(CONFIG.replace("workers = 16", "workers = 1"))
    with d.client() as c:
        port = http_port(c)
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        signed = CSV.replace(b"H1", b"H7")  # a kept-alive connection: a signed POST, an unsigned one, then the big one
        s.sendall(_head("/webhooks/csv", len(signed), generic_headers(signed)) + signed)
        assert _response(s)[0] == 200
        s.sendall(_head("/webhooks/x12_850", len(CSV)) + CSV)
        assert _response(s)[0] == 401
        rows = "".join(f"B{n},USD,a@example.com,SKU-1,1,1.00,1 St,US\n" for n in range(1400))
        bulk = CSV.split(b"\n", 1)[0] + b"\n" + rows.encode()
        other = socket.create_connection(("127.0.0.1", port), timeout=30)
        other.sendall(_head("/webhooks/csv", len(bulk), generic_headers(bulk)) + bulk)
        wait_until(
            lambda: c.call("stats")["intake"]["queue"]["pending"] >= 1,
            timeout=10,
            interval=0.002,
            message="the large delivery never reached intake",
        )
        big = b"{" + b" " * 2_000_000 + b"}"
        s.sendall(_head("/webhooks/bigcommerce", len(big)) + big)
        status, headers, body = _response(s)
        assert (status, json.loads(body)["code"]) == (413, "body_too_large")
        assert _read_all(s) == b""  # then closed by the daemon (before: nothing more, ever; timed out)
        assert headers["connection"] == "close"
        s.close()
        assert _response(other)[0] == 200
        other.close()
        wait_until(
            lambda: not _held(d.proc.pid, port),
            timeout=2,
            interval=0.01,
            message="a connection answered 413 is still held",
        )
        assert post(port, "csv", CSV, generic_headers(CSV))[0] == 200


def test_a_request_answered_before_its_body_reaches_a_peer_that_writes_it_all_first(intake_daemon):
    """Without waiting on intake: 404 reads no body, 413 stops at ``max_body_bytes``; both
    answers reach a peer still writing, and the connection is closed, not reset."""
    d = intake_daemon()
    with d.client() as c:
        port = http_port(c)
        for path in ("/webhooks/bigcommerce", "/nowhere"):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            big = b"{" + b" " * 20_000_000 + b"}"
            s.sendall(_head(path, len(big)) + big)  # a broken pipe here before: reset, the answer lost
            status, headers, _body = _response(s)
            assert (status, headers["connection"]) == ((413 if path.startswith("/webhooks") else 404), "close")
            assert _read_all(s) == b""
            s.close()
        wait_until(
            lambda: not _held(d.proc.pid, port),
            timeout=2,
            interval=0.01,
            message="a connection answered early is still held",
        )


def test_a_peer_that_half_closes_inside_an_oversized_body_is_released(intake_daemon):
    d = intake_daemon()
    with d.client() as c:
        port = http_port(c)
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(_head("/webhooks/bigcommerce", 602_183) + b"{" + b" " * 200_000)
        s.shutdown(socket.SHUT_WR)
        _read_all(s)  # whatever came (a 413 or a 400 for the cut body), the daemon closes its end
        wait_until(
            lambda: not _held(d.proc.pid, port), timeout=2, interval=0.01, message="a peer that closed is still held"
        )
        s.close()
        assert post(port, "csv", CSV, generic_headers(CSV))[0] == 200
