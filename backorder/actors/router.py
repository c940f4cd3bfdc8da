"""The router owns every mailbox: it activates a SKU actor on its first message and
forgets it when the actor passivates, so a million-SKU catalogue needs tasks only for
SKUs that are busy. Internal mailboxes are unbounded; back-pressure is applied at the
edge (requests in flight per connection), where a client can be told to wait."""

from __future__ import annotations

import itertools
import math
from functools import partial

import msgspec
import structlog
import trio

from backorder import protocol as p
from backorder.actors import events as ev
from backorder.actors import retention
from backorder.actors.engine import SYSTEM, Engine
from backorder.actors.mailbox import serve_mailbox
from backorder.actors.messages import OrderCall, Settle, SettleLines, SkuCall
from backorder.actors.order_actor import OrderActor
from backorder.actors.sku_actor import SkuHandler, sku_actor
from backorder.actors.supervisor import Cell, supervised
from backorder.errors import Conflict, NotFound, ProtocolError

log = structlog.get_logger()


class ForSku(msgspec.Struct):
    """A message for one SKU's actor, in the serial mailbox (``Router(serial=True)``)."""

    sku: str
    msg: object


class Router:
    """``serial``: every SKU's messages go through one mailbox and one task, in the order
    they were sent, instead of a task per SKU. Under the stepped clock it makes a fan-out
    (an order's lines to their SKUs) decide in send order, not in the order trio happens
    to schedule the SKU tasks, so the journal of a run is the same every time."""

    def __init__(
        self, engine: Engine, nursery: trio.Nursery, idle_s: float, max_active: int = 5000, serial: bool = False
    ) -> None:
        self.engine = engine
        self.nursery = nursery
        self.idle_s = idle_s
        self.max_active = max_active
        self.inboxes: dict[str, trio.MemorySendChannel] = {}
        # SKU -> messages sent to its mailbox that its actor has not taken up yet (no entry
        # at zero): an actor with none is idle, a cheap test for ``serve_lines`` (the
        # channel's own statistics cost ~2 us a call)
        self.unhandled: dict[str, int] = {}
        # least recently active first: an actor moves itself to the end after each batch
        self.last_active: dict[str, float] = {}
        self.order_inbox, self.order_recv = trio.open_memory_channel(math.inf)
        self.order_actor = OrderActor(self)
        self.activations = 0
        self.passivations = 0
        self.crashes = 0
        self.serial = serial
        # big fills' news for the order actor, each held until the journal row it follows is
        # durable (``after_durable``): (that row's seq, the messages)
        self.deferred: list[tuple[int, list]] = []
        engine.journal.listeners.append(self._committed)
        if serial:
            self.serial_inbox, self._serial_recv = trio.open_memory_channel(math.inf)
            self.send = self._send_serial  # type: ignore[method-assign]

    async def start(self) -> None:
        cell = Cell()
        await self.nursery.start(partial(supervised, "order", self.order_actor.run, cell, self._dead_letter))
        if self.serial:
            await self.nursery.start(partial(supervised, "skus", self._serve_serial, Cell(), self._dead_letter))
        else:
            self.nursery.start_soon(self._passivate_idle)

    def busy(self) -> bool:
        """Whether any actor has a message not yet handled: one in its mailbox, or one handed
        straight to it (a memory channel gives a message to a receiver already waiting
        without buffering it, so an empty buffer alone does not mean idle: the actor is idle
        only when it is parked in ``receive`` again). A SKU actor's are counted in
        ``unhandled``."""
        if self.deferred or _busy(self.order_inbox) or (self.serial and _busy(self.serial_inbox)):
            return True
        return bool(self.unhandled)

    def after_durable(self, msgs: list) -> None:
        """Send ``msgs`` to the order actor once everything journaled so far is durable.

        For a big fill's ``Settled`` chunks: making its shipments (~5 us of CPU per order)
        while the writer thread commits the fill would hold the GIL that commit needs
        between its SQLite steps, and the receipt's reply waits for that commit (measured:
        a 100,000-line fill's 75 ms commit took 0.53 s beside them). The shipments come a
        commit later, in the same order. Not under the stepped clock (``serial``): there
        the journal's order must not depend on when a commit ends."""
        journal = self.engine.journal
        if self.serial or journal.committed_seq >= journal.last_seq:
            for msg in msgs:
                self.order_inbox.send_nowait(msg)
        else:
            self.deferred.append((journal.last_seq, msgs))

    def _committed(self, _rows) -> None:
        """A commit ended (a journal listener): send what waited for it."""
        if not self.deferred:
            return
        durable = self.engine.journal.committed_seq
        while self.deferred and self.deferred[0][0] <= durable:
            for msg in self.deferred.pop(0)[1]:
                self.order_inbox.send_nowait(msg)

    def _send_serial(self, sku: str, msg) -> None:
        self.serial_inbox.send_nowait(ForSku(sku, msg))

    async def _serve_serial(self, cell: Cell, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """The one task of every SKU in serial mode: each message handled by its SKU's handler
        (made per message, ~0.3 us: a cache of them would grow with the catalogue)."""

        def handle(m: ForSku) -> None:
            SkuHandler(self, m.sku).handle(m.msg)

        task_status.started()
        await serve_mailbox(self._serial_recv, handle, cell)

    def send(self, sku: str, msg) -> None:
        """Cast to a SKU actor, waking one if the SKU is passivated."""
        inbox = self.inboxes.get(sku)
        if inbox is None:
            inbox = self._activate(sku)
        inbox.send_nowait(msg)
        self.unhandled[sku] = self.unhandled.get(sku, 0) + 1

    def taken_up(self, sku: str) -> None:
        """``sku``'s actor took a message out of its mailbox (called before handling it, so
        that one which crashes its actor is not counted as still waiting)."""
        n = self.unhandled.pop(sku) - 1
        if n:
            self.unhandled[sku] = n

    def serve_lines(self, sku: str, msg: SettleLines) -> None:
        """Have ``sku`` serve a new order's lines: in the caller's step when its actor is
        idle (no task, or one parked on an empty mailbox), else through its mailbox.

        An idle actor has nothing queued that must come first, so handling the message
        here decides exactly what its task would, a wake-up of that task later; it saves
        the task step per order line (bench/submit_step.py: ~14 us of the ~107 us of CPU
        a line cost). Under ``serial`` the message keeps its place in the one mailbox.
        The caller's journal context is kept, and a crash is dead-lettered as the
        actor's supervisor would (the caller's own message stands)."""
        if self.serial or sku in self.unhandled:
            self.send(sku, msg)
            return
        engine = self.engine
        journal = engine.journal
        saved = journal.cause, journal.corr, journal.actor, engine.step_seq
        try:
            SkuHandler(self, sku).handle(msg)
        except Exception as exc:
            log.error("actor_crashed", actor=f"sku:{sku}", inline=True, exc_info=exc)
            self._dead_letter(msg, exc)
        finally:
            journal.cause, journal.corr, journal.actor, engine.step_seq = saved

    def _activate(self, sku: str) -> trio.MemorySendChannel:
        if len(self.inboxes) >= self.max_active:
            # Bound the tasks (~6 KiB each) however many SKUs a burst touches: passivate the
            # least recently active idle actors first.
            for old in list(itertools.islice(self.last_active, 64)):
                self._passivate(old)
        send, recv = trio.open_memory_channel(math.inf)
        self.inboxes[sku] = send
        self.last_active[sku] = trio.current_time()
        self.activations += 1
        cell = Cell()
        self.nursery.start_soon(
            partial(supervised, f"sku:{sku}", partial(sku_actor, self, sku, recv), cell, self._dead_letter)
        )
        return send

    async def _passivate_idle(self) -> None:
        """Passivate SKU actors idle for ``idle_s``: their tasks end, their state stays in
        the model. A sweep (not a timer per message) keeps the hot path free of cancel
        scopes."""
        while True:
            await trio.sleep(self.idle_s / 2)
            cutoff = trio.current_time() - self.idle_s
            for sku, last in list(self.last_active.items()):
                if last > cutoff:
                    break  # ordered least recently active first: the rest are younger
                self._passivate(sku)

    def _passivate(self, sku: str) -> None:
        """Close an idle actor's mailbox. Only an empty mailbox is closed, and closing is
        synchronous with forgetting it, so the next message simply activates a new actor."""
        inbox = self.inboxes.get(sku)
        if inbox is not None and sku not in self.unhandled:
            del self.inboxes[sku]
            self.last_active.pop(sku, None)
            inbox.close()
            self.passivations += 1

    def call_order(self, req, reply, corr: str, actor: str = SYSTEM) -> None:
        self.order_inbox.send_nowait(OrderCall(req=req, reply=reply, corr=corr, actor=actor))

    def call_sku(self, sku: str, req, reply, corr: str, actor: str = SYSTEM) -> None:
        self.send(sku, SkuCall(req=req, reply=reply, corr=corr, actor=actor))

    # --- dead letters ------------------------------------------------------------

    def _dead_letter(self, msg, exc: BaseException) -> None:
        """Set aside the message that crashed an actor; answer its caller; keep going."""
        self.crashes += 1
        if isinstance(msg, ForSku):
            msg = msg.msg
        engine = self.engine
        world = engine.world
        sku = order_id = None
        if isinstance(msg, (SkuCall, OrderCall)):
            body = p.ENCODER.encode(msg.req).decode()
            sku = getattr(msg.req, "sku", None)
            order_id = getattr(msg.req, "order_id", None)
        elif isinstance(msg, SettleLines):
            body = msgspec.json.encode({"internal": "settle", "order_id": msg.order_id}).decode()
            order_id = msg.order_id
        else:
            body = msgspec.json.encode({"internal": type(msg).__name__}).decode()
        letter = world.n_letters + 1
        engine.context("supervisor", getattr(msg, "corr", "-"), getattr(msg, "actor", SYSTEM))
        engine.emit(
            ev.DeadLettered(
                ts=engine.now(),
                letter_id=letter,
                actor=type(msg).__name__,
                message=body,
                error=f"{type(exc).__name__}: {exc}",
                sku=sku,
                order_id=order_id,
            )
        )
        reply = getattr(msg, "reply", None)
        if reply is not None:
            reply.error("internal_error", f"the request crashed its actor and was kept as dead letter {letter}")
        if isinstance(msg, SettleLines):
            # the order still waits for this SKU: answer it so the client is not left hanging
            pending = self.order_actor.pending.pop(msg.order_id, None)
            if pending is not None:
                pending[0].error(
                    "internal_error", f"the order was recorded but serving it crashed (dead letter {letter})"
                )

    def retry_letter(self, letter_id: int, reply, corr: str, actor: str = SYSTEM) -> None:
        """Redeliver a dead letter, as ordered by ``actor`` (whoever retries it)."""
        world = self.engine.world
        letter = world.dead_letters.get(letter_id)
        if letter is None:
            raise NotFound("unknown_letter", f"no dead letter {letter_id}")
        self.engine.context("deadletters.retry", corr, actor)
        self.engine.emit(ev.DeadLetterRetried(ts=self.engine.now(), letter_id=letter_id))
        data = msgspec.json.decode(letter.message)
        if "internal" in data:
            if letter.sku:
                self.send(letter.sku, Settle(corr=corr, actor=actor))
            reply.ok({"letter_id": letter_id, "redelivered": data})
            return
        req = p.REQUEST_DECODER.decode(letter.message.encode())
        route(self, req, reply, corr, actor)


def _busy(inbox: trio.MemorySendChannel) -> bool:
    st = inbox.statistics()
    return st.current_buffer_used > 0 or st.tasks_waiting_receive == 0


def _to_order(router: Router, req, reply, corr: str, actor: str) -> None:
    router.call_order(req, reply, corr, actor)


def _to_sku(router: Router, req, reply, corr: str, actor: str) -> None:
    # An unknown SKU is refused by its actor, in mailbox order (see SkuHandler._call).
    router.call_sku(req.sku, req, reply, corr, actor)


def _to_procurement(router: Router, req, reply, corr: str, actor: str) -> None:
    r = router.engine.world.requests.get(req.request_id)
    if r is None:
        if retention.archived_request(router.engine.world, req.request_id) is not None:
            raise Conflict("request_closed", f"{req.request_id} was closed and archived; it cannot be changed")
        raise NotFound("unknown_request", f"no purchase order or transfer {req.request_id!r}")
    router.call_sku(r.sku, req, reply, corr, actor)


_SENDERS = {"order": _to_order, "sku": _to_sku, "procurement": _to_procurement}
assert _SENDERS.keys() == p.ACTOR_ROUTES
# request type -> how it reaches its actor, from the routes of protocol.OP_TABLE. One dict
# lookup: the isinstance checks against tuples of Struct classes it replaces made the
# dispatch of a stock.receive cost 1.8 us against 0.4 us now (bench/dispatch.py).
ROUTES = {op.request: _SENDERS[op.route] for op in p.OP_TABLE if op.route in _SENDERS}


def route(router: Router, req, reply, corr: str, actor: str = SYSTEM) -> None:
    """Send a state-changing request to the actor that owns the decision; its events are
    journaled as ordered by ``actor`` (a client's, or an internal caller's: ``planner``)."""
    send = ROUTES.get(type(req))
    if send is None:
        raise ProtocolError("unknown_op", f"{type(req).__name__} does not change state")
    send(router, req, reply, corr, actor)
