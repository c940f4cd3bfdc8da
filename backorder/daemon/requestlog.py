"""The canonical log line of a unit of work: one ``request`` line per request answered,
with its correlation ids — connection, request id, the journal's correlation id
(``corr``, the same as in the audit trail), order id, SKU — the op, the outcome and the
time it took to decide. Which requests get one is ``[logging] requests``:
``"writes"`` (default: every op that changes state, and every error), ``"all"``,
``"errors"`` or ``"none"``. A write's line is at level info, a read's at debug."""

from __future__ import annotations

from time import perf_counter

import msgspec

from backorder import protocol as p
from backorder.daemon import logging as dlog

_mode = {"requests": "writes"}


def configure(requests: str) -> None:
    _mode["requests"] = requests


def _level(op: str, ok: bool) -> str:
    return "info" if not ok or op in p.WRITE_OPS else "debug"


def wanted(op: str, ok: bool) -> bool:
    mode = _mode["requests"]
    if mode == "none" or not dlog.enabled(_level(op, ok)):
        return False  # decided before any field is built: the hot path pays nothing
    if not ok or mode == "all":
        return True
    return mode == "writes" and op in p.WRITE_OPS


def summary(reply, ok: bool, result=None, code: str | None = None, message: str = "") -> None:
    """Log the canonical line of the request behind ``reply`` (a server.Reply)."""
    conn = reply.conn
    fields = {
        "conn": conn.id,
        "op": reply.op,
        "ok": ok,
        "corr": reply.corr,
        "ms": round((perf_counter() - reply.t0) * 1000, 3) if reply.t0 else None,
    }
    rid = bytes(reply.req_id)
    if rid != b"null":
        # An array or object id is logged as its JSON text: decoding recurses once per
        # nesting level, and an id that decoded where the request was read may be too
        # deep to decode again further down the stack (RecursionError).
        fields["request_id"] = rid.decode() if rid[:1] in (b"[", b"{") else msgspec.json.decode(rid)
    if isinstance(result, dict):
        for key in ("order_id", "sku", "shipment_id", "request_id", "status"):
            if key in result:
                fields["req_" + key if key == "request_id" else key] = result[key]
    if not ok:
        fields["code"] = code
        fields["reason"] = message[:200]
    if conn.peer:
        fields["peer"] = conn.peer
    fields["actor"] = conn.actor  # as the journal records it: log lines and audit rows join on it
    dlog.write_json(_level(reply.op, ok), {"event": "request", **fields})
