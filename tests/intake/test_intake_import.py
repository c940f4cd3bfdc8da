"""``backorder import``: batch files through the governed flow, a summary of outcomes."""

from __future__ import annotations

import json
import subprocess
import sys

from intake_support import raw

from backorder.intake.importer import split


def run_import(d, path, channel: str) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "backorder",
            "import",
            str(path),
            "--channel",
            channel,
            "--socket",
            str(d.socket),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "accepted" in out.stdout  # the summary table
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_csv_and_x12_files_import_with_a_summary_and_reimport_as_duplicates(make_daemon, tmp_path):
    d = make_daemon("")
    rows = ["order_id,currency,email,sku,qty,unit_price,ship_address1,ship_country"]
    rows += [f'BULK-{n},USD,b{n}@example.com,SKU-{n % 7},{1 + n % 3},2.50,"{n} Long Rd, Apt 2",US' for n in range(300)]
    rows += [
        'BULK-0,USD,b0@example.com,SKU-9,1,2.50,"0 Long Rd, Apt 2",US',  # a 2nd line of BULK-0
        "BAD-1,USD,bad@example.com,SKU-1,-2,2.50,1 Main St,US",
    ]
    f = tmp_path / "orders.csv"
    f.write_text("\n".join(rows) + "\n", encoding="utf-8")
    s = run_import(d, f, "csv")
    assert (s["deliveries"], s["orders"]) == (301, 301)
    assert s["outcomes"] == {"accepted": 300, "rejected": 1} and s["codes"] == {"invalid_quantity": 1}
    assert len(s["dead_letters"]) == 1
    again = run_import(d, f, "csv")
    assert again["outcomes"] == {"duplicate": 300, "rejected": 1}
    with d.client() as c:
        assert c.call("stats")["counts"]["orders"] == 300
        assert len(c.call("order.get", channel="csv", external_id="BULK-0")["lines"]) == 2
    edi = tmp_path / "pos.edi"
    edi.write_bytes(raw("x12_850/two_pos.edi") + b"\n" + raw("x12_850/two_pos.edi").replace(b"PO-7788", b"PO-9988"))
    s = run_import(d, edi, "x12_850")
    assert (s["deliveries"], s["outcomes"]) == (2, {"accepted": 4})


def test_split_keeps_quoted_line_breaks_in_one_order():
    data = b'order_id,sku,qty\nA,"X\nY",1\nB,Z,2\nA,W,1\n'
    parts = split("csv", data)
    assert parts == [b'order_id,sku,qty\nA,"X\nY",1\nA,W,1\n', b"order_id,sku,qty\nB,Z,2\n"]


def test_a_delivery_the_daemon_refuses_outright_stops_the_import_with_its_code(make_daemon, tmp_path):
    """Not an order's outcome but an error reply (here: the channel is disabled): the
    importer raises, the command prints ``backorder import: <code>: <message>`` and exits 1."""
    d = make_daemon("[channels.csv]\nenabled = false\n")
    f = tmp_path / "orders.csv"
    f.write_text("order_id,currency,sku,qty\nOFF-1,USD,SKU-1,1\n", encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "backorder", "import", str(f), "--channel", "csv", "--socket", str(d.socket)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1
    assert (
        out.stderr.strip().splitlines()[-1]
        == "backorder import: unknown_channel: channel 'csv' is disabled in the configuration"
    )
    with d.client() as c:
        assert c.call("stats")["counts"]["orders"] == 0
