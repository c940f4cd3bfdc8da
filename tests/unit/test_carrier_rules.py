"""Rate shopping and carrier routing: the pure decisions behind a remote carrier's label."""

from __future__ import annotations

import decimal

from backorder.actors.carrier import CARRIERS, Rate, choose_rate, route
from backorder.config.settings import parse_settings


def rate(rid: str, amount: str, days: int | None) -> Rate:
    return Rate(rate_id=rid, carrier="X", service=rid, amount=decimal.Decimal(amount), days=days)


RATES = [rate("ground", "5.10", 5), rate("priority", "8.40", 2), rate("nda", "31.00", 1), rate("media", "4.99", None)]


def test_rush_takes_the_fastest_and_the_cheapest_of_equally_fast():
    assert choose_rate(RATES, rush=True).rate_id == "nda"
    twins = [rate("b", "9.00", 1), rate("a", "12.00", 1), *RATES[:2]]
    assert choose_rate(twins, rush=True).rate_id == "b"


def test_standard_takes_the_cheapest_within_the_bound_and_a_rate_without_days_is_slowest():
    assert choose_rate(RATES, rush=False).rate_id == "media"
    assert choose_rate(RATES, rush=False, max_days=5).rate_id == "ground"
    assert choose_rate(RATES, rush=False, max_days=3).rate_id == "priority"
    # nothing within the bound: the cheapest of all rather than no label
    assert choose_rate(RATES, rush=False, max_days=0).rate_id == "media"
    assert choose_rate([rate("slow", "3", 9)], rush=False, max_days=1).rate_id == "slow"


def test_no_rate_is_no_choice_and_ties_end_on_the_rate_id():
    assert choose_rate([], rush=True) is None
    assert choose_rate([rate("z", "5", 2), rate("y", "5", 2)], rush=False).rate_id == "y"


def test_routing_by_channel_then_service_level_then_default():
    f = parse_settings(
        '[fulfillment]\ncarrier = "easypost"\ncarrier_by_channel = { pos = "local", amazon = "ups" }\n'
        'carrier_by_service = { rush = "ups" }\n'
    ).fulfillment
    assert route(f, "pos", rush=True) == "local"
    assert route(f, "amazon", rush=False) == "ups"
    assert route(f, "web", rush=True) == "ups"
    assert route(f, "web", rush=False) == "easypost"
    assert route(parse_settings("").fulfillment, "web", rush=True) == "local"


def test_every_routable_carrier_exists_and_only_local_labels_in_process():
    assert {name: CARRIERS[name]().remote for name in CARRIERS} == {"local": False, "easypost": True, "ups": True}
