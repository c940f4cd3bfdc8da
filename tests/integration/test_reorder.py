"""Reorder (one request per shortage, MOQ / pack size, transfers, strict SKUs) and the
expected dates that waiting lines get from inbound supply. The simulated clock starts at
2024-03-01, so with the default lead time of 7 days a new PO is due 2024-03-08."""

from __future__ import annotations

import pytest
from bo_support import fingerprint, line, submit

from backorder.client import CallError


def _open(c, sku: str | None = None) -> list[dict]:
    return c.call("procurement.list", **({"sku": sku} if sku else {}))["requests"]


# --- expected dates ---------------------------------------------------------------


def test_lines_get_the_date_of_the_po_that_covers_them(sim_client):
    c = sim_client
    a = submit(c, "A", line("E", 3))["order_id"]  # PO-1: 3 units, lead 7 d
    c.call("sku.configure", sku="E", lead_time_days=14)
    b = submit(c, "B", line("E", 2))["order_id"]  # PO-2: 2 units, lead 14 d
    po1, po2 = _open(c, "E")
    assert (po1["qty"], po1["expected_date"]) == (3, "2024-03-08")
    assert (po2["qty"], po2["expected_date"]) == (2, "2024-03-15")
    assert c.call("order.get", order_id=a)["lines"][0]["expected_date"] == "2024-03-08"
    assert c.call("order.get", order_id=b)["lines"][0]["expected_date"] == "2024-03-15"
    waiting = c.call("sku.get", sku="E")["waiting"]
    assert [(w["order_id"], w["expected_date"]) for w in waiting] == [(a, "2024-03-08"), (b, "2024-03-15")]


def test_moving_a_po_moves_the_lines_it_covers(sim_client):
    c = sim_client
    a = submit(c, "A", line("E", 3))["order_id"]
    c.call("sku.configure", sku="E", lead_time_days=14)
    b = submit(c, "B", line("E", 2))["order_id"]
    po1, po2 = _open(c, "E")

    # PO-1 slips past PO-2: the head line is now served by PO-2 (2 units) and PO-1 (1)
    res = c.call("procurement.confirm", request_id=po1["request_id"], expected_date="2024-03-20")
    assert res == {"request_id": po1["request_id"], "expected_date": "2024-03-20"}
    assert c.call("order.get", order_id=a)["lines"][0]["expected_date"] == "2024-03-20"
    assert c.call("order.get", order_id=b)["lines"][0]["expected_date"] == "2024-03-20"
    inbound = c.call("sku.get", sku="E")["inbound_requests"]
    assert [(r["request_id"], r["expected_date"]) for r in inbound] == [
        (po2["request_id"], "2024-03-15"),
        (po1["request_id"], "2024-03-20"),
    ]

    # PO-1 comes early: only the line it covers moves
    c.call("procurement.confirm", request_id=po1["request_id"], expected_date="2024-03-05")
    assert c.call("order.get", order_id=a)["lines"][0]["expected_date"] == "2024-03-05"
    assert c.call("order.get", order_id=b)["lines"][0]["expected_date"] == "2024-03-15"
    assert [r["expected_date"] for r in _open(c, "E")] == ["2024-03-05", "2024-03-15"]


def test_moved_dates_survive_a_restart(sim):
    d = sim()
    with d.client() as c:
        oid = submit(c, "A", line("E", 1))["order_id"]
        (po,) = _open(c)
        c.call("procurement.confirm", request_id=po["request_id"], expected_date="2024-04-02")
    d.restart()
    with d.client() as c:
        assert c.call("order.get", order_id=oid)["lines"][0]["expected_date"] == "2024-04-02"


