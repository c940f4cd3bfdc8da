"""The trio actors over a real journal (SQLite on a temp file): passivation and
re-activation of SKU actors, group commit, and supervision with dead letters.

These tests are marked trio by tests/actors/conftest.py; ``nursery`` and
``autojump_clock`` are pytest-trio fixtures.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from decimal import Decimal

import msgspec
import pytest
import trio
import trio.testing

from backorder import protocol as p
from backorder.actors import events as ev
from backorder.actors.engine import Engine
from backorder.actors.messages import SETTLED_CHUNK, Settle
from backorder.actors.router import Router, route
from backorder.clock import SimClock
from backorder.config.settings import DaemonSettings, Settings
from backorder.daemon.journal import Journal
from backorder.daemon.recovery import replay

T0 = 1_700_000_000.0
IDLE_S = 30.0


class Reply:
    """What the gateway hands an actor with a request: ok() or error(), exactly once."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self._done = trio.Event()

    def ok(self, result) -> None:
        self.calls.append(("ok", result))
        self._done.set()

    def error(self, code: str, message: str) -> None:
        self.calls.append(("error", code, message))
        self._done.set()

    async def wait(self) -> tuple:
        with trio.fail_after(10):
            await self._done.wait()
        await trio.testing.wait_all_tasks_blocked()  # a second answer would show up here
        assert len(self.calls) == 1, self.calls
        return self.calls[0]

    async def result(self) -> dict:
        answer = await self.wait()
        assert answer[0] == "ok", answer
        return answer[1]

    async def error_code(self) -> str:
        answer = await self.wait()
        assert answer[0] == "error", answer
        return answer[1]


class Site:
    """An engine with a real journal and a router, all in the test's nursery."""

    def __init__(self, engine: Engine, router: Router, nursery: trio.Nursery) -> None:
        self.engine = engine
        self.world = engine.world
        self.journal = engine.journal
        self.router = router
        self.nursery = nursery
        self.n = 0

    def send(self, req) -> Reply:
        """Route a request the way the gateway does, with a fresh correlation id."""
        self.n += 1
        reply = Reply()
        route(self.router, req, reply, f"corr-{self.n}")
        return reply

    async def call(self, req) -> dict:
        return await self.send(req).result()

    def rows(self, sql: str, *args) -> list[tuple]:
        conn = sqlite3.connect(self.journal.path)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()


@pytest.fixture
async def site(tmp_path, nursery):
    settings = Settings(daemon=DaemonSettings(actor_idle_s=IDLE_S, db=str(tmp_path / "j.db")))
    journal = Journal(settings.daemon.db)
    journal.open()
    await nursery.start(journal.run)
    engine = Engine(settings, journal, SimClock(start=T0))
    router = Router(engine, nursery, settings.daemon.actor_idle_s)
    await router.start()
    yield Site(engine, router, nursery)
    await journal.flush()
    journal.close()


def order(ext: str, *lines: tuple[str, int], ship_complete: bool = False) -> p.OrderSubmit:
    return p.OrderSubmit(
        channel="web",
        external_id=ext,
        ship_complete=ship_complete,
        lines=[p.OrderLineIn(sku=s, qty=q, unit_price=Decimal("2.50")) for s, q in lines],
    )


# --- (a) passivation ---------------------------------------------------------------------


async def test_idle_sku_actor_passivates_and_wakes_with_its_state(site, autojump_clock):
    router, world = site.router, site.world
    await site.call(p.SkuConfigure(sku="A", reorder_point=0, order_up_to=0))
    await site.call(p.StockReceive(sku="A", qty=5))
    res = await site.call(order("o1", ("A", 8)))
    assert res["status"] == "partially_allocated"
    assert list(router.inboxes) == ["A"] and router.activations == 1
    tasks = trio.lowlevel.current_statistics().tasks_living

    await trio.sleep(IDLE_S * 0.9)  # not idle long enough yet
    assert "A" in router.inboxes and router.passivations == 0

    await trio.sleep(IDLE_S)  # now it is
    await trio.testing.wait_all_tasks_blocked()
    assert router.inboxes == {} and router.passivations == 1
    assert trio.lowlevel.current_statistics().tasks_living == tasks - 1  # the actor's task ended
    s = world.skus["A"]
    assert (s.on_hand, s.allocated, s.backordered, len(s.queue)) == (5, 5, 3, 1)  # state stays in the model

    # the next message wakes a new actor that sees the same queue
    res = await site.call(p.StockReceive(sku="A", qty=4))
    assert res["allocations"] == [{"order_id": "O0000001", "line_no": 1, "qty": 3}]
    assert (res["on_hand"], res["allocated"], res["backordered"], res["available"]) == (9, 8, 0, 1)
    assert list(router.inboxes) == ["A"] and router.activations == 2
    await trio.testing.wait_all_tasks_blocked()
    shipments = world.orders["O0000001"].shipments
    assert [world.shipments[sid].items for sid in shipments] == [[(1, "A", 5)], [(1, "A", 3)]]

    # and passivates again when idle
    await trio.sleep(IDLE_S * 2)
    assert router.inboxes == {} and router.passivations == 2


