"""Logs: JSON lines; one canonical `request` line per unit of work with its correlation ids,
the same correlation id as the audit trail; the level changes at run time."""

from __future__ import annotations

import json

from bo_support import line, stock, submit

from backorder.client import CallError
from backorder.launcher import wait_until


def _lines(d) -> list[dict]:
    return [json.loads(ln) for ln in d.log.read_text().splitlines()]  # every line is JSON


def _wait_for(d, pred, timeout: float = 10, count: int = 1) -> list[dict]:
    """The log lines matching ``pred``, once there are at least ``count`` of them."""
    return wait_until(
        lambda: len(found := [x for x in _lines(d) if pred(x)]) >= count and found,
        timeout,
        message=lambda: d.log_tail(2000),
    )


def test_one_canonical_line_per_write_with_correlation_ids(sim):
    d = sim()
    with d.client() as c:
        stock(c, "A", 1)
        oid = c.request("order.submit", channel="web", external_id="L1", lines=[line("A", 1)])["result"]["order_id"]
        c.call("health")
        try:
            c.call("order.cancel", order_id="O9999999")
        except CallError:
            pass
        audit = c.call("audit.query", order_id=oid)["records"]
    (done,) = _wait_for(d, lambda x: x.get("event") == "request" and x.get("op") == "order.submit")
    assert done["ok"] is True and done["order_id"] == oid and done["level"] == "info"
    assert isinstance(done["conn"], int) and done["ms"] >= 0 and done["request_id"] == 3
    # the log's corr is the audit trail's correlation id of the events the request caused
    assert {r["correlation_id"] for r in audit if r["type"] == "order_received"} == {done["corr"]}
    # and its actor, who sent it
    assert {r["actor"] for r in audit if r["type"] == "order_received"} == {done["actor"]}
    (receive,) = [x for x in _lines(d) if x.get("event") == "request" and x.get("op") == "stock.receive"]
    assert receive["sku"] == "A"
    # a read is not logged by default; an error is, with its code
    assert not [x for x in _lines(d) if x.get("event") == "request" and x.get("op") == "health"]
    (err,) = _wait_for(d, lambda x: x.get("event") == "request" and x.get("op") == "order.cancel")
    assert err["ok"] is False and err["code"] == "unknown_order"


def test_log_level_op_changes_the_level_at_run_time(sim):
    d = sim('[logging]\nrequests = "all"\n')
    with d.client() as c:
        c.call("health")
        assert not [x for x in _lines(d) if x.get("op") == "health" and x.get("event") == "request"]
        assert c.call("log.level", level="debug") == {"level": "debug", "was": "info"}
        c.call("health")
        _wait_for(d, lambda x: x.get("event") == "request" and x.get("op") == "health" and x["level"] == "debug")
        assert c.call("log.level", level="error")["was"] == "debug"
        submit(c, "Q1", line("B", 1))
        # A request's line is written before its reply is sent, so a line logged after the
        # submit's reply proves the log holds every line the submit could have made.
        c.call("log.level", level="debug")
        c.call("health")
        _wait_for(
            d, lambda x: x.get("event") == "request" and x.get("op") == "health" and x["level"] == "debug", count=2
        )
        # at level error even writes are quiet
        assert not [x for x in _lines(d) if x.get("event") == "request" and x.get("op") == "order.submit"]
