"""The intake service in process, on a real engine, journal and router: transient failures
are retried with backoff then dead-lettered; the priority lane is served first; a full
queue says busy without recording anything."""

from __future__ import annotations

import base64

import msgspec
import pytest
import trio

from backorder.actors import order_rules
from backorder.actors.engine import Engine
from backorder.actors.router import Router
from backorder.clock import SimClock
from backorder.config.settings import Settings
from backorder.daemon.journal import Journal
from backorder.daemon.server import Hub
from backorder.errors import Rejected
from backorder.intake.governance import Delivery
from backorder.intake.service import IntakeService

HEAD = "order_id,currency,email,sku,qty,unit_price,ship_address1,ship_country,rush\n"


def csv(ext: str, rush: bool = False) -> Delivery:
    body = HEAD + f"{ext},USD,a@example.com,SKU-1,1,3.00,1 St,US,{'yes' if rush else ''}\n"
    return Delivery(channel="csv", account=None, headers={}, body=body.encode())


@pytest.fixture
async def intake(tmp_path, nursery):
    settings = msgspec.convert(
        {
            "daemon": {"db": str(tmp_path / "j.db")},
            "intake": {
                "retry_attempts": 2,
                "retry_base_s": 0.01,
                "retry_max_s": 0.02,
                "workers": 1,
                "queue_size": 6,
                "priority_reserve": 2,
            },
        },
        Settings,
    )
    journal = Journal(settings.daemon.db)
    journal.open()
    await nursery.start(journal.run)
    engine = Engine(settings, journal, SimClock(start=1.7e9))
    router = Router(engine, nursery, 30.0)
    await router.start()
    service = IntakeService(settings, engine, router, Hub())
    yield service, nursery
    await journal.flush()
    journal.close()


def failing(monkeypatch, times: int) -> list[str]:
    real = order_rules.submit
    calls = []

    def flaky(world, req, emit, now):
        calls.append(req.external_id)
        if len(calls) <= times:
            raise RuntimeError("journal busy")
        return real(world, req, emit, now)

    monkeypatch.setattr(order_rules, "submit", flaky)
    return calls


async def test_a_transient_failure_is_retried_with_backoff_and_then_succeeds(intake, monkeypatch):
    service, nursery = intake
    await nursery.start(service.run)
    calls = failing(monkeypatch, 2)
    res = await service.ingest(csv("T-1"))
    assert res["outcome"] == "accepted" and calls == ["T-1", "T-1", "T-1"]
    world = service.engine.world
    assert len(world.orders) == 1
    assert [x.kind for x in world.dead_letters.values()] == ["actor", "actor"]  # the two crashes, kept


async def test_after_the_last_attempt_the_delivery_is_dead_lettered_not_dropped(intake, monkeypatch):
    service, nursery = intake
    await nursery.start(service.run)
    failing(monkeypatch, 100)
    res = await service.ingest(csv("T-2"))
    assert (res["outcome"], res["code"]) == ("rejected", "transient_failure")
    letter = service.engine.world.dead_letters[res["letter_id"]]
    assert (letter.kind, letter.cause, letter.external_id) == ("intake", "transient_failure", "T-2")
    monkeypatch.undo()  # the cause goes away: a retry of the letter accepts the order once
    out = await service.retry_letters([letter], "corr")
    assert out["resolved"] == 1 and out["results"][0]["outcome"] == "accepted"
    assert len(service.engine.world.orders) == 1


async def test_rush_is_served_first_and_a_full_queue_is_busy(intake):
    service, nursery = intake
    done: list[dict] = []
    for n in range(4):  # the normal lane holds queue_size - priority_reserve = 4
        service.offer(csv(f"N{n}"), done.append)
    with pytest.raises(Rejected) as busy:
        service.offer(csv("N4"), done.append)
    assert busy.value.code == "busy"
    service.offer(csv("R0", rush=True), done.append)  # the reserve is for rush
    service.offer(csv("R1", rush=True), done.append)
    with pytest.raises(Rejected):
        service.offer(csv("R2", rush=True), done.append)
    assert service.pending == 6 and service.engine.journal.last_seq == 0  # nothing recorded
    await nursery.start(service.run)
    while len(done) < 6:
        await service.engine.journal.flush()
        await trio.sleep(0.01)
    assert [r["orders"][0]["external_id"] for r in done] == ["R0", "R1", "N0", "N1", "N2", "N3"]
    assert service.peak == 6


async def test_an_adapter_that_raises_unexpectedly_makes_a_dead_letter_not_a_lost_delivery(intake, monkeypatch):
    """Fault injection: the adapters reject every odd payload we know of (see the adapter
    fuzz in tests/unit), so a bug of tomorrow is simulated by an adapter that raises."""
    from backorder.intake import csv_orders

    service, nursery = intake
    await nursery.start(service.run)

    def broken(body, headers, profile):
        raise KeyError("line_items")

    monkeypatch.setattr(csv_orders, "parse", broken)
    res = await service.ingest(csv("A-1"))
    assert (res["outcome"], res["code"]) == ("rejected", "adapter_error")
    assert res["message"] == "KeyError: 'line_items'"
    letter = service.engine.world.dead_letters[res["letter_id"]]
    assert (letter.kind, letter.cause, letter.error) == ("intake", "adapter_error", "KeyError: 'line_items'")
    assert service.health()["sources"][0]["rejections"] == {"adapter_error": 1}
    monkeypatch.undo()  # fixed: the kept delivery goes through once
    out = await service.retry_letters([letter], "corr")
    assert out["results"][0]["outcome"] == "accepted" and len(service.engine.world.orders) == 1


async def test_a_decision_that_raises_makes_a_dead_letter_with_the_whole_delivery(intake, monkeypatch):
    from backorder.intake import governance

    service, nursery = intake
    await nursery.start(service.run)

    def broken(*args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(governance, "validate", broken)
    res = await service.ingest(csv("B-1"))
    assert (res["outcome"], res["code"]) == ("rejected", "internal_error")
    letter = service.engine.world.dead_letters[res["letter_id"]]
    assert (letter.cause, letter.error) == ("internal_error", "ZeroDivisionError: division by zero")
    assert b"B-1" in base64.b64decode(msgspec.json.decode(letter.message)["body_base64"])
    monkeypatch.undo()
    out = await service.retry_letters([letter], "corr")
    assert out["results"][0]["outcome"] == "accepted"
