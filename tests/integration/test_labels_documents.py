"""Labels, pick lists and supplier documents, read back by independent means: the label PDF
is rendered to an image (pypdfium2) and its barcode decoded (zxing-cpp); the ZPL fields are
parsed; the X12 850 is parsed by a reader written here (not the daemon's code); CSV and PDF
text carry the purchase order's quantities."""

from __future__ import annotations

import base64
import csv
import io
import json
import re

import pypdfium2 as pdfium
import zxingcpp
from bo_support import line, stock, submit
from notify_support import wait_for

ADDRESS = {
    "name": "Ada Lovelace",
    "address1": "12 Analytical Way",
    "city": "London",
    "postal_code": "N1 7AA",
    "country_code": "GB",
}


def pdf_text(data: bytes) -> str:
    doc = pdfium.PdfDocument(data)
    try:
        return "\n".join(page.get_textpage().get_text_range() for page in doc)
    finally:
        doc.close()


def shipped_shipment(c) -> tuple[str, str, str]:
    stock(c, "SKU-L", 3)
    order = submit(c, "lbl-1", line("SKU-L", 3), order_number="#42", shipping_address=ADDRESS)
    (sh,) = c.call("shipments.list", order_id=order["order_id"])["shipments"]
    tracking = c.call("pick.confirm", shipment_id=sh["shipment_id"])["tracking_number"]
    return order["order_id"], sh["shipment_id"], tracking


def test_label_pdf_barcode_decodes_to_the_tracking_number_and_reprints_identically(sim_client):
    c = sim_client
    order_id, sid, tracking = shipped_shipment(c)
    got = c.call("label.get", shipment_id=sid, format="pdf")
    assert (got["tracking"], got["order_id"], got["format"]) == (tracking, order_id, "pdf")
    data = base64.b64decode(got["label"])
    doc = pdfium.PdfDocument(data)
    try:
        (page,) = list(doc)
        assert (round(page.get_width()), round(page.get_height())) == (288, 432)  # 4 x 6 in at 72 pt/in
        image = page.render(scale=4).to_pil()
    finally:
        doc.close()
    codes = zxingcpp.read_barcodes(image)
    assert [(r.format, r.text) for r in codes] == [(zxingcpp.BarcodeFormat.Code128, tracking)]
    text = pdf_text(data)
    for part in ("Ada Lovelace", "12 Analytical Way", "N1 7AA London", "Order #42", sid, tracking):
        assert part in text
    # a reprint is the same label, and confirming the pick again changes nothing
    c.call("pick.confirm", shipment_id=sid)
    assert c.call("label.get", shipment_id=sid, format="pdf")["label"] == got["label"]


def test_label_zpl_fields(sim_client):
    c = sim_client
    _order_id, sid, tracking = shipped_shipment(c)
    zpl = c.call("label.get", shipment_id=sid)["label"]
    assert zpl.startswith("^XA") and zpl.rstrip().endswith("^XZ")
    fields = re.findall(r"\^FO(\d+),(\d+)(\^[^\^]+)*?\^FD([^\^]*)\^FS", zpl)
    texts = [f[-1] for f in fields]
    assert texts[:5] == ["SHIP TO:", "Ada Lovelace", "12 Analytical Way", "N1 7AA London", "GB"]
    assert f"Order #42  Shipment {sid}  Units 3" in texts
    barcode = re.search(r"\^BC[^\^]*\^FD([^\^]*)\^FS", zpl)
    assert barcode is not None and barcode.group(1) == tracking
    assert "^PW812" in zpl and "^LL1218" in zpl  # 4 x 6 in at 203 dpi
    bad = c.request("label.get", shipment_id="S0000099")
    assert bad["error"]["code"] == "unknown_shipment"


def test_pick_list_is_in_location_order(sim):
    d = sim('[locations]\n"SKU-Z" = "A-01"\n"SKU-M" = "B-07"\n')
    with d.client() as c:
        for sku in ("SKU-M", "SKU-Z", "SKU-N"):
            stock(c, sku, 5)
        submit(c, "p1", line("SKU-N", 1), line("SKU-M", 2))
        submit(c, "p2", line("SKU-Z", 4))
        text = c.call("picklist.get")["document"]
        rows = [r.split() for r in text.splitlines()[1:-1]]
        assert [(r[0], r[1], r[2]) for r in rows] == [
            ("A-01", "SKU-Z", "4"),
            ("B-07", "SKU-M", "2"),
            ("-", "SKU-N", "1"),
        ]
        pdf = base64.b64decode(c.call("picklist.get", format="pdf")["document"])
        body = pdf_text(pdf)
        assert body.index("SKU-Z") < body.index("SKU-M") < body.index("SKU-N")