async def test_busy_actor_is_not_passivated(site, autojump_clock):
    router = site.router
    await site.call(p.SkuConfigure(sku="A"))
    for _ in range(8):  # a message every 0.6 idle periods: never idle for a whole one
        await trio.sleep(IDLE_S * 0.6)
        await site.call(p.StockReceive(sku="A", qty=1))
    assert router.passivations == 0 and router.activations == 1
    assert site.world.skus["A"].on_hand == 8


# --- (b) group commit -------------------------------------------------------------------


async def test_group_commit_many_appends_while_a_commit_is_in_flight(tmp_path, nursery):
    journal = Journal(tmp_path / "g.db")
    journal.open()
    await nursery.start(journal.run)
    entered, gate = threading.Event(), threading.Event()
    commit = journal._commit

    def slow_commit(*args):  # a disk flush we can hold open
        entered.set()
        gate.wait(10)
        commit(*args)

    journal._commit = slow_commit
    received = [ev.Received(ts=T0 + i, sku=f"S{i % 7}", qty=1 + i % 3) for i in range(500)]

    first = journal.append(received[0], received[0].sku, None)
    await trio.to_thread.run_sync(entered.wait, 10)  # the writer is inside the first commit
    seqs = [first]
    for e in received[1:]:  # actors keep working while it flushes
        seqs.append(journal.append(e, e.sku, None))
        await trio.lowlevel.checkpoint()
    assert seqs == list(range(1, 501))

    woke: dict[str, tuple[int, int]] = {}

    async def waiter(name: str, seq: int) -> None:
        await journal.wait_durable(seq)
        woke[name] = (seq, journal.committed_seq)

    nursery.start_soon(waiter, "first", seqs[0])
    nursery.start_soon(waiter, "last", seqs[-1])
    await trio.testing.wait_all_tasks_blocked()
    assert woke == {} and journal.committed_seq == 0 and journal.commits == 0  # nothing durable yet

    gate.set()
    with trio.fail_after(10):
        await journal.flush()
    await trio.testing.wait_all_tasks_blocked()
    assert set(woke) == {"first", "last"}
    assert all(committed >= seq for seq, committed in woke.values())
    # one commit for the first event, one for the 499 appended while it was in flight
    assert journal.commits == 2 and journal.rows_committed == 500
    assert journal.committed_seq == journal.last_seq == 500

    conn = sqlite3.connect(journal.path)
    try:
        rows = conn.execute("SELECT seq, type, sku, body FROM events ORDER BY seq").fetchall()
    finally:
        conn.close()
    journal.close()
    assert [r[0] for r in rows] == seqs
    assert {r[1] for r in rows} == {"received"}
    assert [ev.EVENT_DECODER.decode(r[3]) for r in rows] == received
    assert [r[2] for r in rows] == [e.sku for e in received]


async def test_wait_durable_returns_at_once_for_what_is_already_durable(tmp_path, nursery):
    journal = Journal(tmp_path / "d.db")
    journal.open()
    await nursery.start(journal.run)
    seq = journal.append(ev.Adjusted(ts=T0, sku="A", delta=1, reason="x"), "A", None)
    with trio.fail_after(10):
        await journal.wait_durable(seq)
    assert journal.committed_seq >= seq
    commits = journal.commits
    await journal.wait_durable(seq)  # again: nothing to wait for, nothing committed
    await journal.flush()
    assert journal.commits == commits == 1
    journal.close()


