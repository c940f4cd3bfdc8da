"""The console's planner panel on the SKU screen (a pure render of sku.get's ``planner``)
and the sparkline it draws: history and forecast on one scale."""

from __future__ import annotations

from backorder.tui.screens.sku import planner_text
from backorder.tui.widgets import spark

TUNED = {
    "mode": "auto",
    "service_level": 0.95,
    "levels": {"reorder_point": 18, "order_up_to": 86, "safety_stock": 0},
    "last_tuned": {
        "at": "2026-01-26T00:00:00Z",
        "mode": "auto",
        "applied": True,
        "old": {"reorder_point": 16, "order_up_to": 84, "safety_stock": 0},
        "new": {"reorder_point": 18, "order_up_to": 86, "safety_stock": 0},
        "demand_class": "smooth",
        "model": "SeasonalES(7)",
        "forecast": {},
        "reasons": ["smooth demand (ADI 1.00, CV² 0.19)"],
    },
    "latest": {
        "demand_class": "smooth",
        "model": "SeasonalES(7)",
        "proposed": {"reorder_point": 18, "order_up_to": 86, "safety_stock": 0},
        "forecast": [9.0, 5.0, 0.0],
        "history": [9.0, 4.5, 0.0],
        "tracking_signal": 0.0,
        "reasons": ["smooth demand (ADI 1.00, CV² 0.19)", "fill rate 95.0%: k=0.00"],
    },
}


def test_a_manual_sku_the_planner_never_saw_shows_no_panel():
    assert planner_text(None) is None
    assert planner_text({"mode": "manual", "service_level": 0.97, "last_tuned": None, "latest": None}) is None


def test_the_panel_shows_mode_class_change_chart_and_reasons():
    text = planner_text(TUNED).plain
    assert "Planner auto · fill target 95.0% · smooth · SeasonalES(7)" in text
    assert "2026-01-26 set ROP 16→18, up to 84→86, safety 0→0" in text
    assert "30d demand █▅  │ █▅  next 30d 14" in text
    assert "· fill rate 95.0%: k=0.00" in text


def test_a_suggestion_says_so():
    suggested = {**TUNED, "mode": "suggest", "last_tuned": {**TUNED["last_tuned"], "applied": False}}
    assert "suggests ROP 16→18" in planner_text(suggested).plain


def test_spark_scales_to_the_shared_top():
    assert spark([0, 1, 2, 4], 4) == " ▃▅█"
    assert spark([1, 2], 0) == "  "


def test_the_kpi_bar_counts_modes_and_flags_a_worker_down():
    from backorder.tui.widgets import KpiBar

    stats = {
        "targets": {"fulfillment_rate": 0.95, "avg_reorder_lead_time_hours": 48, "order_accuracy": 1.0},
        "fulfillment_rate": 0.97,
        "avg_reorder_lead_time_hours": 30.0,
        "order_accuracy": 1.0,
        "counts": {"open_backorder_lines": 0, "units_waiting": 0, "oldest_wait_hours": None, "shipments_today": 0},
        "policy_modes": {"manual": 1, "auto": 5, "suggest": 2},
        "planner": {"state": "restarting", "pid": None, "restarts": 3, "last_exit": "exited with status -9"},
    }
    bar = KpiBar()
    bar.stats = stats
    text = bar.render().plain
    assert "planner auto 5 · suggest 2 · manual 1" in text
    assert "planner worker restarting (3 restarts)" in text
    quiet = {**stats, "policy_modes": {"manual": 8, "auto": 0, "suggest": 0}, "planner": {"state": "off"}}
    bar.stats = quiet
    assert "planner" not in bar.render().plain  # as the console was without a planner


def test_under_the_site_target_the_panel_shows_the_skus_chosen_target_and_the_sites():
    site = {**TUNED, "service_target": "site", "service_level": 0.97}
    site["latest"] = {**TUNED["latest"], "service_level": 0.9312}
    assert "Planner auto · fill target 93.1% of the site's 97.0% · smooth" in planner_text(site).plain
    # before its first run under the site's target: the site's
    assert "fill target 97.0% ·" in planner_text({**site, "latest": None}).plain
