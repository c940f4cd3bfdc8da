"""The contract of ``events.SKU_CONFINED``: a read of another SKU, or of an order without a
line on the event's SKU, does not wait for such an event to be durable (``Journal.fence``),
so applying one must change nothing in the model but its own SKU's record. Checked on the
whole model as a snapshot dumps it: before and after, only that SKU's row and its planner
record differ. A type added to the set without an example here fails the first test."""

from __future__ import annotations

import msgspec
import pytest
from model_support import policy_tuned, recording_world

from backorder import protocol as p
from backorder.actors import events as ev
from backorder.actors import order_rules, sku_rules, snapshot

T0 = 1_709_251_200.0


def _policy_tuned(sku: str) -> ev.PolicyTuned:
    levels = ev.TunedLevels(reorder_point=7, order_up_to=30, safety_stock=2)
    return policy_tuned(sku, T0 + 60, daily_mean=2.0, lead_time_days=3.0, lead_time_sd=0.5, new=levels)


EXAMPLES = {ev.PolicyTuned: _policy_tuned}


def test_every_confined_type_has_an_example_here():
    assert set(ev.SKU_CONFINED) == set(EXAMPLES)


def _site():
    """Two SKUs, an order with a line on each, one on B alone, stock and a reorder on A."""
    w, _log = recording_world(
        {
            "skus": {"A": {"reorder_point": 0, "order_up_to": 10}, "B": {"reorder_point": 0, "order_up_to": 10}},
            "notifications": {"routes": {"*": "email"}},
        }
    )
    sku_rules.adjust(w, w.skus["A"], 2, None, "count", w.emit, T0)
    for ext, lines in (("mix", [("A", 3), ("B", 1)]), ("b", [("B", 2)])):
        req = msgspec.convert(
            {
                "op": "order.submit",
                "channel": "web",
                "external_id": ext,
                "email": f"{ext}@x.example",
                "lines": [{"sku": s, "qty": q} for s, q in lines],
            },
            p.OrderSubmit,
        )
        order_rules.submit(w, req, w.emit, T0)
        for sku in dict.fromkeys(s for s, _ in lines):
            sku_rules.settle(w, w.skus[sku], w.emit, T0)
    return w


def _model(w) -> dict:
    snap = msgspec.msgpack.decode(snapshot.dump(w))
    snap["skus"] = {row[0]: row for row in snap["skus"]}
    snap["tuned"] = {msgspec.json.decode(e)["sku"]: e for e in snap["tuned"]}
    return snap


@pytest.mark.parametrize("kind", sorted(EXAMPLES, key=lambda t: t.__name__))
def test_a_confined_event_changes_only_its_own_skus_record(kind):
    w = _site()
    before = _model(w)
    w.evolve(EXAMPLES[kind]("A"))
    after = _model(w)
    assert after["skus"]["A"] != before["skus"]["A"]  # it did change A (the levels applied)
    assert {k: v for k, v in after["skus"].items() if k != "A"} == {k: v for k, v in before["skus"].items() if k != "A"}
    assert {k: v for k, v in after["tuned"].items() if k != "A"} == {
        k: v for k, v in before["tuned"].items() if k != "A"
    }
    assert {k: v for k, v in after.items() if k not in ("skus", "tuned")} == {
        k: v for k, v in before.items() if k not in ("skus", "tuned")
    }
