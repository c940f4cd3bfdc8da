"""The stepped engine clock: engine time moves only on ``clock.advance``, the advance's
reply leaves after the engine-time work due by then has run and is durable, and the same
configuration with the same requests and advances gives the same journal, event for event
(real daemons, real sockets, real SQLite files)."""

from __future__ import annotations

import hashlib
import json

import pytest
from bo_support import line, read_db, submit

from backorder.config.settings import ConfigError, parse_settings
from backorder.launcher import DaemonStartError

START = "2026-01-05T09:00:00Z"
DAY = 86400

CONFIG = """
[daemon]
clock = "stepped"
clock_start = "{start}"

[notifications]
depletion_check_s = 3600
backoff_base_s = 60
[notifications.routes]
web = "file"
[notifications.file]
dir = "{drop}"

[sources.acme]
name = "Acme Supply"
email = "orders@acme.example"
deliver = "file"

[default_policy]
source = "supplier:acme"
lead_time_days = 3

[skus."SKU-A"]
reorder_point = 2
order_up_to = 10
lead_time_days = 3
source = "supplier:acme"

[skus."SKU-B"]
reorder_point = 1
order_up_to = 6
lead_time_days = 5
source = "supplier:acme"
"""


def config(tmp_path, name: str = "drop", start: str = START) -> str:
    return CONFIG.format(start=start, drop=tmp_path / name)


def advance(c, **how) -> str:
    return c.call("clock.advance", **how)["now"]


def records(c, **filters) -> list[dict]:
    out, after = [], 0
    while True:
        page = c.call("audit.query", after_seq=after, limit=10000, **filters)
        out += page["records"]
        if not page["records"]:
            return out
        after = page["next_after_seq"]


@pytest.fixture(scope="module")
def shared_stepped(make_module_daemon, tmp_path_factory):
    """A stepped daemon for the refusals, which change nothing."""
    return make_module_daemon(config(tmp_path_factory.mktemp("drop")))


# --- moving the clock -----------------------------------------------------------------


def test_the_clock_stands_still_until_advanced_by_seconds_or_to_a_timestamp(make_daemon, tmp_path):
    d = make_daemon(config(tmp_path))
    with d.client() as c:
        health = c.call("health")
        assert health["clock"]["kind"] == "stepped"
        assert health["now"] == health["clock"]["now"] == START
        assert c.call("stats")["now"] == START  # stats reads engine time too
        submit(c, "o1", line("SKU-A", 1), email="a@example.com")
        assert c.call("health")["now"] == START  # requests do not move it
        assert advance(c, seconds=DAY) == "2026-01-06T09:00:00Z"
        assert advance(c, seconds=0.5) == "2026-01-06T09:00:00Z"  # to the second on the wire
        assert advance(c, to="2026-01-10T00:00:00Z") == "2026-01-10T00:00:00Z"
        assert advance(c, to="2026-01-10T00:00:00Z") == "2026-01-10T00:00:00Z"  # to now: allowed, no move
        assert advance(c, to="2026-01-10T02:00:00+02:00") == "2026-01-10T00:00:00Z"  # an offset is read as such
        assert c.call("stats")["now"] == "2026-01-10T00:00:00Z"
        assert c.call("health")["clock"]["now"] == "2026-01-10T00:00:00Z"


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({}, "invalid_request"),  # neither
        ({"seconds": 60, "to": "2026-02-01T00:00:00Z"}, "invalid_request"),  # both
        ({"seconds": 0}, "invalid_request"),
        ({"seconds": -3600}, "invalid_request"),
        ({"seconds": 1e999}, "invalid_request"),  # infinite once decoded
        ({"seconds": 10 * 365.25 * DAY + 1}, "invalid_request"),  # absurd: over ten years
        ({"seconds": "60"}, "invalid_request"),
        ({"to": "2026-01-04T00:00:00Z"}, "invalid_date"),  # backwards
        ({"to": "tomorrow"}, "invalid_date"),
        ({"to": "9999-12-31T23:59:59Z"}, "invalid_date"),  # over ten years ahead
    ],
)
def test_bad_advances_are_refused_and_change_nothing(shared_stepped, fields, code):
    with shared_stepped.client() as c:
        before = c.call("health")
        # sent as text: 1e999 is valid JSON that decodes to infinity
        raw = json.dumps({"op": "clock.advance", "id": "bad", **fields}).replace("Infinity", "1e999")
        c.send_raw(raw.encode() + b"\n")
        reply = c.reply("bad")
        assert reply["ok"] is False and reply["error"]["code"] == code, reply
        after = c.call("health")
        assert after["now"] == before["now"] == START
        assert after["journal"]["last_seq"] == before["journal"]["last_seq"]


