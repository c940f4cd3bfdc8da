"""Journals written before the journal owned its order structs still replay (their
snapshots are set aside: start-up replays the journal).

An ``order_received`` event used to embed the wire's ``order.submit`` request verbatim,
so its ``order`` object carries the request's ``"op"`` and ``"id"``; ``order_amended``
embedded the wire's order lines. The bodies and the snapshot below are exactly the bytes
that code wrote (generated with it and pasted here): they must decode with today's
``EVENT_DECODER`` and replay through ``World.evolve``; the old snapshot, which lacks the
KPI aggregates, is refused so that start-up replays the journal instead.

A journal file of schema 1 (no ``actor`` column) is migrated when the daemon opens it;
read before that (``export audit``), its rows show no actor.
"""

from __future__ import annotations

import io
import json
import sqlite3
from contextlib import closing
from decimal import Decimal

import msgspec
import pytest

from backorder.actors import events as ev
from backorder.actors.model import World
from backorder.actors.snapshot import SnapshotOutdated, dump, restore
from backorder.config.settings import Settings
from backorder.daemon import backup
from backorder.daemon.journal import SCHEMA_VERSION, Journal

SETTINGS = msgspec.convert(
    {"skus": {"A": {"reorder_point": 0, "order_up_to": 0}, "B": {}}, "notifications": {"routes": {"web": "webhook"}}},
    Settings,
)

# A received SKU, a full order (customer, address, two lines, one not shipped), a held
# order amended and released, allocations, a backorder, a raised PO, a shipment shipped.
OLD_BODIES = [
    b'{"type":"received","ts":1750000000.0,"sku":"A","qty":5,"reference":null,"request_id":null,"receipt_id":null}',
    b'{"type":"order_received","ts":1750000001.0,"order_id":"O0000001","order":{"op":"order.submit","id":null,"channel":"web","account":"shop-1","external_id":"E-1","order_number":"#1001","customer":{"id":"c9","name":"Ada"},"email":"ada@example.com","shipping_address":{"name":"Ada L","company":"","address1":"","address2":"","city":"London","region":"","postal_code":"","country_code":"GB","phone":""},"created_at":"2025-06-15T10:00:00Z","currency":"GBP","lines":[{"sku":"A","qty":2,"unit_price":"9.50","requires_shipping":true},{"sku":"B","qty":1,"unit_price":"0","requires_shipping":false}],"rush":true,"priority":false,"ship_complete":false,"hold":"","source_version":null}}',
    b'{"type":"allocated","ts":1750000001.0,"sku":"A","order_id":"O0000001","line_no":1,"qty":2,"rule":"fifo","rank":0.0}',
    b'{"type":"shipment_created","ts":1750000001.0,"shipment_id":"S0000001","order_id":"O0000001","items":[[1,"A",2]]}',
    b'{"type":"order_received","ts":1750000002.0,"order_id":"O0000002","order":{"op":"order.submit","id":null,"channel":"csv","account":"default","external_id":"E-2","order_number":"","customer":{"id":"","name":""},"email":"","shipping_address":{"name":"","company":"","address1":"","address2":"","city":"","region":"","postal_code":"","country_code":"","phone":""},"created_at":null,"currency":"USD","lines":[{"sku":"B","qty":3,"unit_price":"0","requires_shipping":true}],"rush":false,"priority":false,"ship_complete":false,"hold":"payment pending","source_version":"2025-06-15T10:00:00.000001Z"}}',
    b'{"type":"order_amended","ts":1750000003.0,"order_id":"O0000002","lines":[{"sku":"A","qty":4,"unit_price":"1.25","requires_shipping":true}],"reason":"changed","source_version":"2025-06-15T11:00:00Z"}',
    b'{"type":"order_released","ts":1750000004.0,"order_id":"O0000002","reason":"paid","source_version":"2025-06-15T12:00:00Z"}',
    b'{"type":"allocated","ts":1750000004.0,"sku":"A","order_id":"O0000002","line_no":1,"qty":3,"rule":"fifo","rank":0.001}',
    b'{"type":"line_backordered","ts":1750000004.0,"sku":"A","order_id":"O0000002","line_no":1,"qty":1}',
    b'{"type":"request_raised","ts":1750000004.0,"request_id":"PO-000001","sku":"A","kind":"po","source":"default","qty":1,"expected_date":"2025-06-22","position":-1}',
    b'{"type":"shipment_shipped","ts":1750000005.0,"shipment_id":"S0000001","order_id":"O0000001","carrier":"local","tracking":"BO01000000018","label_zpl":"^XA\\n^PW812\\n^LL1218\\n^CI28\\n^FO50,50^A0N,40,40^FDSHIP TO:^FS\\n^FO50,130^A0N,36,36^FDAda L^FS\\n^FO50,310^A0N,36,36^FDLondon^FS\\n^FO50,355^A0N,36,36^FDGB^FS\\n^FO50,520^A0N,32,32^FDOrder #1001  Shipment S0000001  Units 2^FS\\n^FO50,580^A0N,32,32^FDCarrier local^FS\\n^FO50,650^BY3^BCN,200,Y,N,N^FDBO01000000018^FS\\n^XZ"}',
    b'{"type":"units_shipped","ts":1750000005.0,"sku":"A","order_id":"O0000001","line_no":1,"qty":2,"shipment_id":"S0000001"}',
    b'{"type":"notice_queued","ts":1750000005.0,"notice_id":"N0000001","order_id":"O0000001","kind":"shipped","email":"ada@example.com","subject":"Order #1001 has shipped","body":"2 unit(s) shipped with local, tracking number BO01000000018.","channel":"webhook","audience":"customer","request_id":null,"data":{"order_number":"#1001","customer":"Ada","email":"ada@example.com","channel":"web","account":"shop-1","shipment_id":"S0000001","carrier":"local","tracking":"BO01000000018","tracking_url":"https://track.example/BO01000000018","items":[{"line_no":1,"sku":"A","qty":2}]}}',
]

