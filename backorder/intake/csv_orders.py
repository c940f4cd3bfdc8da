"""CSV order files: one row per order line, a header row naming the columns (any order;
see docs/intake.md for the layout). Rows with the same ``order_id`` form one order.

Money: ``unit_price`` before discounts and tax, ``line_discount``, ``line_total`` (after
the discount, before tax; left empty: qty x unit_price - line_discount) and the order's
``order_subtotal``, ``order_discount``, ``order_shipping``, ``order_fees``, ``order_tax``,
``order_total``, read from the order's first row; a file without ``order_total`` sends no
totals, one without ``order_subtotal`` / ``order_discount`` gets the lines' sums."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from backorder.errors import ProtocolError
from backorder.intake import draft as d

NAME = "csv"
SIGNATURE_HEADER = None
DEFAULTS: dict = {"optional_fields": ["email"], "lenient_numbers": True}  # CSV is text: numbers are strings
COLUMNS = (
    "order_id",
    "order_number",
    "order_date",
    "currency",
    "email",
    "customer_id",
    "customer_name",
    "ship_name",
    "ship_company",
    "ship_address1",
    "ship_address2",
    "ship_city",
    "ship_region",
    "ship_postal_code",
    "ship_country",
    "ship_phone",
    "sku",
    "qty",
    "unit_price",
    "requires_shipping",
    "rush",
    "priority",
    "hold",
    "status",
    "line_id",
    "line_discount",
    "line_total",
    "order_subtotal",
    "order_discount",
    "order_shipping",
    "order_fees",
    "order_tax",
    "order_total",
)
REQUIRED = ("order_id", "sku", "qty")
_TRUE = {"1", "true", "yes", "y"}


def parse(body: bytes, headers: dict[str, str], profile) -> list[d.Draft]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ProtocolError("malformed_body", "a CSV file must be UTF-8") from None
    try:
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise ProtocolError("malformed_body", f"not a readable CSV file: {exc}") from None
    if not rows:
        raise ProtocolError("malformed_body", "the CSV file has no data rows (a header row and one row per line)")
    missing = [c for c in REQUIRED if c not in rows[0]]
    if missing:
        raise ProtocolError("malformed_body", f"the CSV header lacks column(s) {', '.join(missing)}")
    orders: dict[str, d.Draft] = {}
    for n, row in enumerate(rows, 2):
        if None in row:
            raise ProtocolError("malformed_body", f"row {n} has more fields than the header")
        g = {k: (v or "").strip() for k, v in row.items()}
        oid = g["order_id"]
        if not oid:
            raise ProtocolError("malformed_body", f"row {n}: order_id is empty")
        draft = orders.get(oid)
        if draft is None:
            status = g.get("status", "").lower()
            draft = orders[oid] = d.Draft(
                kind="cancel" if status == "cancelled" else "order",
                external_id=oid[:128],
                order_number=g.get("order_number", "") or oid,
                customer={"id": g.get("customer_id", ""), "name": g.get("customer_name", "")},
                email=g.get("email", ""),
                shipping_address={
                    k: g.get(f"ship_{c}", "")
                    for k, c in (
                        ("name", "name"),
                        ("company", "company"),
                        ("address1", "address1"),
                        ("address2", "address2"),
                        ("city", "city"),
                        ("region", "region"),
                        ("postal_code", "postal_code"),
                        ("country_code", "country"),
                        ("phone", "phone"),
                    )
                },
                created_at=d.utc(g.get("order_date") or None, f"row {n}.order_date"),
                currency=g.get("currency", ""),
                rush=g.get("rush", "").lower() in _TRUE,
                priority=g.get("priority", "").lower() in _TRUE,
                hold=g.get("hold", ""),
                message="status cancelled",
            )
            if "order_total" in g:
                draft.totals = {
                    f: d.money(g.get(f"order_{f}"), f"row {n}.order_{f}")
                    for f in ("subtotal", "discount", "shipping", "fees", "tax", "total")
                }
                draft.total = draft.totals["total"]
        draft.lines.append(
            d.DraftLine(
                sku=g["sku"][:64],
                qty=g["qty"],
                unit_price=d.money(g.get("unit_price"), f"row {n}.unit_price"),
                requires_shipping=g.get("requires_shipping", "true").lower() in _TRUE | {""},
                discount=d.money(g.get("line_discount"), f"row {n}.line_discount"),
                line_total=d.money(g["line_total"], f"row {n}.line_total") if g.get("line_total") else None,
                channel_line_id=g.get("line_id", "")[:128],
            )
        )
    for draft in orders.values():  # totals the file leaves out follow from its lines
        if draft.totals is not None and "order_subtotal" not in rows[0]:
            draft.totals["subtotal"] = d.gross(draft.lines)
        if draft.totals is not None and "order_discount" not in rows[0]:
            draft.totals["discount"] = sum((ln.discount for ln in draft.lines), Decimal(0))
    return list(orders.values())
