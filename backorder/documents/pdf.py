"""The reportlab set-up every PDF document shares."""

from __future__ import annotations

import io
from collections.abc import Callable

from reportlab.pdfgen import canvas


def render_pdf(pagesize: tuple[float, float], title: str, draw: Callable[..., None], *args) -> bytes:
    """A one-or-more-page PDF drawn by ``draw(canvas, *args)``; the last page is closed here."""
    buf = io.BytesIO()
    # invariant=1: no creation date or random id in the file - the same document, byte for byte
    c = canvas.Canvas(buf, pagesize=pagesize, invariant=1)
    c.setTitle(title)
    draw(c, *args)
    c.showPage()
    c.save()
    return buf.getvalue()
