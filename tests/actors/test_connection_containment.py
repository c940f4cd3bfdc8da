"""Containment of one connection, in process: ``server.handle_client`` over an in-memory
stream pair, with a daemon stub whose parts raise on demand (no payload is known that
still makes the real daemon raise there, and a subprocess cannot be patched). A request
whose handler raises costs that request; a connection whose own task raises (its writer,
or its reader's error path) is logged with its traceback, told ``internal_error`` and
closed, while its neighbour in the same connection nursery goes on."""

from __future__ import annotations

import functools
import json
from types import SimpleNamespace

import structlog
import trio
import trio.testing

from backorder.config.settings import Settings
from backorder.daemon import access, handlers, metrics, server


class Boom(Exception):
    """The bug a stub part raises on demand."""


class FlakyJournal:
    """What a connection's writer needs of the journal; ``wait_durable`` raises while ``fail`` is set."""

    last_seq = committed_seq = 0

    def __init__(self) -> None:
        self.fail = False

    async def wait_durable(self, seq: int) -> None:
        await trio.lowlevel.checkpoint()
        if self.fail:
            raise Boom("the writer's journal wait failed")


class FlakyRecorder(metrics.Recorder):
    """The real metrics recorder, whose ``error`` (called while an error reply is built) raises on demand."""

    def __init__(self) -> None:
        super().__init__()
        self.fail = False

    def error(self, op: str, code: str) -> None:
        if self.fail:
            raise Boom("building the error reply failed")
        super().error(op, code)


def stub_daemon():
    """The daemon's parts the handlers use (a stub) and its gateway (the real one) over them."""
    journal = FlakyJournal()
    daemon = SimpleNamespace(
        settings=Settings(),
        hub=server.Hub(),
        health_fails=0,
        health_result={"status": "serving"},
        router=None,
        audit=None,
        intake=None,
        notifier=None,
        stepper=None,  # not reached by these requests
        planner=None,
        threepl=None,
        integrity=None,  # no integrity check: nothing refuses writes
        engine=SimpleNamespace(journal=journal, now=lambda: 1.7e9, world=SimpleNamespace()),
    )

    def health() -> dict:
        if daemon.health_fails:
            daemon.health_fails -= 1
            raise Boom("the health handler failed")
        return daemon.health_result

    daemon.health = health
    daemon.gateway = server.Gateway(
        settings=daemon.settings,
        journal=journal,
        now=daemon.engine.now,
        hub=daemon.hub,
        recorder=FlakyRecorder(),
        budgets=server.Budgets(),
        connections=set(),
        roles=access.Roles(daemon.settings.access),
        handle=functools.partial(handlers.handle, handlers.Context.of(daemon)),
    )
    return daemon


class Peer:
    """The client end of one in-memory connection."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.buf = b""

    async def send(self, line: bytes) -> None:
        await self.stream.send_all(line + b"\n")

    async def read(self) -> dict | None:
        """The next line, or None at EOF."""
        while b"\n" not in self.buf:
            chunk = await self.stream.receive_some()
            if not chunk:
                return None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return json.loads(line)


async def open_connection(nursery, daemon) -> tuple[Peer, trio.Event]:
    """A connection served by ``handle_client`` in ``nursery`` (the daemon's connection
    nursery); the event is set when ``handle_client`` returned."""
    client, served = trio.testing.memory_stream_pair()
    done = trio.Event()

    async def serve() -> None:
        await server.handle_client(served, daemon.gateway)
        done.set()

    nursery.start_soon(serve)
    return Peer(client), done


async def test_a_request_whose_handler_raises_costs_that_request_only():
    daemon = stub_daemon()
    daemon.health_fails = 1
    with structlog.testing.capture_logs() as logs:
        async with trio.open_nursery() as nursery:
            peer, done = await open_connection(nursery, daemon)
            await peer.send(b'{"op": "health", "id": 1}')
            first = await peer.read()
            assert first["id"] == 1 and first["error"]["code"] == "internal_error"
            assert "the health handler failed" in first["error"]["message"]
            await peer.send(b'{"op": "health", "id": 2}')  # the same connection goes on
            assert (await peer.read())["result"]["status"] == "serving"
            await peer.stream.aclose()
            await done.wait()
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["request_failed"]
    assert daemon.gateway.connections == set() and daemon.gateway.budgets.held.total() == 0


async def test_a_connection_whose_task_raises_is_logged_told_and_closed_its_neighbour_goes_on():
    daemon = stub_daemon()
    with structlog.testing.capture_logs() as logs:
        async with trio.open_nursery() as nursery:  # an exception escaping would fail the test here
            victim_w, victim_w_done = await open_connection(nursery, daemon)
            victim_r, victim_r_done = await open_connection(nursery, daemon)
            neighbour, neighbour_done = await open_connection(nursery, daemon)
            await neighbour.send(b'{"op": "health", "id": "n1"}')
            assert (await neighbour.read())["ok"] is True

            # the writer raises (while it waits for the journal before sending)
            daemon.engine.journal.fail = True
            await victim_w.send(b'{"op": "health", "id": "w"}')
            told = await victim_w.read()
            daemon.engine.journal.fail = False
            assert told["id"] is None and told["ok"] is False and told["error"]["code"] == "internal_error"
            assert await victim_w.read() is None  # closed
            await victim_w_done.wait()

            # the reader's error path raises (building the reply to a bad line)
            daemon.gateway.recorder.fail = True
            await victim_r.send(b"not json")
            told = await victim_r.read()
            daemon.gateway.recorder.fail = False
            assert told["id"] is None and told["error"]["code"] == "internal_error"
            assert await victim_r.read() is None
            await victim_r_done.wait()

            await neighbour.send(b'{"op": "health", "id": "n2"}')
            assert (await neighbour.read()) == {
                "id": "n2",
                "ok": True,
                "result": {"status": "serving", "role": "write"},
            }
            assert len(daemon.gateway.connections) == 1 and daemon.gateway.budgets.held.total() == 1
            await neighbour.stream.aclose()
            await neighbour_done.wait()
    failed = [e for e in logs if e["event"] == "connection_failed"]
    assert len(failed) == 2
    assert [type(e["exc_info"]).__name__ for e in failed] == ["Boom", "Boom"]
    assert "journal wait failed" in failed[0]["error"] and "error reply failed" in failed[1]["error"]
    assert all(e["listener"] == "unix" and e["log_level"] == "error" for e in failed)
    assert daemon.gateway.connections == set() and daemon.gateway.budgets.held.total() == 0


async def test_a_reply_that_does_not_encode_costs_its_request_only():
    daemon = stub_daemon()
    daemon.health_result = {"status": object()}  # a bug: a result msgspec cannot encode
    with structlog.testing.capture_logs() as logs:
        async with trio.open_nursery() as nursery:
            peer, done = await open_connection(nursery, daemon)
            await peer.send(b'{"op": "health", "id": 7}')
            got = await peer.read()
            assert got["id"] == 7 and got["error"]["code"] == "internal_error"
            await peer.send(b'{"op": "nonsense", "id": 9}')  # the connection goes on
            assert (await peer.read())["error"]["code"] == "unknown_op"
            await peer.stream.aclose()
            await done.wait()
    assert "reply_failed" in [e["event"] for e in logs]
    assert "connection_failed" not in [e["event"] for e in logs]
