"""The crash test: clients stream orders, resubmissions, receipts, picks,
cancellations and counts at a real daemon while it is killed with SIGKILL at random
(seeded) moments and restarted; afterwards every acknowledged request must be there and
the invariants must hold (conservation, no over-allocation, no double or over-shipment,
nothing acknowledged lost, idempotent intake, an audit record for every change), checked
over the socket and in the journal.

Only what a client *received* with ``ok: true`` counts as acknowledged. A request whose
connection died before its reply may or may not have happened: the checks allow both.
Set BACKORDER_CRASH_SEED to replay another schedule.
"""

from __future__ import annotations

import collections
import itertools
import os
import random
import threading
import time

import msgspec
import pytest
from bo_support import read_db

from backorder.client import CallError, Client
from backorder.launcher import WaitTimeout, wait_until

pytestmark = pytest.mark.timeout(120)

SEED = int(os.environ.get("BACKORDER_CRASH_SEED", "20250611"))
SKUS = [f"CR-{n:02d}" for n in range(20)]
CHANNELS = ("web", "pos", "edi")
ACCOUNTS = ("default", "b2b")
KILLS = 5
RECONNECT_S = 20.0  # a client gives up if the daemon does not answer for this long
REPLY_TIMEOUT_S = 10.0  # a live daemon that does not answer in this time is a failure
CONFIG = """
[daemon]
actor_idle_s = 0.3   # passivate SKU actors quickly: activation races are part of the test
"""


