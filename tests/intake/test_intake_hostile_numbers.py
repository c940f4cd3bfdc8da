"""Hostile numbers in a source's payload: the delivery is refused or dead-lettered with
a finite impact, and the journal replays after a ``kill -9`` (no event is written that replay would refuse)."""

from __future__ import annotations

import json

import pytest
from intake_support import encode, ingest, raw, shopify_headers

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("price", ["1e400", "1E+999999999", "-1e400"])
def test_price_beyond_any_float_is_dead_lettered_and_the_journal_replays(intake_daemon, price):
    d = intake_daemon()
    doc = json.loads(raw("shopify/orders_create.json"))
    for item in doc["line_items"]:
        item["price"] = price
    body = encode(doc)
    with d.client() as c:
        out = ingest(c, "shopify", body, shopify_headers(body))
        assert out["outcome"] == "rejected", out
        letters = c.call("deadletters.list")["dead_letters"]
        assert len(letters) == 1
        impact = letters[0]["impact"]
        assert isinstance(impact, float) and abs(impact) <= 1e15 + 1000
    d.kill9()
    d.start()  # no snapshot: the whole journal, the dead letter included, is replayed
    with d.client() as c:
        assert [x["impact"] for x in c.call("deadletters.list")["dead_letters"]] == [impact]
