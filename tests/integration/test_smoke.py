def test_order_backordered_then_filled_and_shipped(client):
    res = client.call(
        "order.submit", channel="web", external_id="A-1", lines=[{"sku": "SKU1", "qty": 2, "unit_price": "5.00"}]
    )
    assert res["status"] == "backordered"
    assert res["lines"][0]["backordered"] == 2
    procurement = client.call("procurement.list")["requests"]
    assert [(r["sku"], r["qty"]) for r in procurement] == [("SKU1", 2)]
    got = client.call("stock.receive", sku="SKU1", qty=2, reference=procurement[0]["request_id"])
    assert got["allocations"] == [{"order_id": res["order_id"], "line_no": 1, "qty": 2}]
    shipments = client.call("shipments.list", order_id=res["order_id"])["shipments"]
    assert len(shipments) == 1
    shipped = client.call("pick.confirm", shipment_id=shipments[0]["shipment_id"])
    assert shipped["order_status"] == "shipped"
    again = client.call("pick.confirm", shipment_id=shipments[0]["shipment_id"])
    assert again["tracking_number"] == shipped["tracking_number"]
    assert client.call("sku.get", sku="SKU1")["on_hand"] == 0
