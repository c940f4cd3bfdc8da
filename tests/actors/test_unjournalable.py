"""An event the journal could not replay is never written (the journal always replays): the
actors over a real journal, with limits set beyond the schema so that only the event
check stands between a request and the journal.

As the first event of a request's step the client is told ``unjournalable_event`` and
nothing changed; later in a step the events before it stand (in the model and in the
journal alike) and the message is dead-lettered as a crash.
"""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from test_actors import Reply

from backorder import protocol as p
from backorder.actors.engine import Engine
from backorder.actors.events import Received, UnjournalableEvent
from backorder.actors.model import World
from backorder.actors.router import Router, route
from backorder.clock import SimClock
from backorder.config.settings import DaemonSettings, LimitsSettings, Settings
from backorder.daemon.journal import Journal
from backorder.daemon.recovery import replay
from backorder.numbers import MAX_INT

T0 = 1_700_000_000.0


@pytest.fixture
async def site(tmp_path, nursery):
    # Struct constructors do not validate: limits far beyond the schema's ceiling.
    settings = Settings(
        daemon=DaemonSettings(db=str(tmp_path / "j.db")), limits=LimitsSettings(max_quantity=10**30, max_money=10**30)
    )
    journal = Journal(settings.daemon.db)
    journal.open()
    await nursery.start(journal.run)
    engine = Engine(settings, journal, SimClock(start=T0))
    router = Router(engine, nursery, 30.0)
    await router.start()
    yield engine, router
    await journal.flush()
    journal.close()


def send(router, req) -> Reply:
    reply = Reply()
    route(router, req, reply, "corr")
    return reply


def rebuilt(engine: Engine) -> World:
    world = World(engine.settings)
    replay(engine.journal, world)
    return world


async def test_emit_refuses_before_applying_anything(tmp_path):
    journal = Journal(tmp_path / "j.db")
    journal.open()
    engine = Engine(Settings(), journal, SimClock(start=T0))
    with pytest.raises(UnjournalableEvent, match="received"):
        engine.emit(Received(ts=T0, sku="X", qty=MAX_INT + 1))
    assert journal.last_seq == 0 and "X" not in engine.world.skus
    engine.emit(Received(ts=T0, sku="X", qty=MAX_INT))
    assert journal.last_seq == 1 and engine.world.skus["X"].on_hand == MAX_INT
    journal.close()


async def test_first_event_refused_answers_the_client_and_changes_nothing(site):
    engine, router = site
    assert (await send(router, p.SkuConfigure(sku="A")).result())["sku"] == "A"
    seq = engine.journal.last_seq
    code = await send(router, p.StockReceive(sku="A", qty=2**60)).error_code()
    assert code == "unjournalable_event"
    assert engine.journal.last_seq == seq and engine.world.skus["A"].on_hand == 0
    # the actor is alive and the SKU serves the next request
    assert (await send(router, p.StockReceive(sku="A", qty=3)).result())["on_hand"] == 3
    # a SKU a refused configure would have created leaves no trace
    code = await send(router, p.SkuConfigure(sku="B", order_up_to=2**60)).error_code()
    assert code == "unjournalable_event" and "B" not in engine.world.skus


async def test_refused_midway_dead_letters_and_model_equals_journal(site, monkeypatch):
    engine, router = site
    await send(router, p.SkuConfigure(sku="A")).result()
    order = p.OrderSubmit(
        channel="web", external_id="e1", lines=[p.OrderLineIn(sku="A", qty=2, unit_price=Decimal("1"))]
    )
    await send(router, order).result()
    monkeypatch.setattr(engine.world, "ranker", lambda now: lambda line: math.inf)  # a rank bug
    code = await send(router, p.StockReceive(sku="A", qty=5)).error_code()
    assert code == "internal_error"
    letters = list(engine.world.dead_letters.values())
    assert len(letters) == 1 and "UnjournalableEvent" in letters[0].error
    s = engine.world.skus["A"]
    assert (s.on_hand, s.allocated) == (5, 0)  # the receipt stands, the allocation was refused
    await engine.journal.flush()
    again = rebuilt(engine).skus["A"]
    assert (again.on_hand, again.allocated, again.backordered) == (s.on_hand, s.allocated, s.backordered)