async def test_a_big_fill_is_shipped_only_once_it_is_durable(site):
    """The receipt's reply waits for the commit of its allocations; the order actor's
    shipments of a big fill wait for it too, so they do not take the GIL from that commit
    (Router.after_durable). A small fill's shipments are made at once, as before."""
    n = SETTLED_CHUNK + 10  # two Settled chunks
    await site.call(p.SkuConfigure(sku="H", reorder_point=0, order_up_to=0))
    await site.call(p.SkuConfigure(sku="L", reorder_point=0, order_up_to=0))
    for i in range(n):
        site.send(order(f"h{i}", ("H", 1)))
    small_order = (await site.call(order("l0", ("L", 1))))["order_id"]
    await site.journal.flush()
    assert site.world.skus["H"].backordered == n and not site.world.shipments

    entered, gate = threading.Event(), threading.Event()
    commit = site.journal._commit

    def held_commit(*args):  # the disk flush of the fill, held open
        entered.set()
        gate.wait(10)
        commit(*args)

    site.journal._commit = held_commit
    fill = site.send(p.StockReceive(sku="H", qty=n))
    small = site.send(p.StockReceive(sku="L", qty=1))
    await trio.to_thread.run_sync(entered.wait, 10)
    await trio.testing.wait_all_tasks_blocked()
    # both fills are decided, their commit is in flight: only the small one shipped
    assert site.world.skus["H"].allocated == n and site.router.busy()
    assert [sh.order_id for sh in site.world.shipments.values()] == [small_order]
    gate.set()
    assert (await fill.result())["allocated_lines"] == n and (await small.result())["allocated_lines"] == 1
    await site.journal.flush()
    await trio.testing.wait_all_tasks_blocked()
    assert len(site.world.shipments) == n + 1 and not site.router.busy()


# --- (c) supervision ----------------------------------------------------------------------


def crash_once(monkeypatch, name: str, sku: str, error: str = "boom"):
    """Make ``sku_rules.<name>`` raise once for ``sku``, then behave normally."""
    from backorder.actors import sku_rules

    real = getattr(sku_rules, name)
    crashed = []

    def flaky(world, s, *args, **kwargs):
        if s.sku == sku and not crashed:
            crashed.append(s.sku)
            raise RuntimeError(error)
        return real(world, s, *args, **kwargs)

    monkeypatch.setattr(sku_rules, name, flaky)
    return crashed


async def test_crashing_message_is_dead_lettered_and_the_actor_restarts(site, monkeypatch):
    router, world = site.router, site.world
    await site.call(p.SkuConfigure(sku="A"))
    await site.call(p.SkuConfigure(sku="B"))
    crashed = crash_once(monkeypatch, "match_receipt", "A")  # the rule that decides a receipt

    # three messages queued at once: the first crashes A's actor, the others must not be lost
    bad = site.send(p.StockReceive(sku="A", qty=7, reference="delivery-1"))
    after = site.send(p.StockReceive(sku="A", qty=4))
    other = site.send(p.StockReceive(sku="B", qty=2))

    assert await bad.error_code() == "internal_error"
    assert "dead letter 1" in bad.calls[0][2]
    assert crashed == ["A"]
    assert (await after.result())["on_hand"] == 4  # handled by the restarted actor
    assert (await other.result())["on_hand"] == 2
    assert world.skus["A"].on_hand == 4  # the crashed receipt changed nothing
    assert router.crashes == 1 and "A" in router.inboxes

    letter = world.dead_letters[1]
    assert (letter.actor, letter.sku, letter.order_id) == ("SkuCall", "A", None)
    assert letter.error == "RuntimeError: boom"
    kept = p.decode_request(letter.message.encode())
    assert isinstance(kept, p.StockReceive) and (kept.sku, kept.qty, kept.reference) == ("A", 7, "delivery-1")

    await site.journal.flush()
    rows = site.rows("SELECT type, sku, cause, corr, body FROM events WHERE type = 'dead_lettered'")
    assert [(t, s, cause, corr) for t, s, cause, corr, _ in rows] == [("dead_lettered", "A", "supervisor", "corr-3")]
    assert ev.EVENT_DECODER.decode(rows[0][4]) == letter

    # the next message to the same SKU is handled normally
    assert (await site.call(p.StockReceive(sku="A", qty=1)))["on_hand"] == 5

    # the dead letter is kept and can be delivered again (the rule works now)
    retry = Reply()
    router.retry_letter(1, retry, "corr-retry")
    assert (await retry.result())["on_hand"] == 12
    assert world.dead_letters == {}
    await site.journal.flush()
    assert site.rows("SELECT cause, corr FROM events WHERE type = 'dead_letter_retried'") == [
        ("deadletters.retry", "corr-retry")
    ]


