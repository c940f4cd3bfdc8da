"""The TUI's asyncio client of the control socket.

One connection carries both the requests of the screens and the ``subscribe`` event
stream. Replies are matched to requests by ``id`` (the daemon may answer out of order),
every request has a timeout (a silent daemon makes a call fail, never the UI hang), and
the connection comes back by itself with exponential backoff after the daemon went away.
Callers see three things: ``call()``, the ``on_event`` callback, and ``on_state``
callbacks with a ``ConnState``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from typing import Any

import msgspec

from backorder.client import CallError

log = logging.getLogger("backorder.tui")

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode
READ_LIMIT = 256 * 1024 * 1024  # a skus.board reply for 100k SKUs is tens of MB


class ConnState(msgspec.Struct, frozen=True):
    connected: bool
    attempt: int = 0  # reconnection attempts since the connection was lost
    retry_in: float = 0.0  # seconds until the next attempt
    error: str = ""
    role: str = "write"  # "read" for a read-only connection (health.role)
    stalled: bool = False  # connected, but a request timed out and no reply came since


class Connection:
    def __init__(
        self,
        path: str,
        *,
        on_event: Callable[[dict], None],
        on_state: Callable[[ConnState], None],
        timeout: float = 5.0,
        backoff: tuple[float, float] = (0.2, 3.0),
        topics: list[str] | None = None,
    ) -> None:
        self.path = path
        self.on_event = on_event
        self.on_state = on_state
        self.timeout = timeout
        self.backoff = backoff
        self.topics = topics or []
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self._writer: asyncio.StreamWriter | None = None
        self.state = ConnState(connected=False)
        self.subscribed_seq = 0  # the journal seq at the last subscribe: later events are streamed
        self.closed = False

    @property
    def connected(self) -> bool:
        return self.state.connected

    def _set_state(self, state: ConnState) -> None:
        self.state = state
        self.on_state(state)

    async def call(self, op: str, timeout: float | None = None, **fields: Any) -> Any:
        """Send one request; return its ``result`` or raise ``CallError``."""
        writer = self._writer
        if writer is None or not self.state.connected and op not in ("subscribe", "health"):
            raise CallError("disconnected", "not connected to the daemon")
        req_id = next(self._ids)
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pending[req_id] = fut
        try:
            writer.write(_encode({"op": op, "id": req_id, **fields}) + b"\n")
            reply = await asyncio.wait_for(fut, timeout or self.timeout)
        except TimeoutError:
            if self.state.connected and not self.state.stalled:
                # connected but silent (overloaded, stopped, stuck): say so; the next reply clears it
                self._set_state(msgspec.structs.replace(self.state, stalled=True))
            raise CallError("timeout", f"the daemon did not answer {op} within {timeout or self.timeout:g} s") from None
        except (ConnectionError, OSError) as exc:
            raise CallError("disconnected", str(exc)) from None
        finally:
            self._pending.pop(req_id, None)
        if not reply.get("ok"):
            err = reply.get("error") or {}
            raise CallError(err.get("code", "?"), err.get("message", ""))
        return reply.get("result")

    async def run(self, on_connected: Callable[[], Any] | None = None) -> None:
        """Connect, subscribe, read; on loss, retry with backoff. Runs until cancelled/closed."""
        attempt = 0
        while not self.closed:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_unix_connection(self.path, limit=READ_LIMIT), self.timeout
                )
            except (OSError, TimeoutError) as exc:
                attempt += 1
                await self._wait_retry(attempt, f"cannot connect: {exc}")
                continue
            self._writer = writer
            reading = asyncio.create_task(self._read(reader))
            try:
                health = await self.call("health")
                sub = await self.call("subscribe", topics=self.topics)
                self.subscribed_seq = int(sub.get("seq") or 0)
                attempt = 0
                self._set_state(ConnState(connected=True, role=health.get("role", "write")))
                log.info("connected to %s (role %s)", self.path, self.state.role)
                if on_connected is not None:
                    await on_connected()
                await reading
                error = "the daemon closed the connection"
            except CallError as exc:
                error = f"{exc.code}: {exc.message}"
            except (ConnectionError, OSError) as exc:
                error = str(exc)
            finally:
                reading.cancel()
                self._writer = None
                writer.close()
                try:
                    await writer.wait_closed()
                except (ConnectionError, OSError):
                    pass
                for fut in self._pending.values():
                    if not fut.done():
                        fut.set_exception(ConnectionError("connection lost"))
                self._pending.clear()
            log.warning("disconnected: %s", error)
            attempt += 1
            await self._wait_retry(attempt, error)

    async def _wait_retry(self, attempt: int, error: str) -> None:
        lo, hi = self.backoff
        delay = min(hi, lo * 2 ** (attempt - 1))
        self._set_state(ConnState(connected=False, attempt=attempt, retry_in=delay, error=error, role=self.state.role))
        await asyncio.sleep(delay)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            line = await reader.readline()
            if not line:
                return
            try:
                msg = _decode(line)
            except msgspec.DecodeError:
                log.error("undecodable line from the daemon: %r", line[:200])
                continue
            if not isinstance(msg, dict):
                continue
            if "event" in msg and "ok" not in msg:
                try:
                    self.on_event(msg)
                except Exception:  # a bug in a screen must not kill the connection
                    log.exception("event handler failed")
                continue
            if self.state.stalled:
                self._set_state(msgspec.structs.replace(self.state, stalled=False))
            fut = self._pending.get(msg.get("id"))  # type: ignore[arg-type]
            if fut is not None and not fut.done():
                fut.set_result(msg)

    def close(self) -> None:
        self.closed = True
        if self._writer is not None:
            self._writer.close()