# dump() of the model those events built, snapshot format 5
OLD_SNAPSHOT = bytes.fromhex(
    "de0010a776657273696f6e05a8636f756e746572739f00020101010002010000cb000000000000000000010000a46d6f6465"
    "a46669666fa77765696768747383a472757368cb4038000000000000a576616c7565cb3f847ae147ae147ba3616765cb3ff0"
    "000000000000b1696e61636375726174655f6f726465727390ae736869707065645f62795f64617981aa323032352d30362d"
    "313501a4736b7573929aa14188ad72656f726465725f706f696e7400ab6f726465725f75705f746f00ac7361666574795f73"
    "746f636b00ae6c6561645f74696d655f64617973cb401c000000000000a36d6f7101a97061636b5f73697a6501a6736f7572"
    "6365b0737570706c6965723a64656661756c74b36261636b6f726465725f7468726573686f6c64c003030101050002c39aa1"
    "4288ad72656f726465725f706f696e7400ab6f726465725f75705f746f00ac7361666574795f73746f636b00ae6c6561645f"
    "74696d655f64617973cb401c000000000000a36d6f7101a97061636b5f73697a6501a6736f75726365b0737570706c696572"
    "3a64656661756c74b36261636b6f726465725f7468726573686f6c64c000000000000000c3a66f72646572739299a84f3030"
    "3030303031c502567b226f70223a226f726465722e7375626d6974222c226964223a6e756c6c2c226368616e6e656c223a22"
    "776562222c226163636f756e74223a2273686f702d31222c2265787465726e616c5f6964223a22452d31222c226f72646572"
    "5f6e756d626572223a222331303031222c22637573746f6d6572223a7b226964223a226339222c226e616d65223a22416461"
    "227d2c22656d61696c223a22616461406578616d706c652e636f6d222c227368697070696e675f61646472657373223a7b22"
    "6e616d65223a22416461204c222c22636f6d70616e79223a22222c226164647265737331223a22222c226164647265737332"
    "223a22222c2263697479223a224c6f6e646f6e222c22726567696f6e223a22222c22706f7374616c5f636f6465223a22222c"
    "22636f756e7472795f636f6465223a224742222c2270686f6e65223a22227d2c22637265617465645f6174223a2232303235"
    "2d30362d31355431303a30303a30305a222c2263757272656e6379223a22474250222c226c696e6573223a5b7b22736b7522"
    "3a2241222c22717479223a322c22756e69745f7072696365223a22392e3530222c2272657175697265735f7368697070696e"
    "67223a747275657d2c7b22736b75223a2242222c22717479223a312c22756e69745f7072696365223a2230222c2272657175"
    "697265735f7368697070696e67223a66616c73657d5d2c2272757368223a747275652c227072696f72697479223a66616c73"
    "652c22736869705f636f6d706c657465223a66616c73652c22686f6c64223a22222c22736f757263655f76657273696f6e22"
    "3a6e756c6c7dc2a0cb41da13b860400000c091a8533030303030303192dc0012a14102a4392e3530c3c3cb40330000000000"
    "00cb41da13b86040000001000002c2a46669666fcb000000000000000000c3c2c2dc0012a14201a130c2c3cb000000000000"
    "0000cb41da13b86040000000000000c2a0cb000000000000000000c2c2c2a099a84f30303030303032c502027b226f70223a"
    "226f726465722e7375626d6974222c226964223a6e756c6c2c226368616e6e656c223a22637376222c226163636f756e7422"
    "3a2264656661756c74222c2265787465726e616c5f6964223a22452d32222c226f726465725f6e756d626572223a22222c22"
    "637573746f6d6572223a7b226964223a22222c226e616d65223a22227d2c22656d61696c223a22222c227368697070696e67"
    "5f61646472657373223a7b226e616d65223a22222c22636f6d70616e79223a22222c226164647265737331223a22222c2261"
    "64647265737332223a22222c2263697479223a22222c22726567696f6e223a22222c22706f7374616c5f636f6465223a2222"
    "2c22636f756e7472795f636f6465223a22222c2270686f6e65223a22227d2c22637265617465645f6174223a6e756c6c2c22"
    "63757272656e6379223a22555344222c226c696e6573223a5b7b22736b75223a2241222c22717479223a342c22756e69745f"
    "7072696365223a22312e3235222c2272657175697265735f7368697070696e67223a747275657d5d2c2272757368223a6661"
    "6c73652c227072696f72697479223a66616c73652c22736869705f636f6d706c657465223a66616c73652c22686f6c64223a"
    "227061796d656e742070656e64696e67222c22736f757263655f76657273696f6e223a22323032352d30362d31355431323a"
    "30303a30305a227dc2a0cb41da13b860800000c09091dc0012a14104a4312e3235c3c2cb4014000000000000cb41da13b860"
    "80000002030000c2a46669666fcb3f50624dd2f1a9fc01c3c2c3a0a9736869706d656e74739199a85330303030303031a84f"
    "30303030303031919301a14102a773686970706564cb41da13b860400000cb41da13b861400000a56c6f63616cad424f3031"
    "303030303030303138da012f5e58410a5e50573831320a5e4c4c313231380a5e434932380a5e464f35302c35305e41304e2c"
    "34302c34305e46445348495020544f3a5e46530a5e464f35302c3133305e41304e2c33362c33365e4644416461204c5e4653"
    "0a5e464f35302c3331305e41304e2c33362c33365e46444c6f6e646f6e5e46530a5e464f35302c3335355e41304e2c33362c"
    "33365e464447425e46530a5e464f35302c3532305e41304e2c33322c33325e46444f72646572202331303031202053686970"
    "6d656e742053303030303030312020556e69747320325e46530a5e464f35302c3538305e41304e2c33322c33325e46444361"
    "7272696572206c6f63616c5e46530a5e464f35302c3635305e4259335e42434e2c3230302c592c4e2c4e5e4644424f303130"
    "30303030303031385e46530a5e585aa87265717565737473919aa9504f2d303030303031a141a2706fa764656661756c7401"
    "00cb41da13b861000000aa323032352d30362d3232c0ffac646561645f6c65747465727390a8726563656970747390a76e6f"
    "7469636573919ca84e30303030303031a84f30303030303031c0a773686970706564a7776562686f6f6ba8637573746f6d65"
    "72a770656e64696e6700cb41da13b861400000cb41da13b861400000a0c5023b7b2274797065223a226e6f746963655f7175"
    "65756564222c227473223a313735303030303030352e302c226e6f746963655f6964223a224e30303030303031222c226f72"
    "6465725f6964223a224f30303030303031222c226b696e64223a2273686970706564222c22656d61696c223a226164614065"
    "78616d706c652e636f6d222c227375626a656374223a224f72646572202331303031206861732073686970706564222c2262"
    "6f6479223a223220756e697428732920736869707065642077697468206c6f63616c2c20747261636b696e67206e756d6265"
    "7220424f30313030303030303031382e222c226368616e6e656c223a22776562686f6f6b222c2261756469656e6365223a22"
    "637573746f6d6572222c22726571756573745f6964223a6e756c6c2c2264617461223a7b226f726465725f6e756d62657222"
    "3a222331303031222c22637573746f6d6572223a22416461222c22656d61696c223a22616461406578616d706c652e636f6d"
    "222c226368616e6e656c223a22776562222c226163636f756e74223a2273686f702d31222c22736869706d656e745f696422"
    "3a225330303030303031222c2263617272696572223a226c6f63616c222c22747261636b696e67223a22424f303130303030"
    "3030303138222c22747261636b696e675f75726c223a2268747470733a2f2f747261636b2e6578616d706c652f424f303130"
    "3030303030303138222c226974656d73223a5b7b226c696e655f6e6f223a312c22736b75223a2241222c22717479223a327d"
    "5d7d7da4746f6c6490a67761726e656490a7616c696173657390"
)