async def test_crash_while_serving_a_new_order_answers_the_client(site, monkeypatch):
    world = site.world
    await site.call(p.SkuConfigure(sku="A"))
    await site.call(p.StockReceive(sku="A", qty=3))
    crash_once(monkeypatch, "settle", "A")

    reply = site.send(order("o1", ("A", 2)))
    answer = await reply.wait()  # the client is not left hanging
    assert answer[:2] == ("error", "internal_error")
    assert "O0000001" in world.orders  # the order was recorded (and journaled) before the crash
    letter = world.dead_letters[1]
    assert (letter.actor, letter.order_id) == ("SettleLines", "O0000001")

    # the SKU actor restarted: the next settle serves the waiting line
    res = await site.call(p.StockReceive(sku="A", qty=1))
    assert res["allocations"] == [{"order_id": "O0000001", "line_no": 1, "qty": 2}]
    await trio.testing.wait_all_tasks_blocked()
    assert world.orders["O0000001"].status(world.shipments) == "picking"


async def test_a_new_order_finishes_in_the_step_of_the_sku_that_served_it_last(site):
    """No round trip back to the order actor: the SKU actor that serves an order's last SKU
    promises it, sends its units to picking and answers, all journaled as the submit's
    own unit of work (cause and correlation id of the order.submit)."""
    for sku in ("A", "B"):
        await site.call(p.SkuConfigure(sku=sku))
        await site.call(p.StockReceive(sku=sku, qty=5))
    res = await site.call(order("o1", ("A", 2), ("B", 1)))
    assert res["status"] == "picking"
    await site.journal.flush()
    rows = site.rows("SELECT type, cause, corr FROM events WHERE order_id = ? ORDER BY seq", res["order_id"])
    types = [t for t, _, _ in rows]
    assert {"order_received", "lines_promised", "shipments_created"} <= set(types)
    assert types.index("lines_promised") < types.index("shipments_created")
    assert {(cause, corr) for _, cause, corr in rows} == {("order.submit", f"corr-{site.n}")}
    assert site.router.order_actor.pending == {}


async def test_an_idle_sku_serves_a_new_order_in_the_order_actors_own_step(site):
    """No SKU task is woken for a SKU with nothing queued: the order actor's step serves
    the lines and answers, before any other task runs."""
    from backorder.actors.messages import OrderCall

    await site.call(p.SkuConfigure(sku="A"))
    await site.call(p.StockReceive(sku="A", qty=5))
    await trio.testing.wait_all_tasks_blocked()
    reply = Reply()
    site.router.order_actor.handle(OrderCall(req=order("o1", ("A", 2)), reply=reply, corr="c", actor="t"))
    assert reply.calls and reply.calls[0][1]["status"] == "picking"  # answered synchronously
    assert site.router.unhandled == {}


async def test_a_new_order_waits_behind_what_its_sku_has_queued(site):
    """A SKU with messages in its mailbox serves a new order's lines after them, in
    mailbox order: the receipt queued first fills the order's line (queued when the order
    was recorded), so serving it finds nothing short: no backorder, no purchase order."""
    from backorder.actors.messages import OrderCall

    await site.call(p.SkuConfigure(sku="A"))
    await trio.testing.wait_all_tasks_blocked()
    receipt, reply = Reply(), Reply()
    site.router.call_sku("A", p.StockReceive(sku="A", qty=2), receipt, "c1")
    site.router.order_actor.handle(OrderCall(req=order("o1", ("A", 2)), reply=reply, corr="c2", actor="t"))
    assert reply.calls == [] and site.router.unhandled == {"A": 2}  # both wait for A's actor
    assert (await receipt.result())["allocated_lines"] == 1
    assert (await reply.result())["status"] == "picking"
    assert site.router.unhandled == {}
    assert not site.router.busy()
    await site.journal.flush()
    types = [t for (t,) in site.rows("SELECT type FROM events WHERE seq > 1 ORDER BY seq")]
    assert "line_backordered" not in types and "request_raised" not in types, types


