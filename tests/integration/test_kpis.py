"""The KPIs with standard definitions, through a real daemon on the stepped clock: the
backorder fill rate cannot be raised by cancellations, windows follow engine time, the
lead time counts late open requests, accuracy drops with every recorded exception, and
a kill -9 or a clean stop and restart give the same figures."""

from __future__ import annotations

import signal

import pytest
from bo_support import fingerprint, line, submit
from test_stepped_clock import advance

from backorder.client import CallError
from backorder.launcher import wait_until

pytestmark = pytest.mark.timeout(120)

START = "2026-01-05T09:00:00Z"
HOUR = 3600
DAY = 86400

CONFIG = f"""
[daemon]
clock = "stepped"
clock_start = "{START}"

[kpi]
backorder_target_hours = 48

[sources.acme]
name = "Acme Supply"

[sources.bolt]
name = "Bolt Parts"

[skus."SKU-A"]
reorder_point = 0
order_up_to = 0

[skus."SKU-B"]
reorder_point = 0
order_up_to = 0

[skus."SKU-P"]
reorder_point = 0
order_up_to = 10
lead_time_days = 2
source = "supplier:acme"

[skus."SKU-Q"]
reorder_point = 0
order_up_to = 4
lead_time_days = 1
source = "supplier:bolt"
"""


def kpi(stats: dict, name: str, window: str = "all") -> dict:
    return next(w for w in stats["kpis"][name]["windows"] if w["window"] == window)


def figures(stats: dict, name: str) -> dict:
    return {w["window"]: (w["numerator"], w["denominator"], w["value"]) for w in stats["kpis"][name]["windows"]}


@pytest.fixture
def stepped(make_daemon):
    d = make_daemon(CONFIG)
    with d.client() as c:
        yield d, c


def test_cancellations_count_as_misses_so_one_filled_of_five_is_20_percent(stepped):
    _d, c = stepped
    orders = [submit(c, f"G-{n}", line("SKU-A", 2)) for n in range(5)]
    assert all(o["status"] == "backordered" for o in orders)
    c.call("stock.receive", sku="SKU-A", qty=2)  # the first line fills at once, within its target
    for o in orders[1:]:
        c.call("order.cancel", order_id=o["order_id"], reason="gave up waiting")
    st = c.call("stats")
    assert figures(st, "backorder_fill_rate_lines")["all"] == (1, 5, 0.2)
    assert figures(st, "backorder_fill_rate_units")["all"] == (2, 10, 0.2)
    assert st["fulfillment_rate"] == 0.2  # the headline key carries the same definition
    assert figures(st, "backorder_fill_rate_lines")["7d"] == (1, 5, 0.2)
    # nothing was in stock when the five were ordered
    assert figures(st, "unit_fill_rate_at_order")["all"] == (0, 10, 0.0)
    help_text = st["kpis"]["backorder_fill_rate_lines"]["help"]
    assert "cancelled" in help_text and "not counted yet" in help_text