def replay(bodies: list[bytes]) -> World:
    world = World(SETTINGS)
    for body in bodies:
        world.evolve(ev.EVENT_DECODER.decode(body))
    return world


def model(w: World) -> dict:
    """What readers and decisions see of the orders, SKUs and shipments."""
    return {
        "orders": {
            oid: [
                o.status(w.shipments),
                o.hold,
                o.received_ts,
                o.shipments,
                msgspec.to_builtins(o.spec),
                [
                    (
                        ln.sku,
                        ln.qty,
                        ln.unit_price,
                        ln.requires_shipping,
                        ln.rush,
                        ln.allocated,
                        ln.shipped,
                        ln.backordered_at_entry,
                    )
                    for ln in o.lines
                ],
            ]
            for oid, o in w.orders.items()
        },
        "skus": {
            n: [s.on_hand, s.allocated, s.backordered, s.shipped, [(ln.order_id, ln.line_no) for ln in s.queue]]
            for n, s in sorted(w.skus.items())
        },
        "by_key": sorted(w.by_key.items()),
        "shipments": {sid: [sh.status, sh.items, sh.tracking] for sid, sh in w.shipments.items()},
        "requests": {rid: [r.qty, r.expected_date] for rid, r in w.requests.items()},
        "notices": sorted((n.notice_id, n.kind, n.channel) for n in w.notices.values()),
        "counters": [w.n_orders, w.n_shipments, w.n_requests, w.n_notices, w.bo_lines],
    }


