"""The 3PL routing rules on a bare model: the backlog's definition, the hysteresis, a
route only for an order the 3PL's stock covers whole, and the site's counts untouched by
what the 3PL ships."""

from __future__ import annotations

import msgspec

from backorder import protocol as p
from backorder.actors import events as ev
from backorder.actors import order_rules, sku_rules, threepl_rules
from backorder.actors.carrier import LocalCarrier
from backorder.actors.model import AT_THREEPL, World
from backorder.config.settings import Settings

SETTINGS = msgspec.convert(
    {
        "threepl": {
            "enabled": True,
            "backlog_on_hours": 2,
            "backlog_off_hours": 1,
            "min_pick_rate_per_hour": 10,
            "pick_rate_window_s": 3600,
        }
    },
    Settings,
)
T0 = 1.7e9
ADDRESS = {"name": "A", "address1": "1 Main St", "city": "X", "country_code": "US"}


class Site:
    def __init__(self, settings: Settings = SETTINGS) -> None:
        self.w = World(settings)
        self.events: list[ev.Event] = []
        self.inventory = threepl_rules.Inventory(on_hand={"A": 3})
        self.now = T0
        sku_rules.receive(self.w, self.w.sku("A"), 100, None, self.emit, self.now)

    def emit(self, e: ev.Event) -> None:
        self.w.evolve(e)
        self.events.append(e)

    def order(self, n: int, qty: int = 1, **more) -> str:
        req = msgspec.convert(
            {
                "op": "order.submit",
                "channel": "web",
                "external_id": f"x{n}",
                "shipping_address": ADDRESS,
                "lines": [{"sku": "A", "qty": qty}],
                **more,
            },
            p.OrderSubmit,
        )
        order, _ = order_rules.submit(self.w, req, self.emit, self.now)
        if not threepl_rules.route(self.w, order, self.inventory, self.w.settings.threepl, self.emit, self.now):
            if not order.hold:
                sku_rules.settle(self.w, self.w.skus["A"], self.emit, self.now)
                order_rules.settle_order(self.w, order, self.emit, self.now)
        return order.order_id

    def routed(self, oid: str) -> bool:
        return self.w.orders[oid].routed_to == "shipbob"

    def pick(self, n: int) -> None:
        picking = [s for s in self.w.shipments.values() if s.status == "picking"][:n]
        for sh in picking:
            order_rules.ship(self.w, sh.shipment_id, LocalCarrier(), self.emit, self.now)


def test_backlog_is_units_awaiting_pick_over_the_pick_rate_with_a_floor():
    site = Site()
    for n in range(15):
        site.order(n)
    cfg = SETTINGS.threepl
    assert site.w.site_pick_units == 15
    assert threepl_rules.backlog_hours(site.w, cfg, site.now) == 1.5  # floor 10/h: nothing picked yet
    site.pick(12)
    assert site.w.site_pick_units == 3
    assert threepl_rules.pick_rate(site.w, cfg, site.now) == 12.0
    assert threepl_rules.backlog_hours(site.w, cfg, site.now) == 0.25
    # an hour and a minute later the picks left the window: the floor again
    assert threepl_rules.pick_rate(site.w, cfg, site.now + 3660) == 10.0


def test_routing_turns_on_at_the_on_threshold_and_off_only_at_the_off_threshold():
    site = Site()
    site.inventory.on_hand["A"] = 100
    site_orders = [site.order(n) for n in range(20)]
    assert not any(site.routed(o) for o in site_orders)
    assert site.routed(site.order(20))  # 20 units wait: 2 h at 10/h
    site.pick(5)  # 15 wait, 5 picked: 1.5 h, between the two: still on
    assert site.routed(site.order(21))
    site.pick(5)  # 10 wait, 10 picked: 1 h: off
    assert not site.routed(site.order(22))
    site.order(23)
    switches = [(e.on, e.backlog_hours) for e in site.events if isinstance(e, ev.ThreeplRouting)]
    assert switches == [(True, 2.0), (False, 1.0)]


def test_only_an_order_the_3pl_covers_whole_is_routed_and_the_cache_goes_down():
    site = Site()
    for n in range(20):
        site.order(n)
    assert site.routed(site.order(20, qty=2))  # 3 at the 3PL
    assert site.inventory.on_hand["A"] == 1
    big = site.order(21, qty=2)
    assert not site.routed(big) and site.w.orders[big].lines[0].allocated == 2
    held = site.order(22, hold="payment pending")
    assert not site.routed(held)  # the 3PL could not ship it before payment
    no_street = site.order(23, needs_address=True)
    assert not site.routed(no_street)