def test_confirm_errors_change_nothing(sim_client):
    c = sim_client
    submit(c, "A", line("E", 1))
    (po,) = _open(c)
    before = fingerprint(c, "E")
    for bad, code in (
        ("2024-02-30", "invalid_date"),
        ("03/15/2024", "invalid_date"),
        ("2024-3-5", "invalid_date"),
        ("soon", "invalid_date"),
    ):
        with pytest.raises(CallError) as exc:
            c.call("procurement.confirm", request_id=po["request_id"], expected_date=bad)
        assert exc.value.code == code, bad
    with pytest.raises(CallError) as exc:
        c.call("procurement.confirm", request_id="PO-999999", expected_date="2024-03-09")
    assert exc.value.code == "unknown_request"
    assert fingerprint(c, "E") == before

    c.call("stock.receive", sku="E", qty=1, reference=po["request_id"])
    with pytest.raises(CallError) as exc:
        c.call("procurement.confirm", request_id=po["request_id"], expected_date="2024-03-09")
    assert exc.value.code == "request_closed"


# --- reorder ----------------------------------------------------------------------


def test_one_request_per_shortage(sim_client):
    c = sim_client
    res = c.call("sku.configure", sku="R", reorder_point=2, order_up_to=10)
    assert res["policy"]["order_up_to"] == 10
    (po,) = _open(c, "R")  # position 0 <= 2: one PO for 10
    assert po["qty"] == 10

    for n, qty in enumerate((3, 4)):  # position 7, then 3: still above the reorder point
        submit(c, f"R{n}", line("R", qty))
        assert [r["request_id"] for r in _open(c, "R")] == [po["request_id"]]
    c.call("sku.configure", sku="R", reorder_point=2, order_up_to=10)  # same policy again
    assert len(_open(c, "R")) == 1

    submit(c, "R9", line("R", 1))  # position 2: the position fell again
    first, second = _open(c, "R")
    assert first["request_id"] == po["request_id"]
    assert second["qty"] == 8  # back up to 10, netting the 10 already inbound
    view = c.call("sku.get", sku="R")
    assert (view["inbound"], view["backordered"], view["position"]) == (18, 8, 10)


def test_backorders_without_a_policy_raise_one_request_each(sim_client):
    c = sim_client
    submit(c, "A", line("S", 2))
    submit(c, "B", line("S", 3))
    assert [r["qty"] for r in _open(c, "S")] == [2, 3]
    # a receipt without reference counts against the oldest request: it raises nothing,
    # and the unit is not counted twice (as stock and as still inbound)
    c.call("stock.receive", sku="S", qty=1)
    assert [(r["qty"], r["received"]) for r in _open(c, "S")] == [(2, 1), (3, 0)]
    view = c.call("sku.get", sku="S")
    assert (view["inbound"], view["position"]) == (4, 0)


def test_moq_and_pack_size(sim_client):
    c = sim_client
    c.call("sku.configure", sku="M", reorder_point=0, order_up_to=5, moq=30, pack_size=12)
    (po,) = _open(c, "M")
    assert po["qty"] == 36  # 5 -> MOQ 30 -> 3 packs of 12
    c.call("sku.configure", sku="PK", pack_size=10)
    submit(c, "PK1", line("PK", 3))
    (pk,) = _open(c, "PK")
    assert pk["qty"] == 10
    # the 7 spare units inbound cover the next orders: no second request
    submit(c, "PK2", line("PK", 7))
    assert len(_open(c, "PK")) == 1


def test_transfer_source_raises_a_transfer_request(sim_client):
    c = sim_client
    c.call("sku.configure", sku="TR", source="transfer:site-2", lead_time_days=2)
    submit(c, "T1", line("TR", 4))
    (tr,) = _open(c, "TR")
    assert tr["request_id"].startswith("TR-")
    assert (tr["kind"], tr["source"], tr["qty"], tr["expected_date"]) == ("transfer", "site-2", 4, "2024-03-03")