def test_an_old_journal_replays_to_the_model_it_recorded():
    w = replay(OLD_BODIES)
    first, second = w.orders["O0000001"], w.orders["O0000002"]
    assert isinstance(first.spec, ev.OrderRecord)  # the journal's own struct, not the wire's request
    assert (first.spec.channel, first.spec.account, first.spec.external_id) == ("web", "shop-1", "E-1")
    assert first.spec.customer.name == "Ada" and first.spec.customer.id == "c9"
    assert (
        first.spec.shipping_address.name,
        first.spec.shipping_address.city,
        first.spec.shipping_address.country_code,
    ) == ("Ada L", "London", "GB")
    assert (first.spec.email, first.spec.currency, first.spec.created_at, first.spec.rush) == (
        "ada@example.com",
        "GBP",
        "2025-06-15T10:00:00Z",
        True,
    )
    assert first.status(w.shipments) == "shipped"
    assert [(ln.sku, ln.qty, ln.unit_price, ln.requires_shipping, ln.shipped) for ln in first.lines] == [
        ("A", 2, Decimal("9.50"), True, 2),
        ("B", 1, Decimal("0"), False, 0),
    ]
    # amended (B x3 -> A x4 at 1.25), released with the version that released it
    assert second.hold == "" and second.spec.source_version == "2025-06-15T12:00:00Z"
    assert [(ln.sku, ln.qty, ln.unit_price, ln.allocated) for ln in second.lines] == [("A", 4, Decimal("1.25"), 3)]
    assert [(ln.sku, ln.qty) for ln in second.spec.lines] == [("A", 4)]
    assert second.status(w.shipments) == "partially_allocated"
    a = w.skus["A"]
    assert (a.on_hand, a.allocated, a.backordered, a.shipped) == (3, 3, 1, 2)
    assert [(ln.order_id, ln.line_no) for ln in a.queue] == [("O0000002", 1)]
    assert sorted(w.by_key.items()) == [(("csv", "default", "E-2"), "O0000002"), (("web", "shop-1", "E-1"), "O0000001")]
    assert list(w.requests) == ["PO-000001"] and w.shipments["S0000001"].status == "shipped"


