"""The pure notice rules (backorder/actors/notice_rules.py) on a model built by the real rules."""

from __future__ import annotations

import msgspec
from model_support import recording_world

from backorder import protocol as p
from backorder.actors import events as ev
from backorder.actors import notice_rules, order_rules, sku_rules
from backorder.actors.model import World

T0 = 1_709_251_200.0  # 2024-03-01T00:00:00Z


def world(**notifications) -> tuple[World, list[ev.Event]]:
    return recording_world({"skus": {"A": {"reorder_point": 0, "order_up_to": 10}}, "notifications": notifications})


def order(w: World, ext: str, qty: int, sku: str = "A", **fields):
    req = msgspec.convert(
        {
            "op": "order.submit",
            "channel": fields.pop("channel", "web"),
            "external_id": ext,
            "lines": [{"sku": sku, "qty": qty}],
            **fields,
        },
        p.OrderSubmit,
    )
    o, _ = order_rules.submit(w, req, w.emit, T0)
    sku_rules.settle(w, w.skus[sku], w.emit, T0)
    return o


def test_the_backordered_notice_is_decided_in_the_same_step_as_the_backorder():
    """settle() emits line_backordered, the reorder and the notice without returning in
    between: they are appended together, so they share one commit - no crash can separate them."""
    w, log = world(routes={"*": "email"})
    o = order(w, "o1", 3, email="a@x.example")
    types = [type(e).__name__ for e in log]
    assert types == ["OrderReceived", "LineBackordered", "RequestRaised", "NoticeQueued"]
    notice = log[-1]
    assert (notice.order_id, notice.kind, notice.email) == (o.order_id, "backordered", "a@x.example")
    assert notice.data["lines"] == [{"line_no": 1, "sku": "A", "qty": 3, "waiting": 3, "expected_date": "2024-03-08"}]


def test_the_expected_date_walks_supply_in_date_order_not_raise_order():
    w, _ = world()
    order(w, "o1", 10)  # raises a PO for 20 units due 03-08
    s = w.skus["A"]
    (first,) = s.inbound
    sku_rules.configure(w, s, {"reorder_point": 14, "order_up_to": 30}, w.emit, T0)  # a second PO, 20 units
    second = [r for r in s.inbound if r != first][0]
    sku_rules.confirm(w, s, first, "2024-03-20", w.emit, T0)  # the first now comes LAST
    sku_rules.confirm(w, s, second, "2024-03-10", w.emit, T0)
    late = order(w, "o2", 15)
    assert len(s.inbound) == 2
    line = late.lines[0]
    # 10 + 15 units wait; the 03-10 request (20 units) is used up first, so this line waits
    # for the 03-20 one (walking in raise order would wrongly say 03-10)
    assert notice_rules.line_expected_date(w, s, line) == "2024-03-20"
    assert w.expected_dates(s)[-1] == "2024-03-20"  # the exact walk over the queue agrees


def test_routes_most_specific_first_and_email_needs_an_address():
    w, _ = world(routes={"*": "file", "web": "email", "b2b/ACME": "webhook"})
    kinds = {}
    for ext, fields in (
        ("1", {"channel": "web", "email": "a@x.example"}),
        ("2", {"channel": "web"}),
        ("3", {"channel": "b2b", "account": "ACME"}),
        ("4", {"channel": "b2b", "account": "Z"}),
    ):
        o = order(w, ext, 1, **fields)
        kinds[ext] = notice_rules.cancelled(w, o, "", w.emit, T0).channel
    assert kinds == {"1": "email", "2": "none", "3": "webhook", "4": "file"}
    assert w.notices[f"N{len(w.notices):07d}"].status == "pending"
    statuses = sorted({n.status for n in w.notices.values()})
    assert statuses == ["pending", "unrouted"]


def test_no_route_no_customer_notice():
    """A sales channel without a route gets no notice at all (the journal keeps the facts);
    a channel with a route on the same site does get its notices."""
    w, log = world(routes={"b2b": "webhook"})
    silent = order(w, "o1", 3)  # channel "web": no route
    assert [type(e).__name__ for e in log] == ["OrderReceived", "LineBackordered", "RequestRaised"]
    assert w.notices == {} and w.notices_queued == 0
    s = w.skus["A"]
    (po,) = s.inbound
    sku_rules.confirm(w, s, po, "2024-03-20", w.emit, T0)
    assert notice_rules.cancelled(w, silent, "", w.emit, T0) is None
    assert not [e for e in log if isinstance(e, ev.NoticeQueued)]
    heard = order(w, "o2", 3, channel="b2b")
    (notice,) = [e for e in log if isinstance(e, ev.NoticeQueued)]
    assert (notice.order_id, notice.kind, notice.channel) == (heard.order_id, "backordered", "webhook")


def test_one_routed_order_among_unrouted_ones_in_the_same_settle():
    """settle() backorders the lines of several orders at once; only the routed one is told."""
    w, log = world(routes={"b2b": "file"})
    reqs = [
        msgspec.convert(
            {"op": "order.submit", "channel": ch, "external_id": ext, "lines": [{"sku": "A", "qty": 2}]}, p.OrderSubmit
        )
        for ext, ch in (("1", "web"), ("2", "b2b"), ("3", "web"))
    ]
    orders = [order_rules.submit(w, r, w.emit, T0)[0] for r in reqs]
    sku_rules.settle(w, w.skus["A"], w.emit, T0)
    assert sum(isinstance(e, ev.LineBackordered) for e in log) == 3
    (notice,) = [e for e in log if isinstance(e, ev.NoticeQueued)]
    assert (notice.order_id, notice.channel) == (orders[1].order_id, "file")
    assert notice.data["lines"][0]["expected_date"] == "2024-03-08"