def test_advances_queue_one_behind_the_other_and_a_passed_to_is_refused(make_daemon, tmp_path):
    d = make_daemon(config(tmp_path))
    with d.client() as c:
        first, second, third = c.pipeline(
            [
                {"op": "clock.advance", "id": 1, "to": "2026-01-10T00:00:00Z"},
                {"op": "clock.advance", "id": 2, "to": "2026-01-08T00:00:00Z"},  # valid when read, passed when run
                {"op": "clock.advance", "id": 3, "seconds": 60},
            ]
        )
        assert first["result"]["now"] == "2026-01-10T00:00:00Z"
        assert second["error"]["code"] == "invalid_date"
        assert third["result"]["now"] == "2026-01-10T00:01:00Z"


def test_a_write_pipelined_behind_an_advance_is_decided_after_it_and_a_read_during_it(make_daemon, tmp_path):
    d = make_daemon(config(tmp_path))
    with d.client() as c:
        adv, order, health = c.pipeline(
            [
                {"op": "clock.advance", "id": "adv", "seconds": 3 * DAY},
                {"op": "order.submit", "id": "o", "channel": "web", "external_id": "p1", "lines": [line("SKU-A", 1)]},
                {"op": "health", "id": "h"},
            ]
        )
        assert adv["result"]["now"] == "2026-01-08T09:00:00Z"
        (received,) = [r for r in records(c) if r["type"] == "order_received"]
        assert received["at"] == "2026-01-08T09:00:00Z"  # the time the script meant, not inside the advance
        assert order["result"]["order_id"] == received["order_id"]
        assert health["ok"] is True


def test_engine_time_stays_inside_the_calendar(make_daemon, tmp_path):
    d = make_daemon(config(tmp_path, start="8995-06-01T00:00:00Z"))
    with d.client() as c:
        assert c.request("clock.advance", seconds=9 * 365 * DAY)["error"]["code"] == "invalid_request"
        assert c.request("clock.advance", to="9001-01-01T00:00:00Z")["error"]["code"] == "invalid_request"
        assert advance(c, to="8999-12-31T00:00:00Z") == "8999-12-31T00:00:00Z"
        assert c.call("health")["now"] == "8999-12-31T00:00:00Z"


def test_other_clocks_refuse_the_advance_with_clock_not_stepped(make_daemon):
    for clock in ('clock = "wall"', 'clock = "simulated"\nclock_start = "2024-03-01T00:00:00Z"'):
        d = make_daemon(f"[daemon]\n{clock}\n")
        with d.client() as c:
            kind = c.call("health")["clock"]["kind"]
            assert kind in ("wall", "simulated") and "agenda" not in c.call("health")["clock"]
            reply = c.request("clock.advance", seconds=60)
            assert reply["error"]["code"] == "clock_not_stepped", reply
        d.stop()


def test_stepped_clock_needs_a_start(make_daemon, tmp_path):
    with pytest.raises(ConfigError, match="daemon.clock_start: required"):
        parse_settings('[daemon]\nclock = "stepped"\n')
    d = make_daemon('[daemon]\nclock = "stepped"\n', start=False)
    with pytest.raises(DaemonStartError):
        d.start(timeout=10)
    assert "daemon.clock_start: required" in d.log_tail()


# --- engine-time work runs inside the advance -------------------------------------------