def test_windows_follow_engine_days_and_waiting_lines_count_once_past_target(stepped):
    _d, c = stepped
    c.call("stock.receive", sku="SKU-B", qty=1)
    submit(c, "W-0", line("SKU-B", 3))  # 1 of 3 at order time, 2 backordered
    c.call("stock.receive", sku="SKU-B", qty=2)  # filled at once: a hit on day 0
    st = c.call("stats")
    assert figures(st, "backorder_fill_rate_lines")["7d"] == (1, 1, 1.0)
    assert figures(st, "unit_fill_rate_at_order")["all"] == (1, 3, 0.3333)

    advance(c, seconds=10 * DAY)
    submit(c, "W-1", line("SKU-B", 1))  # backordered on day 10, its target on day 12
    st = c.call("stats")
    # waiting within its target: not counted yet; day 0 has left the 7-day window
    assert figures(st, "backorder_fill_rate_lines") == {"7d": (0, 0, None), "30d": (1, 1, 1.0), "all": (1, 1, 1.0)}

    advance(c, seconds=47 * HOUR)
    assert figures(c.call("stats"), "backorder_fill_rate_lines")["7d"] == (0, 0, None)
    advance(c, seconds=2 * HOUR)  # past its 48 h target, still waiting: a miss
    st = c.call("stats")
    assert figures(st, "backorder_fill_rate_lines") == {"7d": (0, 1, 0.0), "30d": (1, 2, 0.5), "all": (1, 2, 0.5)}
    c.call("stock.receive", sku="SKU-B", qty=1)  # filled late: still the same miss, counted once
    assert figures(c.call("stats"), "backorder_fill_rate_lines") == figures(st, "backorder_fill_rate_lines")

    advance(c, seconds=40 * DAY)
    st = c.call("stats")
    assert figures(st, "backorder_fill_rate_lines") == {"7d": (0, 0, None), "30d": (0, 0, None), "all": (1, 2, 0.5)}
    assert kpi(st, "backorder_fill_rate_lines", "7d")["since"] == "2026-02-20"  # today is 02-26


def test_lead_time_counts_closed_requests_and_late_open_ones_flagged_per_source(stepped):
    _d, c = stepped
    submit(c, "L-1", line("SKU-P", 2))  # raises a PO to acme (2 days)
    submit(c, "L-2", line("SKU-Q", 1))  # raises a PO to bolt (1 day)
    reqs = {r["sku"]: r for r in c.call("procurement.list")["requests"]}
    assert reqs["SKU-P"]["source"] == "acme" and reqs["SKU-Q"]["source"] == "bolt"
    advance(c, seconds=24 * HOUR)
    c.call("stock.receive", sku="SKU-P", qty=reqs["SKU-P"]["qty"], reference=reqs["SKU-P"]["request_id"])
    st = c.call("stats")
    lead = kpi(st, "reorder_lead_time_hours")
    assert (lead["denominator"], lead["value"], lead["open_overdue"]) == (1, 24.0, 0)  # bolt's is not late yet

    advance(c, seconds=4 * DAY)  # bolt's request, expected a day after it was raised, is late and open
    st = c.call("stats")
    lead = kpi(st, "reorder_lead_time_hours")
    assert lead["open_overdue"] == 1
    assert lead["denominator"] == 2
    assert lead["value"] == round((24 + 120) / 2, 2)
    assert (lead["p50"], lead["p90"]) == (24.0, 120.0)
    assert lead["by_source"]["bolt"]["open_overdue"] == 1
    assert lead["by_source"]["bolt"]["value"] == 120.0
    assert lead["by_source"]["acme"]["value"] == 24.0
    # the late request counts in every window (its age runs up to now); the closed one on its day
    assert kpi(st, "reorder_lead_time_hours", "7d")["denominator"] == 2
    assert st["avg_reorder_lead_time_hours"] == 72.0
    advance(c, seconds=10 * DAY)
    assert kpi(c.call("stats"), "reorder_lead_time_hours", "7d")["denominator"] == 1  # only the open one


def _backordered_and_shipped(c, ext: str, sku: str = "SKU-A") -> dict:
    order = submit(c, ext, line(sku, 1))
    assert order["status"] == "backordered"
    got = c.call("stock.receive", sku=sku, qty=1)
    assert [a["order_id"] for a in got["allocations"]] == [order["order_id"]]
    (sh,) = c.call("shipments.list", order_id=order["order_id"])["shipments"]
    return sh


