"""The lab's site generator: seeded, reproducible, and per SKU / per purchase order, so
every policy sees the same demand and supplier and a SKU's demand does not depend on
which other SKUs exist."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from backorder.lab.generator import DAY, PATTERNS, ScenarioSpec, Site, deliveries, demand, sku_spec, sku_specs

SPEC = ScenarioSpec(skus=60, days=60, warmup_days=14, seed=3)


def lines_of(site: Site) -> dict[str, list[tuple[float, int]]]:
    out: dict[str, list[tuple[float, int]]] = {}
    for o in site.orders:
        for li in o.lines:
            out.setdefault(li.sku, []).append((li.t, li.qty))
    return out


def test_the_same_seed_makes_the_same_site_and_another_seed_another():
    a, b = Site.generate(SPEC), Site.generate(SPEC)
    assert a.orders == b.orders and a.skus == b.skus
    assert a.line_count() > 1000
    other = Site.generate(replace(SPEC, seed=4))
    assert lines_of(other) != lines_of(a)


def test_adding_a_sku_changes_no_other_skus_demand_nor_its_supplier():
    small = Site.generate(SPEC)
    big = Site.generate(replace(SPEC, skus=SPEC.skus + 1))
    small_lines, big_lines = lines_of(small), lines_of(big)
    new = sku_spec(big.spec, SPEC.skus).sku
    assert set(big_lines) - set(small_lines) <= {new}
    for sku, lines in small_lines.items():
        assert sorted(big_lines[sku]) == sorted(lines), sku
    for s_small, s_big in zip(small.skus, big.skus, strict=False):
        assert s_small == s_big
        assert deliveries(SPEC, s_small, 2, 10 * DAY) == deliveries(big.spec, s_big, 2, 10 * DAY)


def test_the_supplier_answers_the_nth_purchase_order_the_same_way_whenever_it_comes():
    s = sku_spec(SPEC, 0)
    assert deliveries(SPEC, s, 5, 3 * DAY) == deliveries(SPEC, s, 5, 3 * DAY)
    parts = [deliveries(SPEC, s, n, 3 * DAY) for n in range(200)]
    assert all(abs(sum(d.fraction for d in p) - 1.0) < 1e-9 for p in parts)
    assert any(len(p) == 2 for p in parts)  # partial deliveries ...
    leads = [p[0].delay / DAY for p in parts]
    assert max(leads) > s.lead_time_days * 1.5  # ... late ones ...
    assert len(set(leads)) > 150  # ... and lead times that vary


def test_a_supplier_that_shifts_pace_mid_run_does_so_from_its_shift_day():
    s = next(s for s in sku_specs(replace(SPEC, skus=200)) if s.lead_shift_day is not None and s.lead_shift_factor > 1)
    before = [deliveries(SPEC, s, n, (s.lead_shift_day - 1) * DAY)[0].delay for n in range(50)]
    after = [deliveries(SPEC, s, n, (s.lead_shift_day + 1) * DAY)[0].delay for n in range(50)]
    assert sum(after) / sum(before) > 1.2


def test_the_mixed_site_has_every_pattern_and_order_kind_and_the_control_site_none_of_the_noise():
    site = Site.generate(replace(SPEC, skus=200))
    patterns = Counter(s.pattern for s in site.skus)
    assert set(patterns) == set(PATTERNS)
    lumpy = {s.sku for s in site.skus if s.pattern == "lumpy"}
    lumpy_qty = [li.qty for o in site.orders for li in o.lines if li.sku in lumpy]
    assert lumpy_qty and min(lumpy_qty) >= 10 and max(lumpy_qty) <= 50
    assert any(o.rush for o in site.orders) and any(o.priority for o in site.orders)
    assert any(o.ship_complete for o in site.orders) and any(len(o.lines) > 1 for o in site.orders)
    assert any(o.patience_days for o in site.orders) and any(o.patience_days is None for o in site.orders)
    assert [o.t for o in site.orders] == sorted(o.t for o in site.orders)

    control = replace(SPEC, skus=200, scenario="control")
    specs = sku_specs(control)
    assert {s.pattern for s in specs} == {"smooth"} and all(s.lead_shift_day is None for s in specs)
    for s in specs[:20]:
        parts = [deliveries(control, s, n, 0.0) for n in range(20)]
        assert all(len(p) == 1 and abs(p[0].delay / DAY / s.lead_time_days - 1) < 0.25 for p in parts)


def test_a_skus_demand_is_its_own_stream():
    s = sku_spec(SPEC, 7)
    assert demand(SPEC, s) == demand(replace(SPEC, skus=500), s)
    assert all(0 <= li.t < SPEC.total_days * DAY and li.qty >= 1 for li in demand(SPEC, s))


def test_the_erp_history_is_the_warm_up_only():
    site = Site.generate(SPEC)
    daily = site.warmup_daily_demand()
    end = SPEC.warmup_days * DAY
    sku = site.skus[0].sku
    units = sum(li.qty for o in site.orders for li in o.lines if li.sku == sku and li.t < end)
    assert daily[sku] == units / SPEC.warmup_days