async def test_crash_while_finishing_a_new_order_answers_the_client_once(site, monkeypatch):
    """A crash in the submit's last step (run by the SKU actor that served the order last)
    dead-letters that SKU actor's message and answers the client exactly once."""
    from backorder.actors import promise_rules

    real, crashed = promise_rules.promise_order, []

    def flaky(*args, **kwargs):
        if not crashed:
            crashed.append(True)
            raise RuntimeError("boom")
        return real(*args, **kwargs)

    monkeypatch.setattr(promise_rules, "promise_order", flaky)
    await site.call(p.SkuConfigure(sku="A"))
    answer = await site.send(order("o1", ("A", 2))).wait()  # wait() asserts one answer only
    assert answer[:2] == ("error", "internal_error")
    letter = site.world.dead_letters[1]
    assert (letter.actor, letter.order_id) == ("SettleLines", "O0000001")
    assert site.router.order_actor.pending == {}
    # the SKU actor restarted: the next order is served and answered
    assert (await site.call(order("o2", ("A", 1))))["order_id"] == "O0000002"


async def test_too_many_crashes_propagate(site, monkeypatch):
    """Restart intensity: a SKU that crashes on every message stops the supervisor tree."""
    from backorder.actors import sku_rules

    def always(*args, **kwargs):
        raise RuntimeError("always")

    await site.call(p.SkuConfigure(sku="A"))
    monkeypatch.setattr(sku_rules, "match_receipt", always)  # the rule that decides a receipt
    with pytest.raises(BaseExceptionGroup) as info:
        async with trio.open_nursery() as inner:
            router = Router(site.engine, inner, IDLE_S)
            replies = [Reply() for _ in range(12)]
            for r in replies:
                router.call_sku("A", p.StockReceive(sku="A", qty=1), r, "c")
            await trio.sleep_forever()
    assert info.group_contains(RuntimeError, match="^always$", depth=None)
    # intensity 10: ten restarts, the eleventh crash gives up; every crashed call was answered
    assert [r.calls[0][1] for r in replies if r.calls] == ["internal_error"] * 11
    assert len(site.world.dead_letters) == 11


# --- state after a crash equals the journal -----------------------------------------------


async def test_refused_configure_of_a_new_sku_leaves_no_trace(site):
    bad = site.send(p.SkuConfigure(sku="NEW", reorder_point=10, order_up_to=5))
    assert await bad.error_code() == "invalid_policy"
    assert "NEW" not in site.world.skus
    assert await site.send(p.StockReceive(sku="NEW", qty=1)).error_code() == "unknown_sku"


async def test_crash_while_configuring_a_new_sku_leaves_no_phantom_sku(site, monkeypatch, tmp_path):
    """After a crash the in-memory model must still be exactly the journal applied: a SKU
    created in memory by a crashed sku.configure is not in the journal, so a receipt for
    it must be refused — otherwise its Received event cannot be replayed."""
    crash_once(monkeypatch, "configure", "NEW")
    assert await site.send(p.SkuConfigure(sku="NEW", reorder_point=1, order_up_to=5)).error_code() == "internal_error"
    receipt = await site.send(p.StockReceive(sku="NEW", qty=3)).wait()
    await site.journal.flush()

    fresh = Engine(site.engine.settings, site.journal, SimClock(start=T0)).world
    replay(site.journal, fresh)  # raises KeyError when a Received names a SKU the journal never made
    assert snapshot(fresh) == snapshot(site.world)
    assert receipt[:2] == ("error", "unknown_sku")


def snapshot(world) -> dict:
    return {
        name: (s.on_hand, s.allocated, s.backordered, s.inbound_qty, msgspec.to_builtins(s.policy))
        for name, s in world.skus.items()
    }


async def test_replay_of_the_journal_rebuilds_the_live_state(site, autojump_clock):
    """Everything the actors did, journaled and replayed into a fresh model, is the same."""
    world = site.world
    await site.call(p.SkuConfigure(sku="A", reorder_point=2, order_up_to=10, pack_size=5))
    await site.call(order("o1", ("A", 3), ("B", 2)))
    await site.call(order("o2", ("A", 4), ship_complete=True))
    await site.call(p.StockReceive(sku="A", qty=5, reference=sorted(world.requests)[0]))
    await site.call(p.StockAdjust(sku="A", delta=-1, reason="broken"))
    await site.call(p.OrderCancel(order_id="O0000001", reason="changed mind"))
    await trio.testing.wait_all_tasks_blocked()
    picking = [sid for sid, sh in world.shipments.items() if sh.status == "picking"]
    for sid in picking:
        await site.call(p.PickConfirm(shipment_id=sid))
    await trio.testing.wait_all_tasks_blocked()
    await site.journal.flush()

    fresh = Engine(site.engine.settings, site.journal, SimClock(start=T0)).world
    replay(site.journal, fresh)
    assert snapshot(fresh) == snapshot(world)
    assert {oid: o.status(fresh.shipments) for oid, o in fresh.orders.items()} == {
        oid: o.status(world.shipments) for oid, o in world.orders.items()
    }
    assert {sid: sh.status for sid, sh in fresh.shipments.items()} == {
        sid: sh.status for sid, sh in world.shipments.items()
    }
    assert fresh.requests.keys() == world.requests.keys()
    # every journaled row carries a cause and a correlation id (invariant 7)
    assert site.rows("SELECT COUNT(*) FROM events WHERE cause IS NULL OR corr IS NULL OR cause = ''") == [(0,)]


