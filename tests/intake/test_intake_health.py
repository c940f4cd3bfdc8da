"""Source health: rates per channel and account, the "silent" warning, and the intake
events on the subscribe stream."""

from __future__ import annotations

from backorder.launcher import wait_until

CSV = "order_id,currency,email,sku,qty,unit_price,ship_address1,ship_country\n{},USD,a@example.com,{},1,1.00,1 St,US\n"


def next_event(c, kind: str, timeout: float = 10.0) -> dict:
    def take() -> dict | None:
        for e in c.events:
            if e["event"]["type"] == kind:
                c.events.remove(e)
                return e
        msg = c.read_line()  # blocks until the daemon sends something: no pause needed
        if "event" in msg and "ok" not in msg:
            c.events.append(msg)
        return None

    return wait_until(take, timeout, interval=0, message=f"no {kind} event")


def test_outcome_events_rates_and_a_silent_source(make_daemon):
    d = make_daemon("[intake]\nsilent_after_s = 1.0\n")
    with d.client() as sub, d.client() as c:
        assert sub.call("subscribe", topics=["intake"])["topics"] == ["intake"]
        c.call("order.ingest", channel="csv", account="shop-a", body=CSV.format("A1", "SKU-1"))
        c.call("order.ingest", channel="csv", account="shop-a", body=CSV.format("A2", ""))
        c.call("order.ingest", channel="csv", account="shop-b", body=CSV.format("B1", "SKU-1"))
        first = next_event(sub, "intake_outcome")["event"]
        assert (first["channel"], first["account"], first["outcome"]) == ("csv", "shop-a", "accepted")
        assert first["orders"][0][:2] == ["A1", "accepted"]
        second = next_event(sub, "intake_outcome")["event"]
        assert (second["outcome"], second["code"]) == ("rejected", "missing_sku")
        assert next_event(sub, "dead_lettered")["event"]["cause"] == "missing_sku"
        health = {s["account"]: s for s in c.call("sources.health")["sources"]}
        a = health["shop-a"]
        assert (a["deliveries"], a["accepted_rate"], a["rejected_rate"], a["rejections"]) == (
            2,
            0.5,
            0.5,
            {"missing_sku": 1},
        )
        assert a["silent"] is False and health["shop-b"]["deliveries"] == 1
        silent = next_event(sub, "source_silent", timeout=15)["event"]
        assert (silent["channel"], silent["account"]) == ("csv", "shop-a")  # shop-b delivered only once
        health = {s["account"]: s for s in c.call("sources.health")["sources"]}
        assert health["shop-a"]["silent"] is True and health["shop-b"]["silent"] is False
        c.call("order.ingest", channel="csv", account="shop-a", body=CSV.format("A3", "SKU-1"))
        assert {s["account"]: s for s in c.call("sources.health")["sources"]}["shop-a"]["silent"] is False
        assert c.call("stats")["intake"]["rejections"] == {"csv/shop-a/missing_sku": 1}