EDI_CONFIG = """
[skus."SKU-P"]
reorder_point = 5
order_up_to = 40
pack_size = 12
source = "supplier:ACME"
[sources.ACME]
name = "ACME Corporation"
email = "orders@acme.example"
edi = true
isa_id = "ACMEEDI"
gs_id = "ACMEGS"
deliver = "file"
[notifications.file]
dir = "DROP"
[notifications.edi]
isa_id = "OURSITE"
gs_id = "OURGS"
usage = "T"
"""


def read_x12(text: str) -> dict:
    """An independent X12 reader: the ISA fixes the separators (element = char 4, sub-element
    = char 105, segment terminator = char 106); returns the segments and checks the envelope."""
    assert text.startswith("ISA") and len(text) >= 106
    element, terminator = text[3], text[105]
    segments = [s.strip() for s in text.split(terminator) if s.strip()]
    rows = [s.split(element) for s in segments]
    isa, gs, *tx, ge, iea = rows
    assert isa[0] == "ISA" and len(isa) == 17 and len(segments[0]) == 105
    assert gs[0] == "GS" and ge[0] == "GE" and iea[0] == "IEA"
    st, se = tx[0], tx[-1]
    assert st[:2] == ["ST", "850"] and se[0] == "SE"
    assert int(se[1]) == len(tx), "SE01 counts the segments from ST to SE"
    assert se[2] == st[2] and ge[2] == gs[6] and iea[2] == isa[13]
    return {"isa": isa, "gs": gs, "tx": {row[0]: row for row in tx}}


def test_purchase_order_documents_x12_csv_pdf_and_delivery(sim):
    d = sim(EDI_CONFIG.replace("DROP", "drop"))
    with d.client() as c:
        submit(c, "po-1", line("SKU-P", 3))
        (po,) = c.call("procurement.list")["requests"]
        qty = po["qty"]
        assert qty == 48  # up to 40 from -3: 43, in packs of 12
        x12 = c.call("procurement.document", request_id=po["request_id"], format="x12_850")
        assert x12["encoding"] == "text"
        doc = read_x12(x12["document"])
        isa, gs, tx = doc["isa"], doc["gs"], doc["tx"]
        assert (isa[5], isa[6].strip(), isa[8].strip(), isa[12], isa[15]) == ("ZZ", "OURSITE", "ACMEEDI", "00401", "T")
        assert (gs[1], gs[2], gs[3], gs[8]) == ("PO", "OURGS", "ACMEGS", "004010")
        assert tx["BEG"][3] == po["request_id"]
        assert tx["PO1"][2:4] == [str(qty), "EA"] and tx["PO1"][6:8] == ["VP", "SKU-P"]
        assert tx["CTT"][1:3] == ["1", str(qty)]
        assert tx["DTM"][2] == po["expected_date"].replace("-", "")

        text = c.call("procurement.document", request_id=po["request_id"], format="csv")["document"]
        (row,) = list(csv.DictReader(io.StringIO(text)))
        assert (row["sku"], int(row["qty"]), row["expected_date"]) == ("SKU-P", qty, po["expected_date"])

        pdf = c.call("procurement.document", request_id=po["request_id"])
        assert pdf["content_type"] == "application/pdf"
        body = pdf_text(base64.b64decode(pdf["document"]))
        assert f"PURCHASE ORDER {po['request_id']}" in body and "SKU-P" in body
        assert f"Total quantity: {qty}" in body

        # the same documents went to the supplier through the outbox (file channel)
        drop = d.workdir / "drop"
        sent = wait_for(
            lambda: [
                n for n in c.call("notifications.list", status="sent")["notifications"] if n["audience"] == "supplier"
            ],
            what="the supplier notice delivered",
        )
        assert [n["request_id"] for n in sent] == [po["request_id"]]
        notice = json.loads((drop / f"{sent[0]['notice_id']}.json").read_text())
        attached = {a["name"]: base64.b64decode(a["base64"]).decode(errors="replace") for a in notice["attachments"]}
        assert set(attached) == {f"{po['request_id']}.pdf", f"{po['request_id']}.csv", f"{po['request_id']}.x12"}
        assert attached[f"{po['request_id']}.x12"] == x12["document"]
        assert notice["to"] == "orders@acme.example"