class Worker(threading.Thread):
    """One client connection streaming a seeded random mix of state-changing requests.

    Records every request whose reply it received with ok=true, with that reply; a lost
    connection (daemon killed) just means reconnecting once the socket answers again.
    """

    def __init__(self, n: int, socket: str, stop: threading.Event, *, pipelined: bool = False) -> None:
        super().__init__(name=f"crash-client-{n}", daemon=True)
        self.n = n
        self.socket = socket
        self.stop = stop
        self.pipelined = pipelined
        self.rng = random.Random(SEED * 31 + n)
        self.client: Client | None = None
        self.failure: BaseException | None = None
        self.keys = 0
        self.wire_ids = itertools.count(1)
        self.sent: dict[tuple[str, str, str], dict] = {}  # every order body sent, acked or not
        self.submits: list[tuple[tuple[str, str, str], dict]] = []  # (key, reply) acked
        self.receives: list[dict] = []  # acked stock.receive: request fields + reply
        self.picks: list[tuple[str, dict]] = []  # (shipment_id, reply)
        self.cancels: list[tuple[str, dict]] = []  # (order_id, reply)
        self.adjusts: list[tuple[str, int, dict]] = []
        self.rejected: collections.Counter[str] = collections.Counter()
        self.disconnects = 0
        self.torn = 0  # replies cut in the middle of a line by the kill
        self.open_pos: list[dict] = []

    # --- connection -------------------------------------------------------------

    def _connect(self) -> Client:
        return wait_until(
            lambda: Client(self.socket, timeout=REPLY_TIMEOUT_S),
            timeout=RECONNECT_S,
            message="the daemon did not come back",
            ignore=(FileNotFoundError, ConnectionRefusedError),
        )

    def _drop(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                if self.client is None:
                    self.client = self._connect()
                try:
                    if self.pipelined:
                        self._pipelined_submits()
                    else:
                        self._step()
                except TimeoutError:
                    raise  # the daemon is alive but does not answer: a bug, not a crash
                except (ConnectionError, OSError):
                    self.disconnects += 1
                    self._drop()
                except msgspec.DecodeError:
                    self.torn += 1
                    self._drop()
        except BaseException as exc:
            self.failure = exc
        finally:
            self._drop()

    def _call(self, op: str, **fields):
        """The result, or None when the daemon rejected it (counted by code)."""
        assert self.client is not None
        try:
            return self.client.call(op, **fields)
        except CallError as exc:
            self.rejected[exc.code] += 1
            return None

    # --- single requests ----------------------------------------------------------

    def _step(self) -> None:
        r = self.rng.random()
        if r < 0.40:
            self._submit(self._new_order())
        elif r < 0.50 and self.sent:
            self._submit(self.sent[self.rng.choice(list(self.sent))])
        elif r < 0.72:
            self._receive()
        elif r < 0.90:
            self._pick()
        elif r < 0.96:
            self._cancel()
        else:
            self._adjust()

    def _new_order(self) -> dict:
        self.keys += 1
        rng = self.rng
        lines = [
            {"sku": rng.choice(SKUS), "qty": rng.randint(1, 4), "unit_price": f"{rng.randint(1, 50)}.99"}
            for _ in range(rng.randint(1, 3))
        ]
        if rng.random() < 0.05:
            lines.append({"sku": "GIFT-CARD", "qty": 1, "unit_price": "25.00", "requires_shipping": False})
        body = {
            "channel": rng.choice(CHANNELS),
            "account": rng.choice(ACCOUNTS),
            "external_id": f"X{self.n}-{self.keys}",
            "email": f"c{self.keys}@example.com",
            "shipping_address": {"name": "Crash Test", "city": "Ghent", "country_code": "BE"},
            "lines": lines,
            "ship_complete": rng.random() < 0.2,
            "rush": rng.random() < 0.1,
        }
        self.sent[key_of(body)] = body
        return body

    def _submit(self, body: dict) -> None:
        res = self._call("order.submit", **body)
        if res is not None:
            self.submits.append((key_of(body), res))

    def _receive(self) -> None:
        rng = self.rng
        if rng.random() < 0.6:
            if not self.open_pos or rng.random() < 0.3:
                res = self._call("procurement.list", status="open", limit=1000)
                self.open_pos = res["requests"] if res else []
            if self.open_pos:
                po = self.open_pos.pop(rng.randrange(len(self.open_pos)))
                qty = rng.randint(1, max(po["qty"] - po["received"], 1))
                self._receive_one(po["sku"], qty, po["request_id"])
                return
        self._receive_one(rng.choice(SKUS), rng.randint(1, 6), None)

    def _receive_one(self, sku: str, qty: int, reference: str | None) -> None:
        fields = {"sku": sku, "qty": qty} | ({"reference": reference} if reference else {})
        res = self._call("stock.receive", **fields)
        if res is not None:
            self.receives.append({**fields, "reply": res})

    def _pick(self) -> None:
        rng = self.rng
        if self.picks and rng.random() < 0.15:  # a repeated pick must give the same label
            ids = [self.picks[rng.randrange(len(self.picks))][0]]
        else:
            res = self._call("shipments.list", status="picking", limit=200)
            shipments = res["shipments"] if res else []
            ids = [sh["shipment_id"] for sh in rng.sample(shipments, min(len(shipments), rng.randint(1, 3)))]
        for sid in ids:
            res = self._call("pick.confirm", shipment_id=sid)
            if res is not None:
                self.picks.append((sid, res))

    def _cancel(self) -> None:
        if not self.submits:
            return
        _key, reply = self.submits[self.rng.randrange(len(self.submits))]
        res = self._call("order.cancel", order_id=reply["order_id"], reason="crash test")
        if res is not None:
            self.cancels.append((reply["order_id"], res))

    def _adjust(self) -> None:
        sku = self.rng.choice(SKUS)
        delta = self.rng.choice([-3, -2, -1, 1, 2, 3])
        res = self._call("stock.adjust", sku=sku, delta=delta, reason="cycle count")
        if res is not None:
            self.adjusts.append((sku, delta, res))

    # --- pipelined submits ----------------------------------------------------------

    def _pipelined_submits(self) -> None:
        """Send a batch of orders (new ones, a resubmission, sometimes the same order twice
        in one batch) before reading any reply; record each reply as it arrives."""
        assert self.client is not None
        rng = self.rng
        batch = [self._new_order() for _ in range(rng.randint(4, 12))]
        if self.sent and rng.random() < 0.5:
            batch.append(self.sent[rng.choice(list(self.sent))])
        if rng.random() < 0.3:
            batch.append(batch[0])  # a duplicate while the first is still being served
        wire = {}
        buf = bytearray()
        for body in batch:
            req_id = f"p{self.n}-{next(self.wire_ids)}"
            wire[req_id] = body
            buf += msgspec.json.encode({"op": "order.submit", "id": req_id, **body}) + b"\n"
        self.client.send_raw(bytes(buf))
        while wire:
            msg = self.client.read_line()
            body = wire.pop(msg.get("id"), None)
            if body is None:
                continue
            if msg["ok"]:
                self.submits.append((key_of(body), msg["result"]))
            else:
                self.rejected[msg["error"]["code"]] += 1
        self.stop.wait(0.03)  # a steady stream, not a flood: the final checks read every order


def key_of(body: dict) -> tuple[str, str, str]:
    return body["channel"], body.get("account", "default"), body["external_id"]


def read_journal(db) -> list[tuple]:
    return read_db(db, "SELECT seq, ts, type, sku, order_id, cause, corr, body FROM events ORDER BY seq")


def wait_idle(c: Client) -> dict:
    """Health once the daemon has stopped deciding (no new event for 50 ms) and has
    committed everything (bounded: a daemon that never settles fails the checks)."""
    last = None

    def settled() -> dict | None:
        nonlocal last
        h = c.call("health")
        j = h["journal"]
        if j["lag"] == 0 and j["last_seq"] == last:
            return h
        last = j["last_seq"]
        return None

    try:
        return wait_until(settled, timeout=10, interval=0.05)
    except WaitTimeout:
        return c.call("health")


def snapshot(c: Client) -> dict:
    """What a restart must rebuild exactly (minus fields that move with the clock)."""
    skus = {s: c.call("sku.get", sku=s, lines=0) for s in SKUS}
    for view in skus.values():
        view.pop("oldest_wait_hours")
    stats = c.call("stats")
    stats["counts"].pop("oldest_wait_hours")
    orders = []
    while len(page := c.call("orders.list", limit=1000, offset=len(orders))["orders"]):
        orders += page
    return {
        "skus": skus,
        "counts": stats["counts"],
        "promises": stats["promises"],  # kept / missed per kind: a new promise's confidence
        "orders": orders,
        "kpis": [stats[k] for k in ("fulfillment_rate", "order_accuracy", "avg_reorder_lead_time_hours")],
        "requests": c.call("procurement.list", status="all", limit=10000)["requests"],
        "shipments": c.call("shipments.list", status="all", limit=10000)["shipments"],
    }


def test_kill9_while_clients_stream_loses_nothing_and_ships_nothing_twice(make_daemon):
    t0 = time.monotonic()
    d = make_daemon(CONFIG)
    with d.client() as c:
        for sku in SKUS:
            c.call("sku.configure", sku=sku, reorder_point=6, order_up_to=30, lead_time_days=2, pack_size=5)
        assert len(c.call("procurement.list", limit=1000)["requests"]) == len(SKUS)

    stop = threading.Event()
    workers = [Worker(n, str(d.socket), stop, pipelined=(n == 3)) for n in range(4)]
    for w in workers:
        w.start()
    rng = random.Random(SEED)
    acked_at_kill = []

    def acked() -> int:
        return sum(len(w.submits) + len(w.receives) + len(w.picks) for w in workers)

    try:
        # The random pauses are the point of the test (kill -9 at arbitrary moments of
        # the stream, restart after an arbitrary outage): time passing, not synchronisation.
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.3, 1.0))
            d.kill9()
            acked_at_kill.append(acked())
            time.sleep(rng.uniform(0.0, 0.15))
            d.start()
        # the clients reconnect and keep streaming to the last daemon
        wait_until(
            lambda: acked() >= acked_at_kill[-1] + 50,
            timeout=RECONNECT_S,
            message="the clients made no progress after the last restart",
        )
    finally:
        stop.set()
        for w in workers:
            w.join(RECONNECT_S + REPLY_TIMEOUT_S)
    for w in workers:
        assert not w.is_alive(), f"{w.name} did not stop"
        if w.failure is not None:
            raise AssertionError(f"{w.name} failed") from w.failure
    stream_s = time.monotonic() - t0

    with d.client() as c:
        wait_idle(c)
        before = snapshot(c)
    assert d.stop() == 0  # a clean stop after the crashes, then a clean start
    d.start()
    with d.client() as c:
        after = snapshot(c)
    assert after == before, "the state rebuilt from the journal differs from the state before the restart"
    report = check_everything(d, workers)
    report["stream_s"] = round(stream_s, 1)
    report["total_s"] = round(time.monotonic() - t0, 1)
    report["acked_at_each_kill"] = acked_at_kill
    print("crash test:", report)
    assert report["total_s"] < 60