async def test_live_sku_actors_are_capped_least_recently_active_first(tmp_path, nursery):
    """However many SKUs a burst touches, at most max_active actor tasks stay alive."""
    journal = Journal(tmp_path / "cap.db")
    journal.open()
    await nursery.start(journal.run)
    engine = Engine(Settings(), journal, SimClock(start=1.8e9))
    router = Router(engine, nursery, idle_s=3600.0, max_active=16)
    await router.start()
    for n in range(200):
        router.send(f"S{n:03d}", Settle())
        await trio.testing.wait_all_tasks_blocked()
    assert len(router.inboxes) <= 16
    assert router.passivations >= 200 - 16
    assert "S199" in router.inboxes and "S000" not in router.inboxes


async def test_the_sku_side_index_catches_up_inside_the_commit_that_crosses_its_step(tmp_path, nursery):
    """No transaction (and fsync) of its own: the commit that takes the journal past
    SKU_INDEX_EVERY unindexed events also writes their (sku, seq) rows and the mark, so
    the next batch's commit never waits behind an index pass."""
    from backorder.daemon.journal import SKU_INDEX_EVERY, AuditReader

    db = tmp_path / "index.db"
    journal = Journal(db)
    journal.open()
    await nursery.start(journal.run)
    journal.append(ev.Received(ts=1.8e9, sku="A", qty=1), "A", None)
    await journal.flush()
    assert journal.sku_indexed == 0 and journal.commits == 1  # under the step: the tail scan finds it
    for n in range(SKU_INDEX_EVERY):
        journal.append(ev.Received(ts=1.8e9 + n, sku="AB"[n % 2], qty=1), "AB"[n % 2], None)
    await journal.flush()
    assert journal.commits == 2  # one transaction for the batch and the index
    assert journal.sku_indexed == journal.committed_seq == SKU_INDEX_EVERY + 1
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'sku_indexed_upto'").fetchone() == (
            str(SKU_INDEX_EVERY + 1),
        )
        assert conn.execute("SELECT COUNT(*) FROM sku_events WHERE sku = 'A'").fetchone() == (1 + SKU_INDEX_EVERY // 2,)
    reader = AuditReader(db)
    try:
        rows = await reader.query(order_id=None, sku="B", since=None, after_seq=0, limit=10_000)
        assert [r[0] for r in rows] == list(range(3, SKU_INDEX_EVERY + 2, 2))
    finally:
        reader.close()


async def test_audit_by_sku_spans_the_side_index_and_the_journal_tail(tmp_path, nursery):
    """Audit by SKU reads (sku, seq) from the side index up to where it was built and scans
    the journal's tail after it; paging across that boundary loses and repeats nothing."""
    from backorder.daemon.journal import AuditReader

    journal = Journal(tmp_path / "audit.db")
    journal.open()
    await nursery.start(journal.run)
    for n in range(30):
        journal.append(ev.Received(ts=1.8e9 + n, sku="AB"[n % 2], qty=n + 1), "AB"[n % 2], None)
        if n == 17:
            await journal.flush()
            await trio.to_thread.run_sync(journal.index_skus)
    await journal.flush()
    assert 0 < journal.sku_indexed < journal.committed_seq
    reader = AuditReader(tmp_path / "audit.db")
    try:
        got, after = [], 0
        while True:
            rows = await reader.query(order_id=None, sku="A", since=None, after_seq=after, limit=4)
            if not rows:
                break
            got += [r[0] for r in rows]
            after = rows[-1][0]
        assert got == list(range(1, 31, 2))
    finally:
        reader.close()
