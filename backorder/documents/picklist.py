"""A pick list for a batch of picking shipments, as plain text or PDF: one row per item,
ordered by the SKU's storage location (``[locations]`` in the config: SKU = "LOCATION"),
then SKU; SKUs without a location come last."""

from __future__ import annotations

from reportlab.lib.pagesizes import LETTER
from reportlab.lib.units import inch
from reportlab.pdfgen import canvas

from backorder.actors.model import World
from backorder.documents.cells import one_line
from backorder.documents.pdf import render_pdf
from backorder.errors import NotFound


def rows(world: World, shipment_ids: list[str]) -> list[tuple[str, str, int, str, str]]:
    """(location, sku, qty, shipment_id, order_id) in walking order."""
    if shipment_ids:
        unknown = [s for s in shipment_ids if s not in world.shipments]
        if unknown:
            raise NotFound("unknown_shipment", f"no shipment(s) {', '.join(unknown)}")
        batch = [world.shipments[s] for s in shipment_ids]
    else:
        batch = [sh for sh in world.shipments.values() if sh.status == "picking"]
    locations = world.settings.locations
    out = [
        (locations.get(sku, ""), sku, qty, sh.shipment_id, sh.order_id) for sh in batch for _line, sku, qty in sh.items
    ]
    out.sort(key=lambda r: (r[0] == "", r[0], r[1], r[3]))
    return out


def _row(loc: str, sku: str, qty: int | str, sid: str, oid: str) -> str:
    # one row per item whatever the SKU or location holds: a line break in one cannot forge a row
    return one_line(f"{loc or '-':<12} {sku:<24} {qty:>5}  {sid}  {oid}")


def pick_list(world: World, shipment_ids: list[str], fmt: str) -> bytes:
    items = rows(world, shipment_ids)
    if fmt == "text":
        lines = [f"{'LOCATION':<12} {'SKU':<24} {'QTY':>5}  SHIPMENT  ORDER"]
        lines += [_row(*item) for item in items]
        lines.append(f"{len(items)} item(s), {sum(r[2] for r in items)} unit(s)")
        return ("\n".join(lines) + "\n").encode()
    return render_pdf(LETTER, "Pick list", _draw, items)


def _draw(c: canvas.Canvas, items: list[tuple[str, str, int, str, str]]) -> None:
    y = LETTER[1] - inch
    c.setFont("Helvetica-Bold", 16)
    c.drawString(inch, y, "PICK LIST")
    y -= 0.4 * inch
    c.setFont("Courier", 10)
    for item in items:
        if y < inch:
            c.showPage()
            c.setFont("Courier", 10)
            y = LETTER[1] - inch
        c.drawString(inch, y, _row(*item))
        y -= 0.22 * inch