def test_invalid_policy_is_refused(sim_client):
    c = sim_client
    c.call("sku.configure", sku="V", reorder_point=1, order_up_to=3)
    before = fingerprint(c, "V")
    for fields in ({"reorder_point": 9}, {"source": "carrier-pigeon"}):
        with pytest.raises(CallError) as exc:
            c.call("sku.configure", sku="V", **fields)
        assert exc.value.code == "invalid_policy"
    for fields in ({"moq": 0}, {"pack_size": -1}, {"lead_time_days": "soon"}):
        with pytest.raises(CallError) as exc:
            c.call("sku.configure", sku="V", **fields)
        assert exc.value.code == "invalid_request", fields
    assert fingerprint(c, "V") == before


def test_policy_from_the_config_file(sim):
    with sim("[skus.CFG]\nreorder_point = 4\norder_up_to = 12\npack_size = 5\n").client() as c:
        view = c.call("sku.get", sku="CFG")
        assert view["known"] is True
        assert (view["policy"]["reorder_point"], view["policy"]["order_up_to"]) == (4, 12)
        # position 0 <= 4 at start-up: one PO up to 12, rounded to 3 packs of 5
        (po,) = _open(c, "CFG")
        assert po["qty"] == 15
        c.call("stock.receive", sku="CFG", qty=15, reference=po["request_id"])
        submit(c, "C1", line("CFG", 11))  # position 4: reorder 8 -> 10 (2 packs)
        (po,) = _open(c, "CFG")
        assert po["qty"] == 10


# --- unknown SKUs -------------------------------------------------------------------


def test_strict_skus_rejects_unknown_skus(sim):
    with sim("strict_skus = true\n[skus.KNOWN]\norder_up_to = 0\n").client() as c:
        before = fingerprint(c)
        with pytest.raises(CallError) as exc:
            submit(c, "S1", line("KNOWN", 1), line("NEW", 1))
        assert exc.value.code == "unknown_sku"
        assert "NEW" in exc.value.message
        assert fingerprint(c) == before
        with pytest.raises(CallError):
            c.call("order.get", channel="web", external_id="S1")

        assert submit(c, "S2", line("KNOWN", 1))["status"] == "backordered"
        c.call("sku.configure", sku="NEW")  # configuring makes a SKU known
        assert submit(c, "S1", line("KNOWN", 1), line("NEW", 1))["duplicate"] is False
        # a line that ships nothing needs no known SKU
        assert submit(c, "S3", line("GIFT", 1, requires_shipping=False))["status"] == "shipped"


def test_without_strict_skus_an_unseen_sku_uses_the_default_policy(sim):
    with sim("[default_policy]\nlead_time_days = 3\n").client() as c:
        submit(c, "D1", line("FRESH", 1))
        view = c.call("sku.get", sku="FRESH")
        assert view["known"] is False
        assert view["policy"]["lead_time_days"] == 3
        assert _open(c, "FRESH")[0]["expected_date"] == "2024-03-04"


def test_receipt_or_count_for_an_unknown_sku_is_refused(sim_client):
    c = sim_client
    before = fingerprint(c)
    for op, fields in (("stock.receive", {"qty": 3}), ("stock.adjust", {"delta": 3, "reason": "x"}), ("sku.get", {})):
        with pytest.raises(CallError) as exc:
            c.call(op, sku="GHOST", **fields)
        assert exc.value.code == "unknown_sku", op
    assert fingerprint(c) == before
    assert c.call("skus.list")["skus"] == []


