"""What a read's reply waits for (``Journal.fence``): the real journal, engine, router,
handlers and gateway in process, over in-memory connections, with the journal's commit
held open (a disk that stalls; a held commit cannot be arranged in a daemon process
without racing SQLite's busy timeout). While a SKU's policy_tuned is not durable, a read
of another SKU, or of an order without a line on it, is answered; a read that shows the
tuned SKU waits, and so does every read after an event that is not confined to one SKU.
A connection's replies keep their order.

These tests are marked trio by tests/actors/conftest.py; ``nursery`` is a pytest-trio fixture.
"""

from __future__ import annotations

import functools
import json
import threading
from types import SimpleNamespace

import trio
from test_connection_containment import Peer, open_connection

from backorder.actors.engine import PLANNER, Engine
from backorder.actors.messages import Tune
from backorder.actors.router import Router
from backorder.clock import SimClock
from backorder.config.settings import DaemonSettings, Settings
from backorder.daemon import access, handlers, metrics, server
from backorder.daemon.journal import Journal
from backorder.planner import wire

T0 = 1_700_000_000.0


class HeldCommits:
    """The journal's commits wait at a gate while it is closed (its writer thread blocks)."""

    def __init__(self, journal: Journal) -> None:
        self.open = threading.Event()
        self.open.set()
        self.entered = threading.Event()
        commit = journal._commit

        def held(*args):
            self.entered.set()
            self.open.wait(30)
            commit(*args)

        journal._commit = held

    def close(self) -> None:
        self.entered.clear()
        self.open.clear()

    def release(self) -> None:
        self.open.set()


async def site(tmp_path, nursery):
    """A daemon's serving parts in process: journal, engine, router, handlers, gateway."""
    settings = Settings(daemon=DaemonSettings(db=str(tmp_path / "j.db")))
    journal = Journal(settings.daemon.db)
    journal.open()
    await nursery.start(journal.run)
    engine = Engine(settings, journal, SimClock(start=T0))
    router = Router(engine, nursery, settings.daemon.actor_idle_s)
    await router.start()
    daemon = SimpleNamespace(
        settings=settings,
        hub=server.Hub(),
        router=router,
        engine=engine,
        audit=None,
        intake=None,
        notifier=None,
        stepper=None,
        planner=None,
        threepl=None,
        integrity=None,
        health=lambda: {"status": "serving"},
    )
    daemon.gateway = server.Gateway(
        settings=settings,
        journal=journal,
        now=engine.now,
        hub=daemon.hub,
        recorder=metrics.Recorder(),
        budgets=server.Budgets(),
        connections=set(),
        roles=access.Roles(settings.access),
        handle=functools.partial(handlers.handle, handlers.Context.of(daemon)),
    )
    return daemon, journal, router


def request(op: str, req_id, **fields) -> bytes:
    return json.dumps({"op": op, "id": req_id, **fields}).encode()


async def call(peer: Peer, op: str, req_id, **fields) -> dict:
    await peer.send(request(op, req_id, **fields))
    with trio.fail_after(10):
        got = await peer.read()
    assert got is not None and got["id"] == req_id and got["ok"], got
    return got["result"]


async def no_reply(peer: Peer) -> bool:
    """Nothing arrives within 0.3 s (the gate is closed: nothing that waits can)."""
    with trio.move_on_after(0.3):
        await peer.read()
        return False
    return True


def order(ext: str, *skus: str) -> dict:
    lines = [{"sku": s, "qty": 2, "unit_price": "2.50"} for s in skus]
    return {"channel": "web", "external_id": ext, "lines": lines}


def tuned(sku: str) -> wire.SkuResult:
    return wire.SkuResult(
        sku=sku,
        new=wire.Levels(reorder_point=7, order_up_to=30, safety_stock=2),
        demand_class="smooth",
        model="SeasonalES",
        forecast=[1.0] * 30,
        daily_mean=1.0,
        lead_time_days=5.0,
    )


async def test_a_read_waits_only_for_the_events_that_change_what_it_shows(tmp_path, nursery):
    daemon, journal, router = await site(tmp_path, nursery)
    peers = [(await open_connection(nursery, daemon))[0] for _ in range(5)]
    setup = peers[0]
    await call(setup, "sku.configure", 1, sku="A", mode="suggest")
    mix = (await call(setup, "order.submit", 2, **order("mix", "A", "B")))["order_id"]
    b_only = (await call(setup, "order.submit", 3, **order("b-only", "B")))["order_id"]
    await journal.flush()

    gate = HeldCommits(journal)
    gate.close()
    done = trio.Event()
    router.send("A", Tune(result=tuned("A"), done=lambda outcome: done.set(), corr="run-1", actor=PLANNER))
    with trio.fail_after(10):
        await done.wait()
        await trio.to_thread.run_sync(gate.entered.wait, 10)  # its commit is held open
    assert journal.committed_seq < journal.last_seq == journal.confined_seq["A"]

    # shows nothing of A: answered while A's policy_tuned is not durable
    b = await call(peers[1], "sku.get", 10, sku="B")
    assert b["sku"] == "B" and b["waiting_lines"] == 2
    assert (await call(peers[1], "order.get", 11, order_id=b_only))["order_id"] == b_only
    assert journal.committed_seq < journal.last_seq

    # shows A: waits for that commit
    await peers[2].send(request("sku.get", 20, sku="A"))
    await peers[3].send(request("order.get", 30, order_id=mix))
    await peers[3].send(request("sku.get", 31, sku="B"))  # behind the reply before it
    await peers[4].send(request("planner.explain", 40, sku="A"))  # no planner: refused, waits all the same
    assert await no_reply(peers[2]) and await no_reply(peers[3]) and await no_reply(peers[4])

    gate.release()
    with trio.fail_after(10):
        a = await peers[2].read()
        assert a["id"] == 20 and a["result"]["reorder_point"] == 0  # suggest: recorded, not applied
        assert journal.committed_seq >= journal.confined_seq["A"]  # durable before it left
        assert [(await peers[3].read())["id"] for _ in range(2)] == [30, 31]  # in order
        assert (await peers[4].read())["error"]["code"] == "planner_disabled"
    assert daemon.engine.world.tuned["A"].new.reorder_point == 7


async def test_after_an_event_not_confined_to_a_sku_every_read_waits(tmp_path, nursery):
    daemon, journal, router = await site(tmp_path, nursery)
    writer, reader = [(await open_connection(nursery, daemon))[0] for _ in range(2)]
    await call(writer, "order.submit", 1, **order("b-only", "B"))
    await call(writer, "sku.configure", 2, sku="C", reorder_point=1, order_up_to=5)
    await journal.flush()

    gate = HeldCommits(journal)
    gate.close()
    await writer.send(request("stock.adjust", 3, sku="B", delta=5, reason="count"))
    with trio.fail_after(10):
        await trio.to_thread.run_sync(gate.entered.wait, 10)
    assert journal.unconfined_seq == journal.last_seq > journal.committed_seq
    # C has nothing to do with B's stock, but an event outside SKU_CONFINED may change anything
    await reader.send(request("sku.get", 10, sku="C"))
    assert await no_reply(writer) and await no_reply(reader)
    gate.release()
    with trio.fail_after(10):
        assert (await writer.read())["id"] == 3
        assert (await reader.read())["result"]["sku"] == "C"
    assert journal.committed_seq == journal.last_seq