def test_accuracy_drops_after_a_shipment_exception_and_after_a_pick_mismatch(stepped):
    _d, c = stepped
    for n in range(4):
        sh = _backordered_and_shipped(c, f"A-{n}")
        c.call("pick.confirm", shipment_id=sh["shipment_id"], scanned=[{"sku": "SKU-A", "qty": 1}])
    assert figures(c.call("stats"), "order_accuracy_post_backorder")["all"] == (4, 4, 1.0)

    first = c.call("shipments.list", status="shipped")["shipments"][0]
    rec = c.call(
        "shipment.exception",
        shipment_id=first["shipment_id"],
        kind="damaged",
        lines=[{"line_no": 1, "qty": 1}],
        note="box crushed",
    )
    assert rec["order_id"] == first["order_id"] and rec["lines"] == [{"line_no": 1, "sku": "SKU-A", "qty": 1}]
    st = c.call("stats")
    assert figures(st, "order_accuracy_post_backorder")["all"] == (3, 4, 0.75)
    assert st["order_accuracy"] == 0.75 and st["counts"]["shipment_exceptions"] == 1
    # a second exception of the same order does not count it twice
    c.call("shipment.exception", shipment_id=first["shipment_id"], kind="returned")
    assert figures(c.call("stats"), "order_accuracy_post_backorder")["all"] == (3, 4, 0.75)

    sh = _backordered_and_shipped(c, "A-9")
    with pytest.raises(CallError) as refused:
        c.call("pick.confirm", shipment_id=sh["shipment_id"], scanned=[{"sku": "SKU-B", "qty": 1}])
    assert refused.value.code == "pick_mismatch"
    assert c.call("shipments.list", order_id=sh["order_id"])["shipments"][0]["status"] == "picking"
    mismatches = c.call("audit.query", order_id=sh["order_id"])["records"]
    assert [r["event"]["type"] for r in mismatches][-1] == "pick_mismatched"
    c.call("pick.confirm", shipment_id=sh["shipment_id"], scanned=[{"sku": "SKU-A", "qty": 1}])
    st = c.call("stats")
    assert figures(st, "order_accuracy_post_backorder")["all"] == (3, 5, 0.6)
    assert st["counts"]["pick_mismatches"] == 1


def test_bad_input_is_refused_and_changes_nothing(stepped):
    _d, c = stepped
    sh = _backordered_and_shipped(c, "B-1")
    before = fingerprint(c, "SKU-A")
    kpis_before = c.call("stats")["kpis"]
    bad = [
        ("pick.confirm", {"shipment_id": sh["shipment_id"], "scanned": [{"sku": "NO-SUCH", "qty": 1}]}, "unknown_sku"),
        ("pick.confirm", {"shipment_id": sh["shipment_id"], "scanned": []}, "invalid_request"),
        (
            "pick.confirm",
            {"shipment_id": sh["shipment_id"], "scanned": [{"sku": "SKU-A", "qty": 0}]},
            "invalid_quantity",
        ),
        ("pick.confirm", {"shipment_id": "S9999999", "scanned": [{"sku": "SKU-A", "qty": 1}]}, "unknown_shipment"),
        ("shipment.exception", {"shipment_id": "S9999999", "kind": "damaged"}, "unknown_shipment"),
        ("shipment.exception", {"shipment_id": sh["shipment_id"], "kind": "lost"}, "invalid_request"),
        ("shipment.exception", {"shipment_id": sh["shipment_id"], "kind": "damaged"}, "not_shipped"),
    ]
    for op, fields, code in bad:
        with pytest.raises(CallError) as refused:
            c.call(op, **fields)
        assert refused.value.code == code, (op, fields)
    c.call("pick.confirm", shipment_id=sh["shipment_id"])
    before = fingerprint(c, "SKU-A")
    for fields, code in [
        ({"lines": [{"line_no": 2, "qty": 1}]}, "invalid_request"),
        ({"lines": [{"line_no": 1, "qty": 2}]}, "invalid_quantity"),
    ]:
        with pytest.raises(CallError) as refused:
            c.call("shipment.exception", shipment_id=sh["shipment_id"], kind="short", **fields)
        assert refused.value.code == code
    assert fingerprint(c, "SKU-A") == before
    assert c.call("stats")["kpis"]["order_accuracy_post_backorder"] != kpis_before["order_accuracy_post_backorder"]
    assert figures(c.call("stats"), "order_accuracy_post_backorder")["all"] == (1, 1, 1.0)


