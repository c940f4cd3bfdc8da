"""The journal always replays (no event is written that replay would refuse), tried through the real daemon.

Hostile numbers (a reorder point of 10**400, an order of 10**21 units, weights of 1e308,
a price of 1e400) are refused with a stable code and change nothing; whatever the
daemon accepted, a ``kill -9`` and a restart without snapshot rebuild it. A journal that
nevertheless holds an event that cannot be replayed (a row written by hand, an older
release) stops start-up with the event's seq, and ``backorder journal check`` /
``backorder journal quarantine`` repair it without deleting anything.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from contextlib import closing

import pytest
from bo_support import drop_snapshots, fingerprint, line, read_db, snapshot_seqs, stock, submit

from backorder.daemon import snapfiles

pytestmark = pytest.mark.timeout(120)

SKU = "HB-1"


def raw_call(c, request: str) -> dict:
    """Send one request line exactly as written (numbers no JSON library would produce)."""
    c.send_raw(request.encode() + b"\n")
    return c.reply(json.loads(request)["id"])


def last_seq(d) -> int:
    return read_db(d.db, "SELECT COALESCE(MAX(seq), 0) FROM events")[0][0]


def snapshots(d) -> int:
    return len(snapshot_seqs(d.db))


def restart_without_snapshot(d) -> None:
    """kill -9 (no clean-stop snapshot) and start: the whole journal is replayed."""
    d.kill9()
    assert snapshots(d) == 0
    d.start()


HOSTILE = [
    # (request line, code): the schema's ceiling (2**53 - 1), then the site's [limits]
    (
        '{"op":"sku.configure","id":1,"sku":"HB-1","reorder_point":1' + "0" * 400 + ',"order_up_to":5}',
        "invalid_request",
    ),
    ('{"op":"sku.configure","id":2,"sku":"HB-1","order_up_to":9007199254740992}', "invalid_request"),
    ('{"op":"sku.configure","id":3,"sku":"HB-1","order_up_to":2000000}', "invalid_policy"),
    (
        '{"op":"order.submit","id":4,"channel":"web","external_id":"h1",'
        '"lines":[{"sku":"NEW-SKU","qty":1000000000000000000000}]}',
        "invalid_quantity",
    ),
    (
        '{"op":"order.submit","id":5,"channel":"web","external_id":"h2","lines":[{"sku":"NEW-SKU","qty":1000001}]}',
        "invalid_quantity",
    ),
    (
        '{"op":"order.submit","id":6,"channel":"web","external_id":"h3",'
        '"lines":[{"sku":"HB-1","qty":1,"unit_price":"1e400"}]}',
        "invalid_price",
    ),
    (
        '{"op":"order.submit","id":7,"channel":"web","external_id":"h4",'
        '"lines":[{"sku":"HB-1","qty":1,"unit_price":1e400}]}',
        "invalid_price",
    ),
    ('{"op":"stock.receive","id":8,"sku":"HB-1","qty":1' + "0" * 30 + "}", "invalid_quantity"),
    ('{"op":"stock.receive","id":9,"sku":"HB-1","qty":1000001}', "invalid_quantity"),
    ('{"op":"stock.adjust","id":10,"sku":"HB-1","delta":-1' + "0" * 400 + "}", "invalid_quantity"),
    ('{"op":"stock.adjust","id":11,"sku":"HB-1","counted":5000000}', "invalid_quantity"),
    ('{"op":"policy.set","id":12,"mode":"priority","weights":{"value":1e308}}', "invalid_request"),
    ('{"op":"policy.set","id":13,"mode":"priority","weights":{"rush":1e400}}', "invalid_request"),
]


def test_hostile_numbers_are_refused_and_the_journal_replays(sim):
    d = sim()
    with d.client() as c:
        stock(c, SKU, 5)
        submit(c, "ok-1", line(SKU, 2))
        before = fingerprint(c, SKU)
        for request, code in HOSTILE:
            reply = raw_call(c, request)
            assert not reply["ok"], request[:80]
            assert reply["error"]["code"] == code, (request[:80], reply["error"])
        assert fingerprint(c, SKU) == before  # refused: nothing changed
        assert "NEW-SKU" not in {s["sku"] for s in c.call("skus.list")["skus"]}
        assert c.call("procurement.list", status="all")["requests"] == before["requests"]
    restart_without_snapshot(d)
    with d.client() as c:
        assert fingerprint(c, SKU) == before


def test_largest_weights_keep_the_rank_finite_across_a_restart(sim):
    """Weights at their ceiling with a price and a quantity at the site's limits: every
    allocation journals a finite rank, and the journal replays."""
    d = sim()
    with d.client() as c:
        c.call("sku.configure", sku=SKU)
        policy = c.call("policy.set", mode="priority", weights={"rush": 1e6, "value": 1e6, "age": 1e6})
        assert policy["weights"] == {"rush": 1e6, "value": 1e6, "age": 1e6}
        submit(c, "big", line(SKU, 1_000_000, price="10000000"), rush=True)
        submit(c, "small", line(SKU, 1, price="0.01"))
        got = c.call("stock.receive", sku=SKU, qty=1_000_000)
        assert got["allocated_units"] == 1_000_000
    batches = read_db(d.db, "SELECT body FROM events WHERE type = 'lines_allocated'")
    ranks = [line[3] for (body,) in batches for line in json.loads(body)["lines"]]
    assert ranks and all(isinstance(r, float) for r in ranks)
    restart_without_snapshot(d)
    with d.client() as c:
        assert c.call("policy.get")["mode"] == "priority"
        assert c.call("sku.get", sku=SKU)["allocated"] == 1_000_000


def test_limits_are_configurable(sim):
    d = sim("[limits]\nmax_quantity = 10\nmax_money = 5\n")
    with d.client() as c:
        c.call("sku.configure", sku=SKU, order_up_to=10)
        assert (
            raw_call(c, '{"op":"sku.configure","id":1,"sku":"HB-1","order_up_to":11}')["error"]["code"]
            == "invalid_policy"
        )
        assert raw_call(c, '{"op":"stock.receive","id":2,"sku":"HB-1","qty":11}')["error"]["code"] == "invalid_quantity"
        r = c.request("order.submit", channel="web", external_id="p", lines=[line(SKU, 1, price="5.01")])
        assert r["error"]["code"] == "invalid_price"
        assert submit(c, "q", line(SKU, 10, price="5"))["status"] in {"backordered", "allocated"}


# --- a journal that holds an event that cannot be replayed -----------------------------


def insert_raw_event(
    db, body: bytes, kind: str = "allocated", sku: str | None = SKU, order_id: str | None = "O0000001"
) -> int:
    """Append a row the way an older release (or a hand) could have: INSERT is allowed,
    the append-only triggers refuse only UPDATE and DELETE."""
    with closing(sqlite3.connect(db)) as conn:
        seq, ts = conn.execute("SELECT MAX(seq) + 1, MAX(ts) FROM events").fetchone()
        conn.execute(
            "INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?)", (seq, ts, kind, sku, order_id, "test", "-", body, "test")
        )
        conn.commit()
    return seq


def journal_cli(d, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "backorder", "journal", *args, "--db", str(d.db)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_unreplayable_event_stops_startup_and_quarantine_repairs_it(sim):
    d = sim()
    with d.client() as c:
        c.call("sku.configure", sku=SKU)
        submit(c, "w1", line(SKU, 2))
    d.kill9()
    # What msgspec wrote for an infinite rank before events were checked: null.
    bad = insert_raw_event(
        d.db,
        b'{"type":"allocated","ts":1709251200.0,"sku":"HB-1","order_id":"O0000001",'
        b'"line_no":1,"qty":1,"rule":"priority","rank":null}',
    )
    # One that decodes but cannot be applied: an allocation to an order that does not exist.
    orphan = insert_raw_event(
        d.db,
        b'{"type":"allocated","ts":1709251200.0,"sku":"HB-1","order_id":"O0000009",'
        b'"line_no":1,"qty":1,"rule":"fifo","rank":0.0}',
        order_id="O0000009",
    )
    with pytest.raises(RuntimeError, match="exited with 65"):
        d.start()
    out = d.log.read_text()
    assert f"journal event {bad} (allocated)" in out
    assert "backorder journal check" in out and f"backorder journal quarantine {bad}" in out

    listed = journal_cli(d, "check")
    assert listed.returncode == 65
    assert [row.split("\t")[:3] for row in listed.stdout.splitlines()] == [
        [str(bad), "allocated", "decode"],
        [str(orphan), "allocated", "apply"],
    ]

    refused = journal_cli(d, "quarantine", str(bad - 1), "--reason", "not this one")
    assert refused.returncode != 0 and "replays" in refused.stderr  # a good event is not set aside
    done = journal_cli(d, "quarantine", str(bad), "--reason", "rank written as null by an old release")
    assert done.returncode == 0, done.stderr
    with pytest.raises(RuntimeError, match="exited with 65"):
        d.start()  # the next one stops start-up in its turn
    assert f"journal event {orphan} (allocated)" in d.log.read_text()
    assert journal_cli(d, "quarantine", str(orphan), "--reason", "no such order").returncode == 0
    assert journal_cli(d, "check").returncode == 0
    assert read_db(d.db, "SELECT type, body FROM events WHERE seq = ?", (bad,))[0][0] == "allocated"  # kept

    d.start()
    with d.client() as c:
        assert c.call("sku.get", sku=SKU)["backordered"] == 2  # the quarantined allocation never applied
        records = c.call("audit.query", after_seq=bad)["records"]
        quarantined = [r for r in records if r["type"] == "journal_quarantined"]
        assert [r["event"]["seq"] for r in quarantined] == [bad, orphan]
        event = quarantined[0]["event"]
        assert event["seq"] == bad and event["original_type"] == "allocated"
        assert event["reason"] == "rank written as null by an old release" and '"rank":null' in event["body"]
        submit(c, "w2", line(SKU, 1))  # serving, and journaling after the quarantine event
    restart_without_snapshot(d)  # the quarantine holds across restarts


def test_a_quarantined_event_is_set_aside_by_a_start_from_a_snapshot_too(sim):
    """A snapshot taken after an event holds its effect: quarantining the event makes the
    snapshots that cover it unusable, so the next start replays without it, as a start
    with no snapshot would. It used to restore the snapshot and keep the effect."""
    d = sim()
    with d.client() as c:
        stock(c, SKU, 3)
        stock(c, SKU, 2)
    assert d.stop() == 0
    assert snapshots(d) == 1
    second = read_db(d.db, "SELECT MAX(seq) FROM events WHERE type = 'received'")[0][0]
    done = journal_cli(d, "quarantine", str(second), "--reason", "counted twice", "--force")
    assert done.returncode == 0, done.stderr
    d.start()
    with d.client() as c:
        assert c.call("sku.get", sku=SKU)["on_hand"] == 3
    d.kill9()
    drop_snapshots(d.db)
    d.start()
    with d.client() as c:
        assert c.call("sku.get", sku=SKU)["on_hand"] == 3


def test_a_quarantined_row_that_is_not_json_leaves_the_audit_trail_readable(sim):
    """A torn row, set aside: ``audit.query`` pages over it and ``export audit`` writes
    it, showing its bytes as text. Both used to fail on it (internal_error for every page
    that held it, a traceback from the export)."""
    d = sim()
    with d.client() as c:
        stock(c, SKU, 3)
    d.kill9()
    torn = insert_raw_event(d.db, b'{"type":"received","sku":"HB-1","q', kind="received", order_id=None)
    assert journal_cli(d, "quarantine", str(torn), "--reason", "torn row").returncode == 0
    d.start()
    with d.client() as c:
        records = c.call("audit.query", sku=SKU)["records"]
        assert [r["type"] for r in records][-2:] == ["received", "received"]
        assert records[-1]["seq"] == torn
        assert records[-1]["event"] == {"type": "received", "unreadable": '{"type":"received","sku":"HB-1","q'}
        assert c.call("sku.get", sku=SKU)["on_hand"] == 3
    out = subprocess.run(
        [sys.executable, "-m", "backorder", "export", "audit", "--format", "jsonl", "--db", str(d.db)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    exported = [json.loads(x) for x in out.stdout.splitlines()]
    assert [r["event"] for r in exported if r["seq"] == torn] == [records[-1]["event"]]


def test_a_quarantine_reason_that_is_not_utf8_is_refused_with_a_message(sim):
    """A reason the journal cannot hold (bytes that are not UTF-8 on the command line) is
    refused like any other bad argument, and nothing is written; it was a traceback."""
    d = sim()
    with d.client() as c:
        stock(c, SKU, 1)
    d.kill9()
    torn = insert_raw_event(d.db, b"not json", kind="received", order_id=None)
    before = last_seq(d)
    done = journal_cli(d, "quarantine", str(torn), "--reason", os.fsdecode(b"counted \xff twice"))
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "reason" in done.stderr
    assert last_seq(d) == before
    assert journal_cli(d, "quarantine", str(torn), "--reason", "counted twice").returncode == 0


def test_quarantine_refuses_while_the_daemon_runs(sim):
    d = sim()
    with d.client() as c:
        c.call("sku.configure", sku=SKU)
    done = journal_cli(d, "quarantine", "1", "--reason", "x", "--force")
    assert done.returncode != 0 and "running backorder daemon" in done.stderr


def test_unusable_snapshot_is_logged_and_the_journal_replayed(sim):
    d = sim()
    with d.client() as c:
        stock(c, SKU, 3)
    assert d.stop() == 0
    ((_, _, path),) = snapfiles.found(d.db)  # the clean stop's
    path.write_bytes(b"not a snapshot")
    d.start()
    with d.client() as c:
        assert c.call("sku.get", sku=SKU)["on_hand"] == 3
    assert "snapshot_unusable" in d.log.read_text()
