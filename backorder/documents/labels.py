"""A 4x6 in shipping label as PDF (reportlab, its own Code 128 barcode) with the ship-to
address, the order and the tracking number. It is drawn from what the shipment stored when
it shipped (carrier, tracking number) and the order as accepted, so a reprint never has a
new tracking number; the ZPL twin is ``backorder.actors.carrier.zpl_label``."""

from __future__ import annotations

from reportlab.graphics.barcode import code128
from reportlab.lib.units import inch
from reportlab.pdfgen import canvas

from backorder.actors.carrier import ship_to
from backorder.actors.model import Order, Shipment
from backorder.documents.cells import one_line
from backorder.documents.pdf import render_pdf

LABEL_SIZE = (4 * inch, 6 * inch)


def label_pdf(order: Order, sh: Shipment) -> bytes:
    return render_pdf(LABEL_SIZE, f"Label {sh.shipment_id}", _draw, order, sh)


def _draw(c: canvas.Canvas, order: Order, sh: Shipment) -> None:
    width, height = LABEL_SIZE
    y = height - 0.45 * inch
    c.setFont("Helvetica-Bold", 14)
    c.drawString(0.3 * inch, y, "SHIP TO:")
    c.setFont("Helvetica", 13)
    for text in filter(None, ship_to(order)):
        y -= 0.24 * inch
        c.drawString(0.3 * inch, y, one_line(text)[:45])
    y -= 0.45 * inch
    c.setFont("Helvetica", 10)
    c.drawString(
        0.3 * inch,
        y,
        one_line(f"Order {order.spec.order_number or order.order_id}   Shipment {sh.shipment_id}   Units {sh.units}"),
    )
    y -= 0.2 * inch
    c.drawString(0.3 * inch, y, one_line(f"Carrier {sh.carrier}"))
    barcode = code128.Code128(sh.tracking, barHeight=1.1 * inch, barWidth=0.022 * inch, humanReadable=True)
    x = max((width - barcode.width) / 2, 0.1 * inch)
    barcode.drawOn(c, x, 0.7 * inch)
    c.setFont("Helvetica-Bold", 12)
    c.drawCentredString(width / 2, 0.35 * inch, one_line(f"TRACKING {sh.tracking}"))