def check_everything(d, workers: list[Worker]) -> dict:
    problems: dict[str, list[str]] = collections.defaultdict(list)
    submits = [s for w in workers for s in w.submits]
    receives = [r for w in workers for r in w.receives]
    picks = [p for w in workers for p in w.picks]
    cancels = [x for w in workers for x in w.cancels]
    sent = {k: b for w in workers for k, b in w.sent.items()}
    rejected = sum((w.rejected for w in workers), collections.Counter())

    # The run must have done real work on both sides of the kills to prove anything.
    assert len(submits) >= 50 and len(receives) >= 20 and len(picks) >= 10, (len(submits), len(receives), len(picks))
    assert sum(w.disconnects + w.torn for w in workers) >= KILLS
    if rejected["internal_error"]:
        problems["no internal errors"].append(f"{rejected['internal_error']} replies were internal_error")

    with d.client() as c:
        health = wait_idle(c)
        rows = read_journal(d.db)
        events = [msgspec.json.decode(r[7]) for r in rows]

        # --- inv. 7: audit ---------------------------------------------------------
        seqs = [r[0] for r in rows]
        if seqs != list(range(1, len(seqs) + 1)):
            gaps = sorted(set(range(1, (seqs[-1] if seqs else 0) + 1)) - set(seqs))
            problems["inv7 contiguous seqs"].append(f"missing seqs {gaps[:20]}")
        if health["journal"]["last_seq"] != len(rows):
            problems["inv7 journal == model"].append(
                f"daemon last_seq {health['journal']['last_seq']}, rows {len(rows)}"
            )
        for (seq, ts, kind, _sku, _oid, cause, corr, _body), e in zip(rows, events, strict=True):
            if not (isinstance(ts, float) and ts > 0) or not kind or not cause or not corr or corr == "-":
                problems["inv7 ts/type/cause/corr"].append(f"seq {seq}: ts={ts} type={kind} cause={cause} corr={corr}")
            if e["type"] != kind or e["ts"] != ts:
                problems["inv7 row matches body"].append(f"seq {seq}: row {kind}@{ts}, body {e['type']}@{e['ts']}")

        by_type = collections.defaultdict(list)
        for e in events:
            by_type[e["type"]].append(e)
        for e in by_type["shipments_created"]:  # a batch of shipments: one shipment_created each
            by_type["shipment_created"] += [
                {"type": "shipment_created", "shipment_id": sid, "order_id": oid, "items": items}
                for sid, oid, items in e["shipments"]
            ]

        # --- inv. 5: idempotent intake ------------------------------------------------
        keys = collections.defaultdict(list)
        for e in by_type["order_received"]:
            o = e["order"]
            keys[(o["channel"], o.get("account", "default"), o["external_id"])].append(e["order_id"])
        for key, oids in keys.items():
            if len(oids) > 1:
                problems["inv5 one order per key"].append(f"{key} -> {oids}")
        for key, reply in submits:
            if keys.get(key, [None])[0] != reply["order_id"]:
                problems["inv5 ack names the journaled order"].append(
                    f"{key}: acked {reply['order_id']}, journal {keys.get(key)}"
                )
        first_ack: dict[tuple, dict] = {}
        for w in workers:  # each key belongs to one worker, so its list is in time order
            for key, reply in w.submits:
                prev = first_ack.setdefault(key, reply)
                if prev is not reply and (not reply["duplicate"] or reply["order_id"] != prev["order_id"]):
                    problems["inv5 resubmit acked as duplicate of the first"].append(
                        f"{key}: first {prev['order_id']} dup={prev['duplicate']}, "
                        f"later {reply['order_id']} dup={reply['duplicate']}"
                    )

        # --- the orders, SKUs and KPIs as the daemon shows them -----------------------
        order_ids = [e["order_id"] for e in by_type["order_received"]]
        details = c.pipeline([{"op": "order.get", "order_id": oid} for oid in order_ids])
        orders = {}
        for oid, rep in zip(order_ids, details, strict=True):
            if rep["ok"]:
                orders[oid] = rep["result"]
            else:
                problems["journaled order is readable"].append(f"{oid}: {rep['error']}")
        skus = {s: c.call("sku.get", sku=s, lines=0) for s in SKUS}
        stats = c.call("stats")

        # --- inv. 4: nothing lost -----------------------------------------------------
        for key, reply in submits:
            o = orders.get(reply["order_id"])
            if o is None:
                problems["inv4 acked order exists"].append(f"{key} acked as {reply['order_id']}: not found")
                continue
            got = [(ln["sku"], ln["qty"]) for ln in o["lines"]]
            want = [(ln["sku"], ln["qty"]) for ln in sent[key]["lines"]]
            if (o["channel"], o["account"], o["external_id"]) != key or got != want:
                problems["inv4 acked order is the one sent"].append(
                    f"{reply['order_id']}: sent {key} {want}, has {(o['channel'], o['account'], o['external_id'])} {got}"
                )
        shipments = {sh["shipment_id"]: sh for o in orders.values() for sh in o["shipments"]}
        for sid, reply in picks:
            sh = shipments.get(sid)
            if sh is None or sh["status"] != "shipped" or sh["tracking_number"] != reply["tracking_number"]:
                problems["inv4 acked pick is shipped with its tracking number"].append(
                    f"{sid}: acked {reply['tracking_number']}, now {sh}"
                )
        for oid, _reply in cancels:
            if orders.get(oid, {}).get("status") != "cancelled":
                problems["inv4 acked cancel holds"].append(f"{oid}: {orders.get(oid, {}).get('status')}")
        acked_received = collections.Counter()
        for r in receives:
            acked_received[r["sku"]] += r["reply"]["received"]
            if r["reply"]["received"] != r["qty"]:
                problems["inv4 receipt reply"].append(f"{r}")
        journal_received = collections.Counter()
        for e in by_type["received"]:
            journal_received[e["sku"]] += e["qty"]
        for sku in SKUS:
            if journal_received[sku] < acked_received[sku]:
                problems["inv4 acked receipts journaled"].append(
                    f"{sku}: acked {acked_received[sku]}, journal {journal_received[sku]}"
                )

        # --- inv. 1: conservation -----------------------------------------------------
        journal_adjusted = collections.Counter()
        for e in by_type["adjusted"]:
            journal_adjusted[e["sku"]] += e["delta"]
        journal_shipped = collections.Counter()
        for e in by_type["units_shipped"]:
            journal_shipped[e["sku"]] += e["qty"]
        for sku, s in skus.items():
            if s["on_hand"] != s["received"] + s["adjusted"] - s["shipped"]:
                problems["inv1 on_hand = received + adjusted - shipped"].append(f"{sku}: {s}")
            got = (s["received"], s["adjusted"], s["shipped"])
            want = (journal_received[sku], journal_adjusted[sku], journal_shipped[sku])
            if got != want:
                problems["inv1 sku counters = journal sums"].append(f"{sku}: sku.get {got}, journal {want}")

        # --- inv. 2: no over-allocation -------------------------------------------------
        line_alloc = collections.Counter()
        for oid, o in orders.items():
            for ln in o["lines"]:
                if ln["allocated"] < 0 or ln["allocated"] + ln["shipped"] > ln["qty"]:
                    problems["inv2 line allocated + shipped <= qty"].append(
                        f"{oid} line {ln['line_no']} {ln['sku']}: qty {ln['qty']}, allocated {ln['allocated']}, "
                        f"shipped {ln['shipped']}"
                    )
                line_alloc[ln["sku"]] += ln["allocated"]
        for sku, s in skus.items():
            if not 0 <= s["allocated"] <= s["on_hand"]:
                problems["inv2 allocated <= on_hand"].append(
                    f"{sku}: allocated {s['allocated']}, on_hand {s['on_hand']}"
                )
            if s["allocated"] != line_alloc[sku]:
                problems["inv2 sku allocated = sum of its lines"].append(
                    f"{sku}: {s['allocated']} vs {line_alloc[sku]}"
                )

        # --- inv. 3: no double or over-shipment ----------------------------------------
        shipped_events = collections.Counter(e["shipment_id"] for e in by_type["shipment_shipped"])
        for sid, n in shipped_events.items():
            if n != 1:
                problems["inv3 one shipment_shipped per shipment"].append(f"{sid}: {n} events")
        for sid, sh in shipments.items():
            if (sh["status"] == "shipped") != (sid in shipped_events):
                problems["inv3 shipped status = journal"].append(f"{sid}: {sh['status']}, events {shipped_events[sid]}")
        created = {e["shipment_id"]: sorted(map(tuple, e["items"])) for e in by_type["shipment_created"]}
        units = collections.defaultdict(list)
        for e in by_type["units_shipped"]:
            units[e["shipment_id"]].append((e["line_no"], e["sku"], e["qty"]))
        for sid, items in units.items():
            if sorted(items) != created.get(sid):
                problems["inv3 units shipped = shipment items"].append(
                    f"{sid}: shipped {items}, created {created.get(sid)}"
                )
        if stats["counts"]["double_shipments"] != 0:
            problems["inv3 stats.double_shipments == 0"].append(str(stats["counts"]))
        # (order_accuracy counts recorded exceptions, of which this run makes none: it must stay 1)
        if stats["counts"]["orders_inaccurate"] != 0 or stats["order_accuracy"] not in (1.0, None):
            problems["inv3 no over-, double or wrong-SKU shipment"].append(
                f"{stats['order_accuracy']}, {stats['counts']}"
            )
        if stats["counts"]["dead_letters"]:
            problems["no actor crashed"].append(str(c.call("deadletters.list")))

        # --- inv. 4/5 again: every acked order resubmitted is a duplicate and changes nothing
        replies = c.pipeline([{"op": "order.submit", **sent[key]} for key in first_ack], window=200)
        for (key, first), rep in zip(first_ack.items(), replies, strict=True):
            if not rep["ok"] or not rep["result"]["duplicate"] or rep["result"]["order_id"] != first["order_id"]:
                problems["inv5 resubmit after restart is a duplicate"].append(
                    f"{key}: first {first['order_id']}, now {rep}"
                )
        after = wait_idle(c)
        if after["journal"]["last_seq"] != health["journal"]["last_seq"]:
            problems["inv5 duplicates change nothing"].append(
                f"last_seq {health['journal']['last_seq']} -> {after['journal']['last_seq']}"
            )

    log = d.log.read_text(errors="replace").splitlines()
    crashes = [ln for ln in log if "actor_crashed" in ln or "request_failed" in ln]
    if crashes:
        problems["daemon log has no crashes"].extend(crashes[:5])
    recovered = [msgspec.json.decode(ln) for ln in log if '"journal_recovered"' in ln]
    if len(recovered) != d.starts or recovered[-1]["new_decisions"] != 0:
        problems["a clean stop leaves nothing for recovery to decide"].append(str(recovered[-1:]))

    assert not problems, "invariant violations:\n" + "\n".join(
        f"- {check} ({len(items)}):\n    " + "\n    ".join(items[:8]) for check, items in problems.items()
    )
    return {
        "events": len(rows),
        "orders": len(orders),
        "acked": {
            "submits": len(submits),
            "duplicates": sum(r["duplicate"] for _, r in submits),
            "receives": len(receives),
            "picks": len(picks),
            "cancels": len(cancels),
            "adjusts": sum(len(w.adjusts) for w in workers),
        },
        "shipped": len(shipped_events),
        "disconnects": sum(w.disconnects for w in workers),
        "torn": sum(w.torn for w in workers),
        "rejected": dict(rejected),
        "starts": d.starts,
        "recovery_decisions": [r["new_decisions"] for r in recovered],
    }
