"""Consolidated purchase orders: requests raised for the same source within
``[procurement] consolidate_hours`` are lines of one purchase order (each request keeps
its id and gains the ``po_id``), whose one document - PDF, CSV and the X12 850 - carries
every line and goes out when the window closes (stepped clock, real daemon, file drop)."""

from __future__ import annotations

import base64
import json

from bo_support import line, submit

CONFIG = """
[daemon]
clock = "stepped"
clock_start = "2026-01-05T09:00:00Z"
[procurement]
consolidate_hours = 4
[sources.acme]
name = "Acme Supply"
deliver = "file"
edi = true
[notifications.file]
dir = "{drop}"
[skus."SKU-A"]
reorder_point = 0
order_up_to = 10
source = "supplier:acme"
[skus."SKU-B"]
reorder_point = 0
order_up_to = 6
source = "supplier:acme"
"""


def po_notices(c) -> list[dict]:
    return [n for n in c.call("notifications.list")["notifications"] if n["kind"] == "purchase_order"]


def x12_segments(text: str) -> list[list[str]]:
    return [seg.strip().split("*") for seg in text.split("~") if seg.strip()]


def test_two_skus_of_one_source_within_the_window_go_out_as_one_po_with_two_lines(make_daemon, tmp_path):
    drop = tmp_path / "drop"
    d = make_daemon(CONFIG.format(drop=drop))
    with d.client() as c:
        a, b = c.call("procurement.list")["requests"]  # both raised at start, for acme
        assert (a["sku"], b["sku"]) == ("SKU-A", "SKU-B")
        assert a["po_id"] == b["po_id"] == a["request_id"] != b["request_id"]
        (notice,) = po_notices(c)  # one purchase order, so one supplier notice
        assert notice["status"] == "pending"
    d.kill9()  # the PO and its pending document survive
    d.start()
    with d.client() as c:
        assert [r["po_id"] for r in c.call("procurement.list")["requests"]] == [a["request_id"]] * 2
        c.call("clock.advance", seconds=3 * 3600)  # the window is still open: nothing sent
        (notice,) = po_notices(c)
        assert notice["status"] == "pending"
        c.call("clock.advance", seconds=3600)  # the window closes: the PO goes out
        (notice,) = po_notices(c)
        assert notice["status"] == "sent"
        sent = json.loads((drop / f"{notice['notice_id']}.json").read_text())
        assert "every line of purchase order" in sent["text"]
        files = {att["name"]: base64.b64decode(att["base64"]).decode("latin-1") for att in sent["attachments"]}
        assert set(files) == {f"{a['request_id']}.{ext}" for ext in ("pdf", "csv", "x12")}

        x12 = c.call("procurement.document", request_id=b["request_id"], format="x12_850")["document"]
        assert x12 == files[f"{a['request_id']}.x12"]  # the document of either line is the PO's
        segs = x12_segments(x12)
        beg = next(s for s in segs if s[0] == "BEG")
        assert beg[3] == a["request_id"]
        assert [(s[1], s[2], s[7]) for s in segs if s[0] == "PO1"] == [("1", "10", "SKU-A"), ("2", "6", "SKU-B")]
        assert next(s for s in segs if s[0] == "CTT")[1:] == ["2", "16"]
        csv_rows = c.call("procurement.document", request_id=a["request_id"], format="csv")["document"].splitlines()
        assert [row.split(",")[3:6] for row in csv_rows[1:]] == [["1", "SKU-A", "10"], ["2", "SKU-B", "6"]]

        # after the window a new shortage opens a new purchase order
        submit(c, "w1", line("SKU-A", 12))
        newest = c.call("procurement.list", sku="SKU-A")["requests"][-1]
        assert newest["po_id"] == newest["request_id"] != a["request_id"]
        assert len(po_notices(c)) == 2