def test_an_overdue_purchase_order_is_noticed_before_the_advance_replies(make_daemon, tmp_path):
    d = make_daemon(config(tmp_path))
    drop = tmp_path / "drop"
    with d.client() as c:
        o = submit(c, "late-1", line("SKU-A", 3), email="late@example.com", order_number="#1")
        assert o["status"] == "backordered"
        (po,) = c.call("procurement.list", sku="SKU-A")["requests"]
        assert po["expected_date"] == "2026-01-08" and not po["overdue"]
        # nothing is sent between advances: the backorder notice waits in the outbox
        outbox = c.call("notifications.list")["notifications"]
        assert {n["kind"] for n in outbox} == {"backordered", "purchase_order"}
        assert {n["status"] for n in outbox} == {"pending"}
        assert advance(c, seconds=60) == "2026-01-05T09:01:00Z"
        # ... and the advance delivered them (the customer's and the suppliers') before replying
        outbox = c.call("notifications.list")["notifications"]
        assert {n["status"] for n in outbox} == {"sent"}
        assert {p.name for p in drop.iterdir()} == {f"{n['notice_id']}.json" for n in outbox}
        assert not [r for r in records(c) if r["type"] == "notice_queued" and r["event"]["kind"] == "depletion"]

        advance(c, to="2026-01-09T12:00:00Z")  # the PO's date (01-08) has passed
        # read right after the reply: the depletion notice was queued, attempted and delivered
        late = [r for r in records(c, order_id=o["order_id"]) if r["type"].startswith("notice_")]
        kinds = [(r["type"], r["event"].get("kind")) for r in late]
        assert ("notice_queued", "depletion") in kinds
        depletion = next(r for r in late if r["event"].get("kind") == "depletion")
        delivered = [
            r
            for r in late
            if r["type"] == "notice_delivered" and r["event"]["notice_id"] == depletion["event"]["notice_id"]
        ]
        assert len(delivered) == 1
        # its engine time is the first hourly check on 01-09 (the date after 01-08), not the wall's
        # its engine time: the first hourly check (from 09:00) on the date after the PO's
        assert depletion["at"] == "2026-01-09T00:00:00Z"
        assert (drop / f"{depletion['event']['notice_id']}.json").exists()
        assert c.call("procurement.list", sku="SKU-A")["requests"][0]["overdue"] is True
        health = c.call("health")
        assert health["clock"]["agenda"] >= 1 and health["clock"]["steps_run"] > 24


def test_kill9_and_restart_keep_engine_time_at_or_after_the_last_event(make_daemon, tmp_path):
    d = make_daemon(config(tmp_path))
    with d.client() as c:
        advance(c, seconds=3 * DAY)
        k1 = submit(c, "k1", line("SKU-B", 2), email="k@example.com")
        last = c.call("health")["now"]
        assert [n["status"] for n in c.call("notifications.list", order_id=k1["order_id"])["notifications"]] == [
            "pending"
        ]
        assert last == "2026-01-08T09:00:00Z"
    d.kill9()
    d.start()
    with d.client() as c:
        health = c.call("health")
        assert health["clock"]["kind"] == "stepped"
        assert health["now"] == last  # not clock_start: never before the journal's last event
        assert advance(c, seconds=DAY) == "2026-01-09T09:00:00Z"
        # the notices left pending by the kill are delivered on the next advance
        assert all(n["status"] == "sent" for n in c.call("notifications.list")["notifications"])


def test_failed_notices_are_retried_after_their_backoff_in_engine_time(make_daemon, tmp_path):
    from notify_support import free_port

    port = free_port()  # nobody listens there: every attempt fails at once
    d = make_daemon(
        f"""
[daemon]
clock = "stepped"
clock_start = "{START}"
[notifications]
backoff_base_s = 60
jitter = 0
max_attempts = 3
breaker_failures = 100
[notifications.routes]
web = "webhook"
[notifications.webhook]
url = "http://127.0.0.1:{port}/hook"
secret_env = "BO_TEST_HOOK_SECRET"
timeout_s = 2
[skus."SKU-A"]
order_up_to = 0
""",
        start=False,
    )
    d.env = {"BO_TEST_HOOK_SECRET": "stepped-test-secret"}
    d.start()
    with d.client() as c:
        o = submit(c, "r1", line("SKU-A", 1), email="r@example.com")

        def attempts() -> list[tuple[str, str]]:
            return [
                (r["type"], r["at"])
                for r in records(c, order_id=o["order_id"])
                if r["type"] in ("notice_attempted", "notice_failed")
            ]

        assert attempts() == []  # nothing is sent between advances
        advance(c, seconds=59)
        assert attempts() == [("notice_attempted", START), ("notice_failed", START)]
        advance(c, seconds=1)  # 60 s after the failure: the second attempt is due
        assert attempts()[2:] == [
            ("notice_attempted", "2026-01-05T09:01:00Z"),
            ("notice_failed", "2026-01-05T09:01:00Z"),
        ]
        advance(c, seconds=DAY)  # the third, 2 x 60 s later, and the last: dead
        assert attempts()[4:] == [
            ("notice_attempted", "2026-01-05T09:03:00Z"),
            ("notice_failed", "2026-01-05T09:03:00Z"),
        ]
        (notice,) = c.call("notifications.list", order_id=o["order_id"])["notifications"]
        assert notice["status"] == "dead" and notice["attempts"] == 3


