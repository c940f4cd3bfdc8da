"""The policy lab end to end: a 200-SKU x 90-day site replayed through real daemons on
the stepped clock, refereed from their journal files. The same seed twice gives the same
journal, event for event, and the same report; the DESIGN.md invariants hold on the
journal; a daemon without the planner makes a planner policy "not available", not a
failure; ``backorder lab --keep`` leaves a daemon a console can attach to."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from backorder.client import Client
from backorder.lab import policies
from backorder.lab import run as lab_run
from backorder.lab.driver import PolicyUnavailable
from backorder.lab.generator import ScenarioSpec, Site
from backorder.lab.referee import final_stock, read_journal
from backorder.lab.run import run_one

CI_SPEC = ScenarioSpec(skus=200, days=90, seed=11)
# The planner's policies replay a shorter site of the same seed: after the 28-day
# warm-up (the planner's min_history_days) 45 days of daily runs that tune, with their
# bias reruns, reorders and the notifier's checks; 16,296 lines in 292 clock steps
# instead of 25,550 in 472, about 37 % less per replay for two replays of each.
PLANNER_SPEC = ScenarioSpec(skus=200, days=45, seed=11)


@pytest.fixture(scope="module")
def ci_site() -> Site:
    return Site.generate(CI_SPEC)


# The planner's policies replay with customer notices routed (``lab --notices``): the
# notifier's hourly depletion and promise checks then run on the stepped clock beside the
# planner's daily runs, the most engine-time work a lab run has.
@pytest.mark.parametrize(
    ("name", "notices", "spec", "least_lines"),
    [
        ("static-7", False, CI_SPEC, 20_000),
        ("planner-fifo", True, PLANNER_SPEC, 15_000),
        ("planner-priority", True, PLANNER_SPEC, 15_000),
    ],
)
def test_a_policy_replays_to_the_same_journal_and_report(ci_site, tmp_path, name, notices, spec, least_lines):
    policy = policies.parse([name])[0]
    site = ci_site if spec == CI_SPEC else Site.generate(spec)
    try:
        first_info, first = run_one(site, policy, tmp_path / "one", notices=notices)
    except PolicyUnavailable as exc:
        assert policy.planner  # only the planner's policies may be missing from a daemon
        pytest.skip(f"{name} is not available on this daemon: {exc}")
    second_info, second = run_one(site, policy, tmp_path / "two", notices=notices)
    assert least_lines <= first_info.lines_sent <= 60_000  # the size the lab's CI scenario is meant to be
    assert first["events"] > first_info.lines_sent
    assert first["journal_sha256"] == second["journal_sha256"]
    first.pop("referee_seconds"), second.pop("referee_seconds")
    assert first == second
    bad = {k: v for k, v in first["invariants"].items() if not v["ok"]}
    assert not bad
    # the scenario exercised what the figures measure
    assert 0.5 < first["fill_rate"] < 1.0 and first["lines_backordered"] > 0
    assert first["purchase_orders"] > 100 and first["orders_cancelled"] > 0
    assert first["backorder_age_p95_days"] >= first["backorder_age_p50_days"] > 0
    if notices:  # the notices were decided and journaled, delay notices among them
        assert first["late_lines_told_in_time"] != "n/a" and first["lines_promised"] > 0
        assert first["late_lines_untold"] < first["lines_promised"]


def test_the_referee_agrees_with_the_daemon_on_the_stock_it_ends_with(ci_site, tmp_path):
    """The referee's stock comes from the journal alone; the daemon's own ``skus.list``
    after the run must say the same (conservation, DESIGN.md invariant 1)."""
    small = Site.generate(ScenarioSpec(skus=30, days=20, warmup_days=7, seed=5))
    info, figs = run_one(small, policies.parse(["static-3"])[0], tmp_path, keep=True)
    try:
        with Client(info.socket) as c:
            skus = c.call("skus.list", limit=1000)["skus"]
        events, bad = read_journal(info.db)
        on_hand, allocated = final_stock(events)
        assert bad == 0 and len(on_hand) == 30
        assert {s["sku"]: s["on_hand"] for s in skus} == on_hand
        assert {s["sku"]: s["allocated"] for s in skus} == allocated
    finally:
        info.daemon.stop(timeout=30, kill_on_timeout=True)
        info.daemon.cleanup()


def _run_lab(*args: str) -> str:
    """``backorder lab`` in a process of its own; its output."""
    proc = subprocess.run(
        [sys.executable, "-m", "backorder", "lab", *args], capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _lab(out: Path, *extra: str) -> str:
    """A tiny lab (10 SKUs x 5 days, two static policies)."""
    return _run_lab(
        "--skus", "10", "--days", "5", "--warmup", "2", "--policies", "static-0,static-7", "--out", str(out), *extra
    )


def test_backorder_lab_writes_its_report_and_keep_leaves_a_daemon_to_attach_to(tmp_path):
    out = tmp_path / "out"
    stdout = _run_lab(
        "--skus",
        "20",
        "--days",
        "10",
        "--warmup",
        "7",
        "--policies",
        "static-0,static-7,planner-fifo",
        "--out",
        str(out),
        "--keep",
        "--by-group",
    )
    pid = int(re.search(r"\(stop it: kill (\d+)\)", stdout).group(1))
    sock = re.search(r"kept running: backorder tui --socket (\S+)", stdout).group(1)
    try:
        with Client(sock) as c:  # what the console does first
            assert c.call("health")["status"] == "serving"
            assert c.call("skus.list", limit=5)["skus"]
        report = json.loads((out / "report.json").read_text())
        assert [r["policy"] for r in report["runs"]][:2] == ["static-0", "static-7"]
        ran = {r["policy"] for r in report["runs"]}
        assert "planner-fifo" in ran or "planner-fifo" in report["unavailable"]
        md = (out / "report.md").read_text()
        assert "| static-7 |" in md and "Invariants: all held" in md
        # --by-group: each kind of SKU's share; the groups of a dimension add up to the site
        dims = report["groups"]["1"]
        assert set(dims) == {"demand pattern", "supplier pace", "quoted lead time"}
        assert "Seed 1, by demand pattern" in md
        for rows in dims.values():
            assert sum(r["skus"] for r in rows.values()) == 20
            for run in report["runs"]:
                f, name = run["figures"], run["policy"]
                parts = [r["policies"][name] for r in rows.values() if r["policies"][name]["units_ordered"]]
                ordered = sum(p["units_ordered"] for p in parts)
                filled = sum(p["fill_rate"] * p["units_ordered"] for p in parts)
                assert ordered == f["units_ordered"]
                assert filled / ordered == pytest.approx(f["fill_rate"], abs=1e-3)
                assert sum(r["policies"][name]["on_hand_units"] for r in rows.values()) == pytest.approx(
                    f["on_hand_units"], abs=0.1
                )
        assert "| static-7 |" in stdout
    finally:
        os.kill(pid, signal.SIGTERM)
        shutil.rmtree(Path(sock).parent, ignore_errors=True)  # the launcher's socket folder


def test_lab_resume_reuses_only_the_runs_this_code_made_on_the_same_site(tmp_path):
    out = tmp_path / "out"
    first = _lab(out)
    assert "reused" not in first
    report = json.loads((out / "report.json").read_text())
    # again with --resume: nothing runs, the report is the same
    again = _lab(out, "--resume")
    assert again.count("reused") == 2 and "daemon on" not in again
    resumed = json.loads((out / "report.json").read_text())
    assert [r["figures"] for r in resumed["runs"]] == [r["figures"] for r in report["runs"]]
    assert resumed["summary"] == report["summary"]
    assert all(r["reused"] for r in resumed["runs"])
    # a run kept by other code is run again, never mixed in; the other is still reused
    kept = out / "done" / "static-7-seed1.json"
    stale = json.loads(kept.read_text())
    stale["code"] = "another"
    kept.write_text(json.dumps(stale))
    third = _lab(out, "--resume")
    assert "static-0: reused" in third and "static-7: running (made by other code)" in third
    assert json.loads(kept.read_text())["code"] != "another"
    # another site (one more day) reuses nothing
    fourth = _lab(out, "--resume", "--days", "6")
    assert "reused" not in fourth and fourth.count("made on another site") == 2


def test_lab_jobs_run_side_by_side_and_report_what_one_at_a_time_reports(tmp_path):
    _lab(tmp_path / "one", "--seeds", "2")
    both = _lab(tmp_path / "two", "--seeds", "2", "--jobs", "2")
    assert both.count("daemon on") == 4 and both.count(" lines in ") == 4  # each said once
    one = json.loads((tmp_path / "one" / "report.json").read_text())
    two = json.loads((tmp_path / "two" / "report.json").read_text())
    key = lambda r: (r["seed"], r["policy"])  # noqa: E731
    assert [key(r) for r in two["runs"]] == [key(r) for r in one["runs"]]

    def figures(report: dict) -> list[dict]:  # less the referee's own time
        return [{k: v for k, v in r["figures"].items() if k != "referee_seconds"} for r in report["runs"]]

    assert figures(two) == figures(one)
    assert two["summary"] == one["summary"]
    assert sorted(p.name for p in (tmp_path / "two" / "done").iterdir()) == [
        "static-0-seed1.json",
        "static-0-seed2.json",
        "static-7-seed1.json",
        "static-7-seed2.json",
    ]


def test_a_daemon_that_takes_the_config_but_not_the_planner_mode_makes_it_unavailable(ci_site, tmp_path, monkeypatch):
    """The second way a daemon can lack the planner: its config loads (no ``[planner]``
    asked for here) but ``sku.configure`` refuses ``mode``: reported, not a failure."""
    policy = policies.parse(["planner-fifo"])[0]
    monkeypatch.setattr(policies.Policy, "config", lambda self: '[allocation]\nmode = "fifo"\n')
    small = Site.generate(ScenarioSpec(skus=5, days=5, warmup_days=2, seed=2))
    try:
        run_one(small, policy, tmp_path)
    except PolicyUnavailable as exc:
        assert "sku.configure" in str(exc) or "planner.run" in str(exc)
    else:  # a daemon with the planner: the policy runs
        pass


def test_flash_sale_ships_within_the_bound_with_the_3pl_and_each_routed_order_once_across_kill9(tmp_path):
    """The flash-sale scenario at CI size: a sale beyond the site's pick capacity, played
    once with the 3PL on (the lab daemon kill -9'd while an advance sends orders to the
    fake ShipBob, then restarted by the driver) and once off. The referee, from the
    journal: with the 3PL the order -> ship p95 is within the bound, without it not; every
    routed order shipped exactly once (one shipment event, every unit once) and the 3PL
    got one create per order."""
    from backorder.lab.flash_sale import FlashSpec, run_flash_sale

    spec = FlashSpec(hours=8, burst=320, p95_bound_hours=4.0, kill_at_hour=3.0)
    report = run_flash_sale(spec, [1], tmp_path, say=lambda _: None)
    on, off = report["runs"]
    assert (on["name"], off["name"]) == ("threepl-on", "threepl-off")
    f, g = on["figures"], off["figures"]
    assert f["orders"] == g["orders"] > 400  # the same demand both times
    assert on["kill"]["done"] and on["kill"]["during_sends"] and on["daemon_starts"] == 2
    assert f["orders_unshipped"] == g["orders_unshipped"] == 0
    assert f["routed"] > 50 and f["routing_switches"] >= 2  # on in the sale, off after it
    assert f["routed_shipped_exactly_once"] == f["routed"] == f["threepl_orders"]
    assert f["threepl_creates_max"] == 1 and f["threepl_webhooks_max"] == 1
    assert f["shipments_shipped_twice"] == f["lines_over_shipped"] == 0 and f["exactly_once"]
    assert f["p95_within_bound"] and f["order_to_ship_p95_hours"] <= 4.0
    assert g["routed"] == 0 and not g["p95_within_bound"]
    assert g["order_to_ship_p95_hours"] > f["order_to_ship_p95_hours"]
    assert "threepl-on" in (tmp_path / "report.md").read_text()


def test_one_run_at_a_time_generates_each_seeds_site_once(tmp_path, monkeypatch):
    """With ``--jobs 1`` each seed's runs follow its planning while its site is at hand: a
    full-size site takes 10-20 s to generate, and every seed's was made twice (for the
    plan, then again for its runs once the next seed's had replaced it)."""
    made: list[int] = []
    generate = Site.generate

    def counted(spec):
        made.append(spec.seed)
        return generate(spec)

    monkeypatch.setattr(Site, "generate", staticmethod(counted))
    lab_run._site.cache_clear()
    try:
        report = lab_run.run_lab(
            ScenarioSpec(skus=10, days=5, warmup_days=2), ["static-0", "static-7"], [1, 2], tmp_path, say=lambda _: None
        )
    finally:
        lab_run._site.cache_clear()
    assert made == [1, 2]
    assert [(r["seed"], r["policy"]) for r in report["runs"]] == [
        (1, "static-0"),
        (1, "static-7"),
        (2, "static-0"),
        (2, "static-7"),
    ]