def test_an_old_order_event_is_written_back_without_the_request_fields():
    old = ev.EVENT_DECODER.decode(OLD_BODIES[1])
    new_body = ev.encode_checked(old)
    assert b'"op"' not in new_body and b'"id"' not in new_body.replace(b'"customer":{"id"', b"")
    again = ev.EVENT_DECODER.decode(new_body)
    assert again == old
    # and the rest of the body is what the old code wrote, field for field, with the fields
    # added since (the order's money, needs_address) at the defaults an old order replays with
    old_json = msgspec.json.decode(OLD_BODIES[1])
    del old_json["order"]["op"], old_json["order"]["id"]
    old_json["order"].update(totals=None, needs_address=False)
    for line in old_json["order"]["lines"]:
        line.update(discount="0", line_total=None, channel_line_id="")
    assert msgspec.json.decode(new_body) == old_json


def test_an_old_snapshot_is_set_aside_for_a_replay_and_a_new_one_restores_to_it():
    # The old snapshot lacks the KPIs' per-day aggregates, which only a replay from the
    # first event rebuilds: restore refuses it, and recovery replays the journal instead.
    with pytest.raises(SnapshotOutdated, match="snapshot format 5, this build reads"):
        restore(SETTINGS, OLD_SNAPSHOT)
    replayed = replay(OLD_BODIES)
    restored = restore(SETTINGS, dump(replayed))
    assert model(restored) == model(replayed)
    assert restored.kpi.report(1750000100.0, "2025-06-15") == replayed.kpi.report(1750000100.0, "2025-06-15")
    # and a snapshot written now restores to the same model again
    assert model(restore(SETTINGS, dump(restored))) == model(replayed)


# The events table as schema version 1 created it: no actor column.
SCHEMA_1 = """
CREATE TABLE events (seq INTEGER PRIMARY KEY, ts REAL NOT NULL, type TEXT NOT NULL, sku TEXT,
                     order_id TEXT, cause TEXT, corr TEXT, body BLOB NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1');
"""


def old_journal_file(path) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(SCHEMA_1)
        for seq, body in enumerate(OLD_BODIES, 1):
            e = ev.EVENT_DECODER.decode(body)
            conn.execute(
                "INSERT INTO events VALUES (?,?,?,?,?,?,?,?)",
                (seq, e.ts, ev.tag_of(e), getattr(e, "sku", None), getattr(e, "order_id", None), "old", "-", body),
            )
        conn.commit()


def test_an_old_journal_file_gains_the_actor_column_on_open(tmp_path):
    db = tmp_path / "old.db"
    old_journal_file(db)
    # read before any daemon opened it (export audit of an old file): actor is null
    out = io.StringIO()
    assert backup.export(db, "audit", "jsonl", out) == len(OLD_BODIES)
    assert {json.loads(x)["actor"] for x in out.getvalue().splitlines()} == {None}

    j = Journal(db)
    assert j.open() == len(OLD_BODIES)
    e = ev.Adjusted(ts=1750000009.0, sku="A", delta=1, reason="count")
    j._commit([(len(OLD_BODIES) + 1, e.ts, "adjusted", "A", None, "stock.adjust", "c1.1", ev.encode_checked(e), "ada")])
    j.close()
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (SCHEMA_VERSION,)
        rows = conn.execute("SELECT seq, type, cause, actor FROM events ORDER BY seq").fetchall()
    assert rows[:2] == [(1, "received", "old", None), (2, "order_received", "old", None)]  # kept as they were
    assert rows[-1] == (len(OLD_BODIES) + 1, "adjusted", "stock.adjust", "ada")
    # opened again: already migrated, nothing to do; the old rows still replay
    j = Journal(db)
    assert j.open() == len(OLD_BODIES) + 1
    assert model(replay([body for chunk in j.read() for _seq, body in chunk][: len(OLD_BODIES)])) == model(
        replay(OLD_BODIES)
    )
    j.close()
    out = io.StringIO()
    backup.export(db, "audit", "csv", out)
    header, *lines = out.getvalue().splitlines()
    assert header.split(",")[:8] == ["seq", "at", "type", "sku", "order_id", "cause", "actor", "correlation_id"]
    assert lines[0].split(",")[6] == "" and lines[-1].split(",")[6] == "ada"


def test_a_journal_of_an_unknown_future_schema_is_refused(tmp_path):
    db = tmp_path / "future.db"
    with closing(sqlite3.connect(db)) as conn:
        conn.executescript(SCHEMA_1.replace("'1'", "'99'"))
    with pytest.raises(RuntimeError, match="schema 99"):
        Journal(db).open()