def test_a_notice_behind_an_open_breaker_waits_without_an_attempt_until_the_breaker_half_opens(make_daemon, tmp_path):
    from notify_support import free_port, wait_for

    port = free_port()
    d = make_daemon(
        f"""
[daemon]
clock = "stepped"
clock_start = "{START}"
[notifications]
backoff_base_s = 60
jitter = 0
breaker_failures = 1
breaker_reset_s = 0.5
[notifications.routes]
web = "webhook"
[notifications.webhook]
url = "http://127.0.0.1:{port}/hook"
secret_env = "BO_TEST_HOOK_SECRET"
timeout_s = 2
[skus."SKU-A"]
order_up_to = 0
""",
        start=False,
    )
    d.env = {"BO_TEST_HOOK_SECRET": "stepped-test-secret"}
    d.start()
    with d.client() as c:
        o = submit(c, "b1", line("SKU-A", 1), email="b@example.com")

        def attempts() -> list[str]:
            return [r["at"] for r in records(c, order_id=o["order_id"]) if r["type"] == "notice_attempted"]

        advance(c, seconds=59)
        assert attempts() == [START]  # failed: the breaker (one failure) is open, in wall time
        advance(c, seconds=120)  # the retry fell due at 09:01 behind the open breaker: parked
        assert attempts() == [START]
        (notice,) = c.call("notifications.list", order_id=o["order_id"])["notifications"]
        assert notice["status"] == "pending" and notice["attempts"] == 1
        wait_for(lambda: c.call("health")["notifier"]["breakers"]["webhook"] == "half_open", what="half open")
        advance(c, seconds=1)  # due again at the advance's start: one probe
        assert attempts() == [START, "2026-01-05T09:02:59Z"]


# --- determinism -------------------------------------------------------------------------


def scenario(c, variant: int = 0) -> None:
    """Orders (multi-line, across SKUs), receipts, picks, a cancellation, a date change, a
    count, a policy switch and advances of days: reorders, supplier and customer notices,
    depletion checks."""
    for sku in ("SKU-C", "SKU-D", "SKU-E"):
        c.call("sku.configure", sku=sku, reorder_point=1, order_up_to=5, lead_time_days=2)
    for sku, qty in (("SKU-A", 4), ("SKU-B", 3), ("SKU-C", 1), ("SKU-D", 2)):
        c.call("stock.receive", sku=sku, qty=qty)
    # pipelined: each is handled once the actors have decided what the one before started
    replies = c.pipeline(
        [
            {
                "op": "order.submit",
                "id": n,
                "channel": "web",
                "external_id": f"det-{n}",
                "email": f"c{n}@example.com",
                "order_number": f"#{n}",
                "rush": n % 2 == 0,
                "lines": [
                    line("SKU-A", 1 + n % 3),
                    line("SKU-B", 1 + n % 2),
                    line(("SKU-C", "SKU-D", "SKU-E")[n % 3], 2),
                ],
            }
            for n in range(6)
        ]
    )
    orders = [r["result"] for r in replies]
    advance(c, seconds=3600 + variant)
    # its units on three SKUs go back to those SKUs' waiting lines: three settles, in line order
    c.call("order.cancel", order_id=orders[1]["order_id"], reason="changed my mind")
    pos = c.call("procurement.list", status="open")["requests"]
    c.call("procurement.confirm", request_id=pos[0]["request_id"], expected_date="2026-01-12")
    c.call("policy.set", mode="priority")  # rush lines first from here on
    c.call("stock.adjust", sku="SKU-E", delta=2, reason="found two")
    advance(c, seconds=2 * DAY)
    for po in c.call("procurement.list", status="open")["requests"][:2]:
        c.call("stock.receive", sku=po["sku"], qty=po["qty"], reference=po["request_id"])
    for sh in c.call("shipments.list")["shipments"][:2]:
        c.call("pick.confirm", shipment_id=sh["shipment_id"])
    advance(c, to="2026-01-14T06:30:00Z")  # past every remaining PO date: depletion notices
    c.pipeline(
        [
            {"op": "clock.advance", "id": "a", "seconds": 7200},
            *(
                {
                    "op": "order.submit",
                    "id": n,
                    "channel": "web",
                    "external_id": f"det-{n}",
                    "email": f"c{n}@example.com",
                    "lines": [line("SKU-D", 3), line("SKU-E", 1)],
                }
                for n in range(6, 9)
            ),
        ]
    )
    advance(c, seconds=5 * DAY)