def _story(c) -> None:
    """Every kind of KPI fact, over several engine days."""
    orders = [submit(c, f"R-{n}", line("SKU-A", 1)) for n in range(3)]
    c.call("stock.receive", sku="SKU-A", qty=1)
    c.call("order.cancel", order_id=orders[1]["order_id"])
    submit(c, "R-P", line("SKU-P", 3))
    submit(c, "R-Q", line("SKU-Q", 2))
    advance(c, seconds=3 * DAY)
    req = next(r for r in c.call("procurement.list")["requests"] if r["sku"] == "SKU-P")
    c.call("stock.receive", sku="SKU-P", qty=req["qty"], reference=req["request_id"])
    for sh in c.call("shipments.list")["shipments"]:
        c.call("pick.confirm", shipment_id=sh["shipment_id"])
    shipped = c.call("shipments.list", status="shipped")["shipments"]
    c.call("shipment.exception", shipment_id=shipped[0]["shipment_id"], kind="wrong_address", note="moved")
    advance(c, seconds=2 * DAY)
    # a restart resumes the stepped clock at the last journaled event: end on one
    c.call("stock.adjust", sku="SKU-B", delta=1, reason="count")


def _kpis(c) -> dict:
    st = c.call("stats")
    return {
        "kpis": st["kpis"],
        "headline": [st[k] for k in ("fulfillment_rate", "avg_reorder_lead_time_hours", "order_accuracy")],
    }


def test_kill9_and_a_clean_restart_give_the_same_kpis(stepped):
    d, c = stepped
    _story(c)
    before = _kpis(c)
    assert kpi(before, "backorder_fill_rate_lines")["denominator"] == 5  # a hit, a cancel, three past target
    assert kpi(before, "reorder_lead_time_hours")["open_overdue"] == 1
    assert (
        kpi(before, "order_accuracy_post_backorder")["numerator"]
        < kpi(before, "order_accuracy_post_backorder")["denominator"]
    )
    c.close()
    d.kill9()
    d.start()
    with d.client() as c2:
        assert _kpis(c2) == before  # replayed from the journal
    d.stop()  # a clean stop writes a snapshot
    d.start()
    with d.client() as c3:
        assert _kpis(c3) == before  # restored from the snapshot
        advance(c3, seconds=DAY)  # and the snapshot's pending lines and open requests still move
        after = _kpis(c3)
    assert kpi(after, "reorder_lead_time_hours")["value"] > kpi(before, "reorder_lead_time_hours")["value"]


def test_a_new_target_applies_at_restart_only_and_rebuilds_every_figure(stepped):
    d, c = stepped
    submit(c, "T-1", line("SKU-A", 1))  # waits; its target is 48 h away
    advance(c, seconds=2 * HOUR)
    c.call("stock.adjust", sku="SKU-B", delta=1, reason="count")  # the clock resumes here after a restart
    assert figures(c.call("stats"), "backorder_fill_rate_lines")["all"] == (0, 0, None)
    d.config.write_text(d.config.read_text().replace("backorder_target_hours = 48", "backorder_target_hours = 1"))
    d.proc.send_signal(signal.SIGHUP)
    wait_until(
        lambda: '"reload_needs_restart"' in d.log.read_text() and '"section":"kpi"' in d.log.read_text(),
        timeout=10,
        message="no reload_needs_restart for [kpi]",
    )
    assert figures(c.call("stats"), "backorder_fill_rate_lines")["all"] == (0, 0, None)  # still 48 h
    c.close()
    d.stop()  # a clean stop: a snapshot kept under the 48 h target
    d.start()
    with d.client() as c2:
        # the snapshot's KPIs were kept under another target: replayed from the journal, 1 h
        assert figures(c2.call("stats"), "backorder_fill_rate_lines")["all"] == (0, 1, 0.0)
    assert '"snapshot_outdated"' in d.log.read_text()
