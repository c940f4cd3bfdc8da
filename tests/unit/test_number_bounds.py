"""Bounds on every number: the schema's ceiling on the wire and in the config file, the
site's [limits] in the config check, a rank that is always finite, and a dead letter's
impact that is always finite."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from backorder import protocol as p
from backorder.actors.model import MAX_RANK, Line, World
from backorder.config.settings import ConfigError, Settings, Weights, parse_settings
from backorder.errors import Rejected
from backorder.intake import governance
from backorder.intake.draft import Draft, DraftLine
from backorder.numbers import MAX_INT


def code_of(line: str) -> str:
    with pytest.raises(Rejected) as info:
        p.decode_request(line.encode())
    return info.value.code


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ('{"op":"stock.receive","sku":"A","qty":%d}' % (MAX_INT + 1), "invalid_quantity"),
        ('{"op":"stock.adjust","sku":"A","delta":-%d}' % (MAX_INT + 1), "invalid_quantity"),
        ('{"op":"stock.adjust","sku":"A","counted":1%s}' % ("0" * 400), "invalid_quantity"),
        (
            '{"op":"order.submit","channel":"w","external_id":"e","lines":[{"sku":"A","qty":%d}]}' % 10**21,
            "invalid_quantity",
        ),
        ('{"op":"sku.configure","sku":"A","moq":%d}' % (MAX_INT + 1), "invalid_request"),
        ('{"op":"sku.configure","sku":"A","backorder_threshold":1%s}' % ("0" * 400), "invalid_request"),
        ('{"op":"policy.set","mode":"priority","weights":{"age":1000000.5}}', "invalid_request"),
        ('{"op":"deadletters.retry","letter_id":%d}' % 2**64, "invalid_request"),
    ],
)
def test_the_schema_refuses_numbers_over_its_ceiling(line, code):
    assert code_of(line) == code


def test_the_ceiling_itself_is_accepted():
    req = p.decode_request(('{"op":"stock.receive","sku":"A","qty":%d}' % MAX_INT).encode())
    assert req.qty == MAX_INT
    req = p.decode_request(b'{"op":"policy.set","mode":"priority","weights":{"age":1000000}}')
    assert req.weights.age == 1e6


@pytest.mark.parametrize(
    ("toml", "says"),
    [
        ("[skus.A]\norder_up_to = 2000000\n", "skus.A: order_up_to 2000000 is over the site's limit"),
        ("[limits]\nmax_quantity = 10\n[default_policy]\norder_up_to = 11\n", "default_policy: order_up_to 11"),
        ("[allocation.weights]\nvalue = 1e308\n", "allocation.weights.value"),
        ("[skus.A]\nreorder_point = 9007199254740992\norder_up_to = 9007199254740992\n", "reorder_point"),
        ("[limits]\nmax_money = 1e16\n", "limits.max_money"),
    ],
)
def test_the_config_file_is_bounded_too(toml, says):
    with pytest.raises(ConfigError, match=says.replace(".", r"\.").replace("(", r"\(")):
        parse_settings(toml)


def test_a_policy_at_the_site_limit_is_accepted():
    settings = parse_settings("[limits]\nmax_quantity = 10\n[skus.A]\nreorder_point = 10\norder_up_to = 10\n")
    assert settings.skus["A"].order_up_to == 10


def line(price: str, qty: int = 1, t_order: float = 0.0) -> Line:
    return Line("O1", 1, "A", qty, Decimal(price), True, True, t_order)


@pytest.mark.parametrize("price", ["1E+400", "Infinity", "NaN", "-Infinity"])
def test_the_rank_is_finite_whatever_reaches_it(price):
    world = World(Settings())
    world.mode = "priority"
    world.weights = Weights(rush=1e6, value=1e6, age=1e6)
    ln = line(price)
    for x in (world.static_score(ln), world.rank(ln, 1.7e9)):
        assert math.isfinite(x) and abs(x) <= MAX_RANK


def test_the_rank_at_every_ceiling_is_exact_not_clamped():
    world = World(Settings())
    world.mode = "priority"
    world.weights = Weights(rush=1e6, value=1e6, age=1e6)
    ln = line("10000000", qty=1_000_000, t_order=1.7e9)
    assert world.rank(ln, 1.7e9) == round(1e6 + 1e6 * 1e13, 3)


@pytest.mark.parametrize("price", ["1e400", "1E+999999999", "-1e400"])
def test_a_dead_letters_impact_is_finite(price):
    draft = Draft(lines=[DraftLine(sku="A", qty="1E+999999999", unit_price=Decimal(price))], rush=True)
    impact = governance.impact(draft, None)
    assert math.isfinite(impact) and abs(impact) <= governance.MAX_IMPACT + governance.RUSH_IMPACT
