"""Refused input: a stable snake_case code and a human sentence, in a small hierarchy.

Every refusal is a ``Rejected``; catch sites catch ``Rejected`` and read ``.code`` and
``.message``. A raise site names the kind of refusal by its class and the exact reason by
its code, e.g. ``raise NotFound("unknown_sku", f"SKU {sku!r} is not known")``. Each class
declares the codes it may carry (``codes``), once; together they are exactly the codes of
the "Error codes" table in docs/protocol.md (checked by tests/integration/test_protocol_doc.py),
and every literal raise site names a code of its own class (checked by tests/unit/test_errors.py).

The class is for readers and for code that cares about the kind (an HTTP status, a
metric); the wire carries only the code. The check is a test over the source, not a check
in ``__init__``: a refusal is built on the error path of every request, and a misfiled code
must never turn a clean refusal into a crash.
"""

from __future__ import annotations

from typing import ClassVar


class Rejected(Exception):
    """A request that must be refused; nothing was changed. ``code`` is documented in docs/protocol.md.

    Raised as one of the subclasses below. ``Rejected`` itself is built directly only where
    the code is not known until run time (an outcome handed back by another component)."""

    codes: ClassVar[frozenset[str]] = frozenset()  # a subclass's own codes; here: every code (set below)

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ProtocolError(Rejected):
    """The request line (or an intake delivery's body) cannot be read as a request at all:
    not JSON, nested too deep, no ``op`` or an unknown one, a body not in its channel's format."""

    codes = frozenset({"malformed_json", "too_deep", "missing_op", "unknown_op", "malformed_body"})


class InvalidInput(Rejected):
    """The request is readable, but a field is missing, of the wrong type, out of bounds or
    contradicts another field; or an ingested order does not fit the canonical model."""

    codes = frozenset(
        {
            "invalid_request",
            "invalid_quantity",
            "invalid_price",
            "invalid_date",
            "invalid_email",
            "invalid_policy",
            "invalid_order",
            "missing_field",
            "missing_sku",
            "unknown_currency",
            "currency_mismatch",
            "order_items_mismatch",
            "ship_notice_sku",
        }
    )


class NotFound(Rejected):
    """The request names something the daemon does not have: a SKU, order, shipment,
    purchase order, notice, dead letter, subscription topic or intake channel."""

    codes = frozenset(
        {
            "unknown_sku",
            "unknown_order",
            "unknown_shipment",
            "unknown_request",
            "unknown_notice",
            "unknown_letter",
            "unknown_topic",
            "unknown_channel",
        }
    )


class Conflict(Rejected):
    """The request is valid, but the current state of what it names refuses it: the order
    is cancelled or already allocated or shipped, a receipt id was used with another qty, a
    notice is not dead, a source is not set up for EDI, the engine clock is not the
    stepped one (``clock.advance``), a shipment's order still waits for its street address,
    a pick scan does not match its shipment, the journal failed its integrity check
    (``journal_damaged``: every write is refused), the planner is off (``planner_disabled``) or its
    worker process is down or did not answer in time (``planner_unavailable``), a purchase order is closed or a supplier answers for more
    than was ordered."""

    codes = frozenset(
        {
            "receipt_conflict",
            "request_closed",
            "stock_in_picking",
            "already_shipped",
            "order_cancelled",
            "already_allocated",
            "notice_not_dead",
            "not_shipped",
            "edi_not_configured",
            "clock_not_stepped",
            "address_needed",
            "pick_mismatch",
            "planner_disabled",
            "planner_unavailable",
            "bulk_changed",
            "request_partly_received",
            "over_ordered",
            "ship_notice_conflict",
            "routed_to_threepl",
            "threepl_change_pending",
            "journal_damaged",
        }
    )


class AccessError(Rejected):
    """The sender may not do this: a ``read`` connection asked for a write, a TCP client did
    not authenticate, an intake delivery is unsigned, wrongly signed or signed for another account."""

    codes = frozenset({"forbidden", "unauthorized", "signature_missing", "signature_invalid", "account_mismatch"})


class LimitError(Rejected):
    """A limit was reached: the intake queue is full (``busy``) or a body too large. The
    connection limits (``line_too_long``, ``too_many_*``, ``idle_timeout``,
    ``subscriber_overflow``) carry codes of this class; the server sends them as it closes
    the connection."""

    codes = frozenset(
        {
            "busy",
            "body_too_large",
            "line_too_long",
            "too_many_connections",
            "too_many_inflight",
            "too_many_reply_bytes",
            "idle_timeout",
            "subscriber_overflow",
            "bulk_too_large",
        }
    )


class InternalError(Rejected):
    """A bug, caught before it did harm: a request crashed its actor, an event could not be
    journaled faithfully (``unjournalable_event``), an intake adapter failed unforeseen."""

    codes = frozenset({"internal_error", "unjournalable_event", "adapter_error"})


KINDS: tuple[type[Rejected], ...] = (
    ProtocolError,
    InvalidInput,
    NotFound,
    Conflict,
    AccessError,
    LimitError,
    InternalError,
)

Rejected.codes = frozenset().union(*(kind.codes for kind in KINDS))