def test_a_receipt_counts_only_against_an_open_request_of_its_own_sku(sim_client):
    c = sim_client
    submit(c, "A", line("RA", 1))
    submit(c, "B", line("RB", 1))
    pa, pb = _open(c)
    wrong = c.call("stock.receive", sku="RA", qty=1, reference=pb["request_id"])
    assert wrong["request_id"] is None  # PO of another SKU: not counted against it
    assert [r["request_id"] for r in _open(c)] == [pa["request_id"], pb["request_id"]]
    assert _open(c, "RB")[0]["received"] == 0

    right = c.call("stock.receive", sku="RA", qty=1, reference=pa["request_id"])
    assert right["request_id"] == pa["request_id"]
    late = c.call("stock.receive", sku="RA", qty=1, reference=pa["request_id"])
    # already closed: kept, counted on it and flagged as over-delivered, never lost
    assert (late["request_id"], late["over_delivered"]) == (pa["request_id"], 1)
    (closed,) = c.call("procurement.list", status="closed")["requests"]
    assert (closed["request_id"], closed["received"], closed["over_delivered"]) == (pa["request_id"], 2, 1)
    assert c.call("sku.get", sku="RA")["on_hand"] == 3


def _configured(c, sku: str) -> list[dict]:
    return [r for r in c.call("audit.query", sku=sku)["records"] if r["type"] == "sku_configured"]


def test_config_file_policies_are_journaled_once_and_the_journal_wins(sim):
    from bo_support import SIM_CONFIG

    tables = "[skus.CFG]\nreorder_point = 4\norder_up_to = 12\npack_size = 5\n[skus.QUIET]\n"
    d = sim(tables)
    with d.client() as c:
        # the policy that raised the start-up PO is in the audit trail, before the PO
        records = c.call("audit.query", sku="CFG")["records"]
        assert [(r["type"], r["cause"], r["correlation_id"]) for r in records] == [
            ("sku_configured", "config", "startup"),
            ("request_raised", "config", "startup"),
        ]
        policy = records[0]["event"]["policy"]
        assert (policy["reorder_point"], policy["order_up_to"], policy["pack_size"]) == (4, 12, 5)
        assert records[1]["event"]["qty"] == 15
        assert [r["cause"] for r in _configured(c, "QUIET")] == ["config"]
        c.call("sku.configure", sku="CFG", order_up_to=30)
        seq = c.call("health")["journal"]["last_seq"]
    d.restart()
    with d.client() as c:
        assert c.call("health")["journal"]["last_seq"] == seq  # nothing journaled again
        assert [r["cause"] for r in _configured(c, "CFG")] == ["config", "sku.configure"]
        assert c.call("sku.get", sku="CFG")["policy"]["order_up_to"] == 30
    # a new table is journaled at the next start; an edited one does not override the journal
    d.config.write_text(
        tables.replace("order_up_to = 12", "order_up_to = 99")
        + "[skus.LATE]\nreorder_point = 1\norder_up_to = 2\n"
        + "\n"
        + SIM_CONFIG
    )
    d.restart()
    with d.client() as c:
        assert c.call("sku.get", sku="CFG")["policy"]["order_up_to"] == 30
        assert len(_configured(c, "CFG")) == 2
        late = c.call("audit.query", sku="LATE")["records"]
        assert [(r["type"], r["cause"]) for r in late] == [("sku_configured", "config"), ("request_raised", "config")]
        assert len(_open(c, "CFG")) == 1


def test_a_changed_default_policy_applies_after_a_restart_from_a_snapshot_as_after_a_replay(sim):
    """SKUs with no journaled policy follow the file's ``[default_policy]`` after a restart
    (docs/operations.md, reload): the same whether the model comes from the shutdown
    snapshot or from a full replay. The snapshot used to bring back the old default."""
    d = sim("[default_policy]\nlead_time_days = 7\n")
    with d.client() as c:
        submit(c, "loose-1", line("LOOSE", 1))
        assert c.call("sku.get", sku="LOOSE")["policy"]["lead_time_days"] == 7
    d.stop()  # a clean stop writes a snapshot
    d.config.write_text(d.config.read_text().replace("lead_time_days = 7", "lead_time_days = 21"))
    d.start()
    with d.client() as c:
        assert c.call("sku.get", sku="LOOSE")["policy"]["lead_time_days"] == 21
    d.kill9()
    d.start()
    with d.client() as c:
        assert c.call("sku.get", sku="LOOSE")["policy"]["lead_time_days"] == 21
