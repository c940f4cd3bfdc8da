"""The engine: the model plus the journal, and ``emit``, the one way state changes.

``emit(event)`` applies the event to the model and appends it to the journal in one
synchronous step. Trio runs one task at a time and decisions never await between
emits, so every actor sees a consistent model and the journal order is the apply order.

The journal always replays: ``emit`` encodes the event and checks it with the replay's
decoder *before* applying it. An event that would not decode raises
``UnjournalableEvent`` with nothing applied and nothing written, so the model and the
journal stay equal. Events the same step emitted before it stand (each is a whole fact,
applied and journaled): ``steps_events`` says how many, so the actor can tell a clean
refusal (none) from a step stopped midway (handled as a crash: a dead letter).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from backorder.actors.carrier import Carrier, LocalCarrier
from backorder.actors.events import Event, encode_checked
from backorder.actors.model import World
from backorder.config.settings import Settings

if TYPE_CHECKING:
    from backorder.daemon.clock import Clock
    from backorder.daemon.journal import Journal


class Engine:
    def __init__(self, settings: Settings, journal: Journal, clock: Clock, carrier: Carrier | None = None,
                 world: World | None = None) -> None:
        self.settings = settings
        self.world = world if world is not None else World(settings)
        self.journal = journal
        self.clock = clock
        self.carrier = carrier or LocalCarrier()
        self.auto_pick = self.carrier if settings.fulfillment.auto_pick else None
        self.step_seq = journal.last_seq  # journal seq when the current step began (context)

    def now(self) -> float:
        return self.clock.now()

    def emit(self, e: Event) -> None:
        body = encode_checked(e)  # raises UnjournalableEvent before anything changes
        self.world.evolve(e)
        self.journal.append_body(e, body, getattr(e, "sku", None), getattr(e, "order_id", None))

    def context(self, cause: str, corr: str) -> None:
        """Name the unit of work whose events follow (journaled as cause and corr)."""
        self.journal.cause = cause
        self.journal.corr = corr
        self.step_seq = self.journal.last_seq

    def steps_events(self) -> int:
        """Events journaled since the last ``context`` (the current step's so far)."""
        return self.journal.last_seq - self.step_seq

