"""The document of a purchase order or transfer request for its source: PDF, CSV and an
outbound X12 850 (version 004010) for sources configured with ``edi = true``.

A document is the whole purchase order the request is a line of (``Request.po_id``):
requests consolidated into one PO (``[procurement] consolidate_hours``) are its lines,
in the order they were raised; a cancelled line is left out. The PO number is the
``po_id`` (the id of its first request), so a PO of one request reads as it always did.

The X12 interchange is built from the PO only (ids from the PO number, dates from its
creation time), so producing it again gives the same document - and the supplier's
translator can dedupe on the ISA control number.
"""

from __future__ import annotations

import csv
import datetime as dt
import io

from reportlab.lib.pagesizes import LETTER
from reportlab.lib.units import inch
from reportlab.pdfgen import canvas

from backorder.actors.model import Request, World
from backorder.config.settings import Source
from backorder.documents import x12
from backorder.documents.cells import one_line, spreadsheet_cell
from backorder.documents.pdf import render_pdf
from backorder.errors import Conflict
from backorder.timeutil import iso_date

CSV_HEADER = ["request_id", "kind", "source", "line", "sku", "qty", "unit", "expected_date", "ordered_on"]


def _source(world: World, r: Request) -> Source:
    return world.settings.sources.get(r.source) or Source(name=r.source)


def po_lines(world: World, r: Request) -> list[Request]:
    """The lines of the purchase order ``r`` belongs to, as raised (cancelled ones left out)."""
    lines = world.purchase_orders.get(r.po_id) or [r]
    return [x for x in lines if x.status != "cancelled"]


def _opened(world: World, r: Request) -> Request:
    """The request that opened the PO (its number, its dates)."""
    return world.requests.get(r.po_id, r)


def to_csv(world: World, r: Request) -> bytes:
    """One row per line; ``request_id`` is the PO number, ``line`` the line's request id."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(CSV_HEADER)
    head = _opened(world, r)
    for n, x in enumerate(po_lines(world, r), 1):
        row = [head.request_id, x.kind, x.source, n, x.sku, x.qty, "EA", x.expected_date, iso_date(head.created_ts)]
        w.writerow([spreadsheet_cell(v) if isinstance(v, str) else v for v in row])
    return out.getvalue().encode()


def to_pdf(world: World, r: Request) -> bytes:
    title = "TRANSFER REQUEST" if r.kind == "transfer" else "PURCHASE ORDER"
    head = _opened(world, r)
    return render_pdf(LETTER, f"{title} {head.request_id}", _draw, _source(world, r), head, title, po_lines(world, r))


def _draw(c: canvas.Canvas, src: Source, r: Request, title: str, lines: list[Request]) -> None:
    y = LETTER[1] - inch
    c.setFont("Helvetica-Bold", 18)
    c.drawString(inch, y, one_line(f"{title} {r.request_id}"))
    c.setFont("Helvetica", 11)
    for text in (
        f"To: {src.name or r.source} ({r.source})",
        f"Email: {src.email or '-'}",
        f"Ordered on: {iso_date(r.created_ts)}",
        f"Deliver by: {r.expected_date}",
    ):
        y -= 0.3 * inch
        c.drawString(inch, y, one_line(text))
    y -= 0.5 * inch
    c.setFont("Helvetica-Bold", 11)
    for x, head in ((inch, "Line"), (1.7 * inch, "SKU"), (4.5 * inch, "Quantity"), (5.7 * inch, "Unit")):
        c.drawString(x, y, head)
    c.setFont("Helvetica", 11)
    for n, line in enumerate(lines, 1):
        y -= 0.25 * inch
        if y < inch:  # a long PO continues on the next page
            c.showPage()
            c.setFont("Helvetica", 11)
            y = LETTER[1] - inch
        for x, cell in (
            (inch, str(n)),
            (1.7 * inch, one_line(line.sku)),
            (4.5 * inch, str(line.qty)),
            (5.7 * inch, "EA"),
        ):
            c.drawString(x, y, cell)
    y -= 0.4 * inch
    c.drawString(inch, y, f"Total quantity: {sum(line.qty for line in lines)}")


_x12_text = x12.text


def to_x12_850(world: World, r: Request) -> bytes:
    """One interchange (ISA/GS/ST 850/SE/GE/IEA), '*' elements, '~' segments, '>' sub-elements."""
    cfg = world.settings.notifications.edi
    src = _source(world, r)
    lines = po_lines(world, r)
    r = _opened(world, r)
    created = dt.datetime.fromtimestamp(r.created_ts, dt.UTC)
    control = int("".join(ch for ch in r.request_id if ch.isdigit()) or "0") % 1_000_000_000
    date8 = created.strftime("%Y%m%d")
    delivery = r.expected_date.replace("-", "")
    body = [
        ["ST", "850", "0001"],
        ["BEG", "00", "NE" if r.kind == "po" else "SA", _x12_text(r.request_id), "", date8],
        ["DTM", "002", delivery],
        ["N1", "ST", "SHIP TO SITE", "92", _x12_text(cfg.gs_id)],
        ["N1", "SU", _x12_text(src.name or r.source), "92", _x12_text(r.source)],
        *(["PO1", str(n), str(x.qty), "EA", "", "", "VP", _x12_text(x.sku)] for n, x in enumerate(lines, 1)),
        ["CTT", str(len(lines)), str(sum(x.qty for x in lines))],
    ]
    body.append(["SE", str(len(body) + 1), "0001"])
    return x12.interchange(
        "PO",
        x12.Party(cfg.isa_qualifier, cfg.isa_id, cfg.gs_id),
        x12.Party(src.isa_qualifier, src.isa_id, src.gs_id),
        cfg.usage,
        control,
        created,
        body,
    )


FORMATS = {
    "pdf": (to_pdf, "application/pdf", "pdf"),
    "csv": (to_csv, "text/csv", "csv"),
    "x12_850": (to_x12_850, "application/edi-x12", "x12"),
}


def document(world: World, r: Request, fmt: str) -> tuple[bytes, str]:
    if fmt == "x12_850" and not _source(world, r).edi:
        raise Conflict("edi_not_configured", f"source {r.source!r} is not configured for EDI (sources.{r.source}.edi)")
    build, mime, _ = FORMATS[fmt]
    return build(world, r), mime


def attachments(world: World, request_id: str | None) -> list[tuple[str, str, bytes]]:
    """What a supplier notice carries: PDF and CSV, plus the X12 850 for an EDI source."""
    r = world.requests[request_id] if request_id else None
    if r is None:
        return []
    fmts = ["pdf", "csv"] + (["x12_850"] if _source(world, r).edi else [])
    out = []
    for fmt in fmts:
        build, mime, ext = FORMATS[fmt]
        out.append((f"{r.po_id}.{ext}", mime, build(world, r)))
    return out
