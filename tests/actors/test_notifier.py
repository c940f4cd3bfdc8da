"""The notifier over a real journal and the real file channel: nothing leaves before the
notice's commit, a failing channel is retried with backoff until it works, and the circuit
breaker's states. (Marked trio by tests/actors/conftest.py.)"""

from __future__ import annotations

import json

import msgspec
import trio
import trio.testing

from backorder.actors import events as ev
from backorder.actors.engine import Engine
from backorder.clock import SimClock
from backorder.config.settings import Settings
from backorder.daemon.journal import Journal
from backorder.notify.notifier import Breaker, Notifier

T0 = 1_700_000_000.0


def make_engine(tmp_path, drop) -> Engine:
    settings = msgspec.convert(
        {
            "notifications": {
                "routes": {"*": "file"},
                "file": {"dir": str(drop)},
                "backoff_base_s": 0.01,
                "backoff_max_s": 0.05,
                "breaker_failures": 100,
            }
        },
        Settings,
    )
    journal = Journal(tmp_path / "j.db")
    journal.open()
    return Engine(settings, journal, SimClock(T0))


def queue_notice(engine: Engine, notice_id: str = "N0000001") -> None:
    engine.emit(
        ev.NoticeQueued(
            ts=T0,
            notice_id=notice_id,
            order_id="O0000001",
            kind="cancelled",
            email="a@b.c",
            subject="s",
            body="b",
            channel="file",
            data={"order_number": "#1", "customer": "Ann", "reason": "test"},
        )
    )


async def test_nothing_is_sent_before_the_notice_is_durable(tmp_path):
    drop = tmp_path / "drop"
    engine = make_engine(tmp_path, drop)
    try:
        # the journal is closed only once its writer task has ended (a commit in
        # flight on its thread would otherwise find the connection gone)
        async with trio.open_nursery() as nursery:
            notifier = Notifier(engine, engine.settings.notifications)
            await nursery.start(notifier.run)
            queue_notice(engine)  # appended, not committed: the journal writer is not running yet
            await trio.sleep(0.2)
            assert not drop.exists()
            assert engine.world.notices["N0000001"].status == "pending"
            await nursery.start(engine.journal.run)
            with trio.fail_after(10):
                while engine.world.notices["N0000001"].status != "sent":
                    await trio.sleep(0.01)
            doc = json.loads((drop / "N0000001.json").read_text())
            assert doc["subject"] == "Order #1 was cancelled" and "test" in doc["text"]
            nursery.cancel_scope.cancel()
    finally:
        engine.journal.close()


async def test_a_failing_channel_is_retried_until_it_works(tmp_path):
    blocker = tmp_path / "drop"
    blocker.write_text("a file where the folder should be")  # the channel fails: the folder cannot be made
    engine = make_engine(tmp_path, blocker)
    try:
        # the journal is closed only once its writer task has ended (a commit in
        # flight on its thread would otherwise find the connection gone)
        async with trio.open_nursery() as nursery:
            await nursery.start(engine.journal.run)
            await nursery.start(Notifier(engine, engine.settings.notifications).run)
            queue_notice(engine)
            n = engine.world.notices["N0000001"]
            with trio.fail_after(10):
                while engine.world.notice_failures < 3:
                    await trio.sleep(0.005)
            assert n.status == "pending" and "FileExistsError" in n.last_error
            blocker.unlink()  # the receiver recovers
            with trio.fail_after(10):
                while n.status != "sent":
                    await trio.sleep(0.005)
            assert (blocker / "N0000001.json").exists()
            assert engine.world.notices_sent == 1 and engine.world.notice_failures >= 3
            nursery.cancel_scope.cancel()
    finally:
        engine.journal.close()


async def test_breaker_opens_after_the_limit_half_opens_after_the_reset_and_closes_on_success(autojump_clock):
    b = Breaker(failures=3, reset_s=10.0)
    b.failed()
    b.failed()
    assert b.state == "closed"
    b.failed()
    assert b.state == "open" and b.open_until == trio.current_time() + 10.0
    await trio.sleep(10.5)
    assert b.state == "half_open"
    b.failed()  # the probe failed: open again for another reset period
    assert b.state == "open"
    await trio.sleep(10.5)
    b.succeeded()
    assert b.state == "closed" and b.failures == 0


async def test_backoff_grows_exponentially_within_the_jitter_and_the_cap(tmp_path):
    engine = make_engine(tmp_path, tmp_path / "d")
    try:
        notifier = Notifier(engine, engine.settings.notifications)
        cfg = engine.settings.notifications  # base 0.01, max 0.05, jitter 0.2
        for attempt, base in ((1, 0.01), (2, 0.02), (3, 0.04), (4, 0.05), (9, 0.05)):
            values = [notifier.backoff(attempt) for _ in range(200)]
            assert all(base * (1 - cfg.jitter) <= v <= base * (1 + cfg.jitter) for v in values)
            assert max(values) - min(values) > 0  # jittered: retries of many notices spread out
    finally:
        engine.journal.close()
