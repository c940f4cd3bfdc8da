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

from typing import Protocol

from backorder.actors.carrier import CARRIERS, Carrier
from backorder.actors.events import Event, encode_checked
from backorder.actors.model import World
from backorder.actors.threepl_rules import Inventory
from backorder.clock import Clock
from backorder.config.settings import Settings

# The actors that are not a person or a client (see ``Engine.context``).
SYSTEM = "system"  # timers, recovery, the supervisor: nobody asked
CONFIG = "config"  # the configuration file, at start or on a reload
PLANNER = "planner"  # planner runs


def intake_actor(channel: str, account: str | None) -> str:
    """The actor of what an intake source sent: ``intake:CHANNEL/ACCOUNT``."""
    return f"intake:{channel}/{account or 'default'}"


class Journal(Protocol):
    """What the engine needs of the journal: append an encoded event, tagged with the unit
    of work that caused it. ``backorder.daemon.journal.Journal`` is the SQLite one; the
    engine does not depend on the daemon's storage."""

    last_seq: int  # sequence number of the last event appended
    cause: str  # the op or internal cause of the events that follow
    corr: str  # correlation id of that unit of work
    actor: str  # who ordered it (see ``Engine.context``)

    def append_body(self, e: Event, body: bytes, sku: str | None, order_id: str | None) -> int: ...


class Engine:
    def __init__(
        self,
        settings: Settings,
        journal: Journal,
        clock: Clock,
        carrier: Carrier | None = None,
        world: World | None = None,
    ) -> None:
        self.settings = settings
        self.world = world if world is not None else World(settings)
        self.journal = journal
        self.clock = clock
        self.carrier = carrier or CARRIERS[settings.fulfillment.carrier]()
        self.auto_pick = self.carrier if settings.fulfillment.auto_pick else None
        self.step_seq = journal.last_seq  # journal seq when the current step began (context)
        # the 3PL's stock as last polled (daemon/threepl.py), read by the routing on order arrival
        self.threepl_inventory = Inventory()

    def now(self) -> float:
        return self.clock.now()

    def emit(self, e: Event) -> None:
        body = encode_checked(e)  # raises UnjournalableEvent before anything changes
        self.world.evolve(e)
        self.journal.append_body(e, body, getattr(e, "sku", None), getattr(e, "order_id", None))

    def context(self, cause: str, corr: str, actor: str = SYSTEM) -> None:
        """Name the unit of work whose events follow (journaled as cause, corr and actor).

        ``actor`` is who ordered it, recorded once per journal row (not in the events): a
        Unix client's user name, ``token:NAME`` for a TCP client, ``intake:CHANNEL/ACCOUNT``,
        ``planner``, ``config``, or ``system`` (timers, recovery) when nobody asked."""
        journal = self.journal
        journal.cause = cause
        journal.corr = corr
        journal.actor = actor
        self.step_seq = journal.last_seq

    def steps_events(self) -> int:
        """Events journaled since the last ``context`` (the current step's so far)."""
        return self.journal.last_seq - self.step_seq
