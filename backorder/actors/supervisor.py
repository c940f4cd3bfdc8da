"""one_for_one supervision: restart a crashed actor; dead-letter the message that broke it.

An actor's state lives in the model, which is exactly the journal applied, so a restart
"from persisted state" is a new task over the same model and the same mailbox: queued
messages survive, and only the message being handled is set aside as a dead letter
(journaled, listed by ``deadletters.list``, re-deliverable by ``deadletters.retry``).
Over ``intensity`` crashes in ``period`` seconds the error propagates and the daemon
stops non-zero, for systemd to restart (OTP's restart intensity).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import structlog
import trio

if TYPE_CHECKING:
    from backorder.actors.engine import Engine
    from backorder.actors.events import UnjournalableEvent

log = structlog.get_logger()


class Cell:
    """What an actor is handling right now, so the supervisor can dead-letter it."""

    __slots__ = ("current",)

    def __init__(self) -> None:
        self.current = None


async def supervised(
    name: str,
    child: Callable[..., Awaitable[None]],
    cell: Cell,
    on_crash: Callable[[object, BaseException], None],
    *,
    intensity: int = 10,
    period: float = 10.0,
    task_status=trio.TASK_STATUS_IGNORED,
) -> None:
    crashes: deque[float] = deque()
    first = True
    while True:
        try:
            if first:
                first = False
                await child(cell, task_status=task_status)
            else:
                await child(cell)
            return  # clean exit: mailbox closed or actor passivated
        except Exception as exc:  # Cancelled is a BaseException and passes through
            msg, cell.current = cell.current, None
            now = trio.current_time()
            crashes.append(now)
            while now - crashes[0] > period:
                crashes.popleft()
            log.error("actor_crashed", actor=name, restarts=len(crashes), exc_info=exc)
            if msg is not None:
                on_crash(msg, exc)
            if len(crashes) > intensity:
                raise


def refuse_unjournalable(engine: Engine, req, reply, exc: UnjournalableEvent) -> None:
    """A request whose step produced an event the journal would not replay (a bug: the
    rules should have refused its input). As the first event of the step, nothing changed:
    the client is told ``unjournalable_event``. Later in the step, the events before it
    stand (applied and journaled), so it is handled as a crash: re-raised for the
    supervisor to dead-letter the message and answer ``internal_error``."""
    if engine.steps_events():
        raise exc
    log.error("event_refused", op=req.__struct_config__.tag, event_type=exc.event_type, reason=exc.reason)
    reply.error("unjournalable_event", f"{exc}; nothing was changed")
