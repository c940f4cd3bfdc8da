"""Suppliers' answers to the site's purchase orders as intake channels: an X12 855
acknowledgment through ``backorder import`` and an X12 856 ship notice through the
webhook listener become procurement ops on the PO's lines (not orders), move the dates
of the waiting lines and tell their customers; sent again they change nothing; a notice
for more than was ordered is refused and kept as a dead letter. Survives kill -9."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from intake_support import FIXTURES, generic_headers, http_port, ingest, post, raw

EXTRA = """
[daemon]
clock = "simulated"
clock_start = "2024-03-01T00:00:00Z"

[procurement]
consolidate_hours = 4

# lines are promised at order time; with no handling time a line's ship-by date (what a
# delay notice tells) is the date its supply is expected
[promises]
handling_days = 0

[sources.acme]
name = "Acme Supply"

[notifications.routes]
web = "file"
[notifications.file]
dir = "{drop}"

[channels.x12_855]
secret_env = "BO_TEST_GENERIC_SECRET"
[channels.x12_856]
secret_env = "BO_TEST_GENERIC_SECRET"

[skus."SKU-A"]
reorder_point = 0
order_up_to = 10
source = "supplier:acme"
[skus."SKU-B"]
reorder_point = 0
order_up_to = 6
source = "supplier:acme"
"""


def import_file(d, path, channel: str) -> dict:
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
    return json.loads(out.stdout.strip().splitlines()[-1])


def requests(c) -> dict[str, dict]:
    return {r["request_id"]: r for r in c.call("procurement.list", status="all")["requests"]}


def delays(c, order_id: str) -> list[tuple[str, str]]:
    records = c.call("audit.query", order_id=order_id, limit=1000)["records"]
    return [
        (li["old_date"], li["new_date"])
        for r in records
        if r["type"] == "notice_queued" and r["event"]["kind"] == "delay"
        for li in r["event"]["data"]["lines"]
    ]


def expected(c, order_id: str) -> str:
    return c.call("order.get", order_id=order_id)["lines"][0]["expected_date"]


def test_855_and_856_move_the_po_lines_and_the_promises_that_depend_on_them(intake_daemon, tmp_path):
    d = intake_daemon(EXTRA.format(drop=tmp_path / "drop"))
    with d.client() as c:
        reqs = requests(c)
        assert [(r["sku"], r["po_id"]) for r in reqs.values()] == [("SKU-A", "PO-000001"), ("SKU-B", "PO-000001")]
        o1 = c.call(
            "order.submit",
            channel="web",
            external_id="w1",
            email="w1@example.com",
            lines=[{"sku": "SKU-A", "qty": 3, "unit_price": "1.00"}],
        )
        assert expected(c, o1["order_id"]) == "2024-03-08"

    # the 855: SKU-A confirmed for 8 units on 03-12, SKU-B rejected
    summary = import_file(d, FIXTURES / "x12_855" / "acknowledgment.edi", "x12_855")
    assert (summary["orders"], summary["outcomes"]) == (2, {"updated": 2}), summary
    with d.client() as c:
        reqs = requests(c)
        a, b = reqs["PO-000001"], reqs["PO-000002"]
        assert (a["qty"], a["acknowledged"], a["expected_date"]) == (8, 8, "2024-03-12")
        assert (b["outcome"], b["close_reason"]) == ("cancelled", "rejected by the supplier (X12 855)")
        # SKU-B's supply will not come: re-planned at once, on a new PO (one line per SKU a PO)
        (b2,) = [r for r in reqs.values() if r["sku"] == "SKU-B" and r["status"] == "open"]
        assert (b2["qty"], b2["po_id"]) == (6, b2["request_id"])
        assert expected(c, o1["order_id"]) == "2024-03-12"
        assert delays(c, o1["order_id"]) == [("2024-03-08", "2024-03-12")]
    again = import_file(d, FIXTURES / "x12_855" / "acknowledgment.edi", "x12_855")
    assert again["outcomes"] == {"duplicate": 2}, again

    # the 856 through the webhook listener: 3 + 2 units of SKU-A on their way, due 03-14
    body = raw("x12_856/ship_notice.edi")
    with d.client() as c:
        status, result, _ = post(http_port(c), "x12_856", body, generic_headers(body))
        assert status == 200, result
        ((item),) = result["orders"]
        assert (item["outcome"], item["request_id"]) == ("updated", "PO-000001")
        a = requests(c)["PO-000001"]
        assert (a["in_transit"], a["expected_date"], a["ship_notices"]) == (
            5,
            "2024-03-14",
            [{"reference": "ASN-5001", "qty": 5}],
        )
        assert delays(c, o1["order_id"])[-1] == ("2024-03-12", "2024-03-14")
        status, result, _ = post(http_port(c), "x12_856", body, generic_headers(body))
        assert result["orders"][0]["outcome"] == "duplicate"

        # a notice for more than was ordered (5 announced + 9 > 8), and one for a PO we never sent
        before = requests(c)
        over = body.replace(b"ASN-5001", b"ASN-5002").replace(b"SN1**2*EA", b"SN1**9*EA")
        res = ingest(c, "x12_856", over)
        assert (res["outcome"], res["code"]) == ("rejected", "over_ordered"), res
        unknown = body.replace(b"ASN-5001", b"ASN-5003").replace(b"PRF*PO-000001", b"PRF*PO-424242")
        res = ingest(c, "x12_856", unknown)
        assert (res["outcome"], res["code"]) == ("rejected", "unknown_request"), res
        assert requests(c) == before
        letters = c.call("deadletters.list")["dead_letters"]
        assert sorted((x["channel"], x["cause"]) for x in letters) == [
            ("x12_856", "over_ordered"),
            ("x12_856", "unknown_request"),
        ]
        state = requests(c)
    d.kill9()
    d.start()
    with d.client() as c:
        assert requests(c) == state
        assert expected(c, o1["order_id"]) == "2024-03-14"


def _refused(parse, body: bytes) -> str:
    from backorder.errors import Rejected

    try:
        parse(body, {}, None)
    except Rejected as exc:
        return exc.code
    raise AssertionError("not refused")


def test_malformed_supplier_answers_are_refused_with_their_code():
    from backorder.errors import Rejected
    from backorder.intake.x12_supply import parse_855, parse_856

    ack, asn = raw("x12_855/acknowledgment.edi"), raw("x12_856/ship_notice.edi")
    assert _refused(parse_855, ack.replace(b"BAK*00*AC*PO-000001*20240301", b"BAK*00*AC**20240301")) == (
        "malformed_body"
    )
    assert _refused(parse_855, ack.replace(b"ACK*IQ*8*EA*017*20240312", b"ACK*IQ*8*EA*017*2024-3-12")) == (
        "invalid_date"
    )
    assert _refused(parse_855, ack.replace(b"VP*SKU-A", b"XX*SKU-A")) == "missing_sku"
    assert _refused(parse_856, asn.replace(b"SN1**3*EA", b"SN1**0*EA")) == "invalid_quantity"
    assert _refused(parse_856, asn.replace(b"SN1**3*EA", b"SN1**\xc2\xb2*EA")) == "invalid_quantity"
    assert _refused(parse_856, asn.replace(b"SE*16*0001", b"SE*15*0001")) == "malformed_body"
    no_order_level = asn.replace(b"PRF*PO-000001~\n", b"").replace(b"SE*16*0001", b"SE*15*0001")
    with pytest.raises(Rejected, match="under no order level"):
        parse_856(no_order_level, {}, None)
    # an 850 sent to the 855 channel holds no acknowledgment: ignored, not an error
    (ignored,) = parse_855(raw("x12_850/two_pos.edi"), {}, None)
    assert (ignored.kind, ignored.code) == ("ignored", "unsupported_topic")
