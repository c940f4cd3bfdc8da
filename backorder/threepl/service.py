"""The 3PL's live side in the daemon: the inventory poll (every ``inventory_poll_s``, or on
the stepped clock's agenda in engine time) and the shipment webhooks.

A webhook is checked before anything else: a bad signature, a body that is not JSON, or a
shipment of an order we never routed is counted (``threepl.status`` / health) and dropped
with its HTTP status, and changes nothing. A good one goes to the order actor, which owns
the decision (``threepl_rules.ship``): shipped once, a repeat is a ``duplicate``.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

import msgspec
import structlog
import trio

from backorder.actors import threepl_rules
from backorder.actors.messages import ThreeplShipped
from backorder.clock import SteppedClock
from backorder.notify.channels import Rejected

if TYPE_CHECKING:
    from backorder.actors.engine import Engine
    from backorder.actors.router import Router
    from backorder.threepl.providers import Provider

log = structlog.get_logger()


class _Answer:
    """The reply handle the order actor answers a webhook's call on."""

    def __init__(self) -> None:
        self.event = trio.Event()
        self.result: tuple[bool, Any] = (False, None)

    def ok(self, result: Any) -> None:
        self.result = (True, result)
        self.event.set()

    def error(self, code: str, message: str) -> None:
        self.result = (False, (code, message))
        self.event.set()


class ThreeplService:
    def __init__(self, engine: Engine, router: Router) -> None:
        self.engine = engine
        self.router = router
        self.counts = {"shipped": 0, "duplicate": 0, "bad_signature": 0, "unknown_order": 0, "malformed": 0}
        self._n = 0

    def provider(self) -> Provider | None:
        cfg = self.engine.world.settings.threepl
        if not cfg.enabled:
            return None
        from backorder.threepl.providers import PROVIDERS

        return PROVIDERS[cfg.provider](cfg)

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        cfg = self.engine.world.settings.threepl
        clock = self.engine.clock
        if not cfg.enabled:
            task_status.started()
            return
        if isinstance(clock, SteppedClock):  # no task: the agenda polls in engine time
            clock.at(clock.now(), partial(self._poll_stepped, clock))
            task_status.started()
            return
        task_status.started()
        while True:
            await self.poll()
            await trio.sleep(self.engine.world.settings.threepl.inventory_poll_s)

    async def _poll_stepped(self, clock: SteppedClock) -> None:
        await self.poll()
        clock.at(clock.now() + self.engine.world.settings.threepl.inventory_poll_s, partial(self._poll_stepped, clock))

    async def poll(self) -> None:
        """One inventory poll: the cache is replaced by the 3PL's report (less what is
        routed and not yet sent to it); a failure keeps the old cache and says why."""
        provider = self.provider()
        inventory = self.engine.threepl_inventory
        if provider is None:
            return
        try:
            reported = await provider.inventory()
        except Exception as exc:
            inventory.error = f"{type(exc).__name__}: {exc}"[:300]
            log.warning("threepl_inventory_failed", error=inventory.error)
            return
        threepl_rules.refresh(inventory, reported, self.engine.world, self.engine.now())

    async def webhook(self, name: str, headers: dict[str, str], query: dict[str, str], body: bytes) -> tuple[int, dict]:
        """One shipment webhook for provider ``name``: (HTTP status, reply body)."""
        provider = self.provider()
        if provider is None or name != self.engine.world.settings.threepl.provider:
            return 404, {"error": "not_found", "message": f"no 3PL {name!r} is enabled"}
        if not provider.verify(headers, query, body):
            self.counts["bad_signature"] += 1
            log.warning("threepl_webhook_refused", reason="bad_signature")
            return 401, {"error": "signature_invalid", "message": "the signature does not match"}
        try:
            doc = msgspec.json.decode(body)
            shipments = await provider.shipped(doc)
        except (msgspec.DecodeError, Rejected, KeyError, TypeError, ValueError) as exc:
            self.counts["malformed"] += 1
            return 400, {"error": "malformed_body", "message": str(exc)[:300]}
        outcomes = []
        for sh in shipments:
            self._n += 1
            answer = _Answer()
            self.router.call_order(
                ThreeplShipped(order_id=sh.order_id, carrier=sh.carrier, tracking=sh.tracking),
                answer,
                f"threepl{self._n}",
            )
            await answer.event.wait()
            ok, res = answer.result
            outcome = res["outcome"] if ok else "error"
            key = "unknown_order" if outcome == "unknown" else outcome
            if key in self.counts:
                self.counts[key] += 1
            outcomes.append({"order_id": sh.order_id, "outcome": outcome})
        if outcomes and all(o["outcome"] == "unknown" for o in outcomes):
            log.warning("threepl_webhook_refused", reason="unknown_order", orders=[o["order_id"] for o in outcomes])
            return 404, {"error": "unknown_order", "message": "no order routed by that id", "shipments": outcomes}
        return 200, {"shipments": outcomes}