def journal_hash(db) -> tuple[str, int, set[str]]:
    rows = read_db(db, "SELECT type, ts, body FROM events ORDER BY seq")
    h = hashlib.sha256()
    for kind, ts, body in rows:
        h.update(kind.encode() + b"\0" + repr(ts).encode() + b"\0" + bytes(body) + b"\n")
    return h.hexdigest(), len(rows), {r[0] for r in rows}


def run_scenario(make_daemon, tmp_path, name: str, variant: int = 0):
    d = make_daemon(config(tmp_path, name))
    with d.client() as c:
        scenario(c, variant)
        via_socket = [(r["type"], r["at"], r["event"]) for r in records(c)]
    assert d.stop() == 0
    return journal_hash(d.db), via_socket


def test_same_script_same_journal_event_for_event(make_daemon, tmp_path):
    (h1, n1, types), audit1 = run_scenario(make_daemon, tmp_path, "drop1")
    (h2, n2, _), audit2 = run_scenario(make_daemon, tmp_path, "drop2")
    # the scenario did what it is meant to exercise
    assert {
        "order_received",
        "request_raised",
        "notice_queued",
        "notice_attempted",
        "notice_delivered",
        "order_cancelled",
        "received",
        "shipment_shipped",
        "request_confirmed",
        "adjusted",
        "policy_changed",
    } <= types, types
    kinds = {ev["kind"] for kind, _at, ev in audit1 if kind == "notice_queued"}
    assert {"backordered", "purchase_order", "depletion", "cancelled", "partially_shipped"} <= kinds, kinds
    assert n1 == n2 and n1 > 100
    assert audit1 == audit2  # the events as audit.query serves them
    assert h1 == h2  # and the SQLite file read after a clean stop, hashed
    # the control: one second more in one advance gives another journal, and the hash sees it
    (h3, n3, _), _ = run_scenario(make_daemon, tmp_path, "drop3", variant=1)
    assert h3 != h1


def test_an_advance_cut_short_by_its_connection_closing_loses_no_engine_time_work(make_daemon):
    # The advance runs in its connection's tasks: a connection closed for a limit cancels
    # it mid-delivery. The notice it was delivering must stay on the agenda, attempted
    # again by the next advance, not forgotten (pending for ever, no attempt) until restart.
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from notify_support import wait_for

    entered, release = threading.Event(), threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            if not entered.is_set():
                entered.set()
                release.wait(30)  # the first delivery hangs until its advance is cut short
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        d = make_daemon(
            f"""
[daemon]
clock = "stepped"
clock_start = "{START}"
[limits]
line_bytes = 4096
[notifications.routes]
web = "webhook"
[notifications.webhook]
url = "http://127.0.0.1:{server.server_address[1]}/hook"
secret_env = "BO_TEST_HOOK_SECRET"
timeout_s = 30
[skus."SKU-A"]
order_up_to = 0
""",
            start=False,
        )
        d.env = {"BO_TEST_HOOK_SECRET": "stepped-test-secret"}
        d.start()
        with d.client() as c, d.client() as bad:
            o = submit(c, "cut1", line("SKU-A", 1), email="b@example.com")
            bad.send_raw(b'{"op": "clock.advance", "id": 1, "seconds": 60}\n')
            wait_for(entered.is_set, what="the first delivery")
            bad.send_raw(b'{"op": "health", "id": 2, "pad": "' + b"x" * 8192 + b'"}\n')
            assert bad.read_line()["error"]["code"] == "line_too_long"
            wait_for(lambda: c.call("health")["connections"] == 1, what="the offender closed")
            release.set()
            advance(c, seconds=60)
            (notice,) = c.call("notifications.list", order_id=o["order_id"])["notifications"]
            assert notice["status"] == "sent" and notice["attempts"] == 2, notice
    finally:
        release.set()
        server.shutdown()
        server.server_close()