def test_what_the_3pl_ships_leaves_the_sites_stock_and_counts_as_shipped():
    site = Site()
    site.inventory.on_hand["A"] = 10
    for n in range(20):
        site.order(n)
    oid = site.order(20, qty=2)
    sku = site.w.skus["A"]
    before = (sku.on_hand, sku.allocated, sku.backordered, sku.shipped)
    (sid,) = site.w.orders[oid].shipments
    assert site.w.shipments[sid].status == AT_THREEPL
    assert site.w.orders[oid].status(site.w.shipments) == "picking"
    assert threepl_rules.ship(site.w, oid, "UPS", "1Z1", site.emit, site.now) == "shipped"
    assert threepl_rules.ship(site.w, oid, "UPS", "1Z1", site.emit, site.now) == "duplicate"
    assert threepl_rules.ship(site.w, "O9999999", "UPS", "1Z2", site.emit, site.now) == "unknown"
    assert (sku.on_hand, sku.allocated, sku.backordered, sku.shipped) == before
    assert site.w.orders[oid].status(site.w.shipments) == "shipped"
    assert site.w.orders_shipped == 1 and site.w.routed_shipped == 1 and not site.w.routed_open
    # conservation per SKU: on_hand = received + adjusted - shipped (the 3PL's units are not the site's)
    assert sku.on_hand == sku.received + sku.adjusted - sku.shipped


def test_a_poll_keeps_units_routed_but_not_yet_sent_taken():
    site = Site()
    site.inventory.on_hand["A"] = 10
    for n in range(20):
        site.order(n)
    site.order(20, qty=4)  # its create request is still in the outbox
    threepl_rules.refresh(site.inventory, {"A": 10, "B": 2}, site.w, site.now)
    assert site.inventory.on_hand == {"A": 6, "B": 2} and site.inventory.polls == 1


def test_a_disabled_3pl_routes_nothing_and_switches_routing_off():
    on = Site()
    on.inventory.on_hand["A"] = 100
    for n in range(21):
        on.order(n)
    assert on.w.threepl_on
    off_cfg = msgspec.structs.replace(SETTINGS.threepl, enabled=False)
    on.w.settings = msgspec.structs.replace(SETTINGS, threepl=off_cfg)
    assert not on.routed(on.order(30))
    assert not on.w.threepl_on


def test_an_enabled_3pl_without_hysteresis_or_credentials_is_a_config_error():
    import pytest

    from backorder.config.settings import ConfigError, parse_settings

    with pytest.raises(ConfigError) as err:
        parse_settings("[threepl]\nenabled = true\nbacklog_on_hours = 2.0\nbacklog_off_hours = 2.0\n")
    text = str(err.value)
    assert "threepl.backlog_off_hours: must be below backlog_on_hours" in text
    assert "threepl.base_url: required" in text and "credential_env or credential_file" in text
    assert "webhook_secret_env or webhook_secret_file" in text


def test_a_change_at_the_3pl_waits_for_its_answer_and_replays_and_snapshots_exactly():
    import pytest

    from backorder.actors import snapshot, threepl_changes
    from backorder.errors import Conflict

    site = Site()
    site.inventory.on_hand["A"] = 10
    for n in range(20):
        site.order(n)
    late, gone = site.order(20), site.order(21)
    cfg = site.w.settings.threepl
    threepl_changes.request(site.w, cfg, late, "cancel", "r1", None, site.emit, site.now)
    assert threepl_changes.state(site.w, late) == "pending"
    with pytest.raises(Conflict) as err:
        threepl_changes.request(site.w, cfg, late, "cancel", "r2", None, site.emit, site.now)
    assert err.value.code == "threepl_change_pending"
    (notice,) = [e for e in site.events if isinstance(e, ev.NoticeQueued) and e.kind == "threepl_change"]
    assert notice.data["change"] == "cancel" and notice.data["items"] == [{"line_no": 1, "sku": "A", "qty": 1}]
    threepl_changes.answered(site.w, notice, "too_late", "already picked", site.emit, site.now)
    assert threepl_changes.view(site.w, late)["code"] == "threepl_too_late"
    assert not site.w.orders[late].cancelled and late in site.w.routed_open
    threepl_changes.request(site.w, cfg, gone, "cancel", "fraud", None, site.emit, site.now)
    second = site.events[-1]
    assert isinstance(second, ev.NoticeQueued)
    threepl_changes.answered(site.w, second, "applied", "order 9001 cancelled", site.emit, site.now)
    order = site.w.orders[gone]
    assert order.cancelled and order.cancel_reason == "fraud" and gone not in site.w.routed_open
    assert site.w.shipments[order.shipments[0]].status == "cancelled" and order.lines[0].in_shipment == 0
    # an answer for an order that shipped meanwhile is too late whatever the 3PL said
    raced = site.order(22)
    threepl_changes.request(site.w, cfg, raced, "cancel", "", None, site.emit, site.now)
    third = site.events[-1]
    assert threepl_rules.ship(site.w, raced, "UPS", "1Z9", site.emit, site.now) == "shipped"
    threepl_changes.answered(site.w, third, "applied", "order 9002 cancelled", site.emit, site.now)
    assert threepl_changes.state(site.w, raced) == "too_late" and not site.w.orders[raced].cancelled
    # the journal replays to the same changes, and a snapshot keeps them
    replayed = World(site.w.settings)
    for e in site.events:
        replayed.evolve(e)
    restored = snapshot.restore(site.w.settings, snapshot.dump(replayed))
    for w in (replayed, restored):
        assert w.threepl_changes == site.w.threepl_changes
        assert threepl_changes.view(w, gone)["state"] == "applied" and w.orders[gone].cancelled
    assert restored.routed_open == site.w.routed_open
