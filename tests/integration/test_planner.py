"""The demand planner through a real daemon: a stepped clock, the worker process it
starts, real orders in a real journal. A SKU in auto mode gets its levels from the
planner (a policy_tuned event, sku.get shows them), one in suggest mode is only told,
a manual one is left alone; a killed worker is restarted and health says so; a restart
of the daemon replays the tuned levels."""

from __future__ import annotations

import hashlib
import json
import os
import signal

import pytest
from bo_support import line, read_db, submit

START = "2026-01-05T09:00:00Z"
DAY = 86400

CONFIG = """
[daemon]
clock = "stepped"
clock_start = "{start}"

[planner]
enabled = true
min_history_days = 14
{planner}

[default_policy]
lead_time_days = 3
"""

# Weekly-patterned demand: an order every day, more on Mondays; three SKUs see the same.
PATTERN = [9, 5, 4, 6, 5, 3, 2]


def config(planner: str = "") -> str:
    return CONFIG.format(start=START, planner=planner)


def wait_for(check, what: str):
    """Poll a condition through the socket (each poll a real round trip), no sleeps."""
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def history(c, days: int, skus=("AUTO", "SUGG", "MAN")) -> None:
    """``days`` days of orders, the clock moved a day after each (the daily runs happen)."""
    for day in range(days):
        qty = PATTERN[day % 7]
        for sku in skus:
            submit(c, f"{sku}-{day}", line(sku, qty))
        c.call("clock.advance", seconds=DAY)


def tuned_rows(d, sku: str) -> list[tuple]:
    return read_db(d.db, "SELECT seq, body FROM events WHERE type = 'policy_tuned' AND sku = ?", (sku,))


@pytest.fixture
def tuned_daemon(make_daemon):
    d = make_daemon(config())
    with d.client() as c:
        c.call("sku.configure", sku="AUTO", mode="auto", reorder_point=10, order_up_to=30, service_level=0.95)
        c.call("sku.configure", sku="SUGG", mode="suggest", reorder_point=10, order_up_to=30)
        c.call("sku.configure", sku="MAN", reorder_point=10, order_up_to=30)
        history(c, 21)
    return d


def test_auto_mode_is_tuned_by_the_daily_run_suggest_is_told_manual_is_left_alone(tuned_daemon):
    d = tuned_daemon
    with d.client() as c:
        auto = c.call("sku.get", sku="AUTO")
        plan = auto["planner"]
        assert plan["mode"] == "auto" and plan["service_level"] == 0.95
        last = plan["last_tuned"]
        assert last is not None and last["applied"] is True
        assert last["demand_class"] == "smooth" and last["model"] == "SeasonalES(7)"
        assert auto["policy"]["reorder_point"] == last["new"]["reorder_point"]
        assert auto["policy"]["order_up_to"] == last["new"]["order_up_to"]
        assert auto["policy"]["reorder_point"] != 10  # moved from the typed value
        assert len(plan["latest"]["forecast"]) == 30
        assert any("fill rate 95.0%" in r for r in last["reasons"])
        # 5 units a day on average over a 3-day lead time (the forecast's next three days:
        # 18), a 14-day order quantity of 68; the example of planner.explain in docs/protocol.md
        levels = {k: auto["policy"][k] for k in ("reorder_point", "order_up_to", "safety_stock")}
        assert levels == {"reorder_point": 18, "order_up_to": 86, "safety_stock": 0}
        assert last["forecast"]["error_sd"] == 2.449  # the Poisson floor: the pattern repeats exactly

        sugg = c.call("sku.get", sku="SUGG")
        assert sugg["planner"]["last_tuned"]["applied"] is False
        assert sugg["policy"]["reorder_point"] == 10 and sugg["policy"]["order_up_to"] == 30
        assert sugg["planner"]["last_tuned"]["new"]["reorder_point"] != 10

        man = c.call("sku.get", sku="MAN")
        assert man["planner"]["last_tuned"] is None
        assert man["policy"]["reorder_point"] == 10 and man["policy"]["order_up_to"] == 30

        status = c.call("planner.status")
        assert status["runs"] >= 7 and status["last_run"]["cause"] == "planner.schedule"
        assert status["modes"] == {"manual": 1, "auto": 1, "suggest": 1}
        assert c.call("stats")["policy_modes"] == {"manual": 1, "auto": 1, "suggest": 1}
        explain = c.call("planner.explain", sku="AUTO")
        assert explain["last_tuned"] == last
    assert tuned_rows(d, "AUTO") and tuned_rows(d, "SUGG") and not tuned_rows(d, "MAN")
    # the audit trail says who changed the levels: the planner, not the clock's client
    actors = read_db(d.db, "SELECT DISTINCT actor FROM events WHERE type = 'policy_tuned'")
    assert actors == [("planner",)]


def test_planner_run_replies_once_journaled_and_a_restart_replays_the_levels(tuned_daemon):
    d = tuned_daemon
    with d.client() as c:
        c.call("sku.configure", sku="AUTO", reorder_point=1, order_up_to=2, safety_stock=0)  # a person's values
        result = c.call("planner.run", sku="AUTO")
        assert result["skus"] == 1 and result["tuned"] == 1 and result["cause"] == "planner.run"
        after = c.call("sku.get", sku="AUTO")
        assert after["planner"]["last_tuned"]["old"] == {"reorder_point": 1, "order_up_to": 2, "safety_stock": 0}
        # capped at 50 % of the larger value per run: from 1 it cannot jump all the way
        assert after["policy"]["reorder_point"] > 1
        seq = c.call("health")["journal"]["committed_seq"]
        assert max(s for s, _ in tuned_rows(d, "AUTO")) <= seq  # durable when the reply came
        policy = after["policy"]
        tuned = after["planner"]["last_tuned"]
    d.kill9()  # kill -9: replay from the journal
    d.start()
    with d.client() as c:
        again = c.call("sku.get", sku="AUTO")
        assert again["policy"] == policy
        assert again["planner"]["last_tuned"] == tuned
    d.stop()  # a clean stop writes a snapshot: the next start restores from it
    d.start()
    with d.client() as c:
        again = c.call("sku.get", sku="AUTO")
        assert again["policy"] == policy and again["planner"]["last_tuned"] == tuned


def test_pinning_back_to_manual_stops_the_tuning(tuned_daemon):
    d = tuned_daemon
    with d.client() as c:
        c.call("sku.configure", sku="AUTO", mode="manual", reorder_point=7, order_up_to=20)
        before = len(tuned_rows(d, "AUTO"))
        history(c, 2, skus=("AUTO",))
        c.call("planner.run")
        got = c.call("sku.get", sku="AUTO")["policy"]
        assert (got["mode"], got["reorder_point"], got["order_up_to"]) == ("manual", 7, 20)
        assert len(tuned_rows(d, "AUTO")) == before


def test_too_little_history_keeps_the_levels_and_says_why(make_daemon):
    d = make_daemon(config())
    with d.client() as c:
        c.call("sku.configure", sku="NEW", mode="auto", reorder_point=4, order_up_to=9)
        history(c, 3, skus=("NEW",))
        c.call("planner.run")
        got = c.call("sku.get", sku="NEW")
        assert (got["policy"]["reorder_point"], got["policy"]["order_up_to"]) == (4, 9)
        assert got["planner"]["last_tuned"] is None
        assert "the planner needs 14" in got["planner"]["latest"]["reasons"][0]
        # one giant order among small ones: counted as the next largest day, said so
        for day in range(20):
            submit(c, f"G-{day}", line("GIANT", 500 if day == 10 else 2))
            c.call("clock.advance", seconds=DAY)
        c.call("sku.configure", sku="GIANT", mode="suggest")
        c.call("planner.run", sku="GIANT")
        reasons = c.call("planner.explain", sku="GIANT")["latest"]["reasons"]
        assert any("one day of 500 units" in r for r in reasons), reasons
        # refusals
        for fields, code in [({"sku": "NOPE"}, "unknown_sku")]:
            reply = c.request("planner.run", **fields)
            assert reply["error"]["code"] == code


def test_a_killed_worker_is_restarted_and_the_daemon_keeps_serving(make_daemon):
    d = make_daemon(config("restart_min_s = 0.2"))
    with d.client() as c:
        worker = wait_for(lambda: c.call("health")["planner"]["pid"], "the worker to start")
        os.kill(worker, signal.SIGKILL)
        health = wait_for(
            lambda: (h := c.call("health")["planner"])["restarts"] >= 1 and h["state"] == "ready" and h, "a restart"
        )
        assert health["pid"] != worker and "status -9" in health["last_exit"]
        c.call("sku.configure", sku="X", mode="auto")
        assert c.call("planner.run")["skus"] == 1  # the new worker answers


def test_a_run_while_the_worker_is_down_fails_cleanly_and_changes_nothing(make_daemon):
    d = make_daemon(config("restart_min_s = 30\nrun_timeout_s = 0.5"))
    with d.client() as c:
        c.call("sku.configure", sku="X", mode="auto", reorder_point=3, order_up_to=8)
        worker = wait_for(lambda: c.call("health")["planner"]["pid"], "the worker to start")
        os.kill(worker, signal.SIGKILL)
        wait_for(lambda: c.call("health")["planner"]["state"] == "restarting", "the worker's exit to be seen")
        seq = c.call("health")["journal"]["last_seq"]
        reply = c.request("planner.run")
        assert reply["error"]["code"] == "planner_unavailable", reply
        assert c.call("health")["journal"]["last_seq"] == seq
        got = c.call("sku.get", sku="X")["policy"]
        assert (got["reorder_point"], got["order_up_to"]) == (3, 8)
        status = c.call("planner.status")
        assert status["failed_runs"] == 1 and "restarting" in status["last_error"]


def journal_hash(d) -> str:
    h = hashlib.sha256()
    for kind, ts, body in read_db(d.db, "SELECT type, ts, body FROM events ORDER BY seq"):
        h.update(kind.encode() + b"\0" + repr(ts).encode() + b"\0" + bytes(body) + b"\n")
    return h.hexdigest()


def test_the_same_script_gives_the_same_journal_with_the_planner_on_even_when_a_worker_hangs(make_daemon):
    """The daily runs fall due inside the advances and their events are part of the
    journal: two runs of the same script must give it event for event. In the second a
    worker hangs in the last daily run (killed after ``run_timeout_s``, wall time, as a
    slow machine's would be): the run is sent to the next worker, not lost with it, so the
    journal is the one a machine fast enough to never time out gives."""
    hashes = []
    for hang in (False, True):
        d = make_daemon(config("restart_min_s = 0.2\nrun_timeout_s = 10"))
        with d.client(timeout=600) as c:  # the hung try costs run_timeout_s, then a new worker starts
            c.call("sku.configure", sku="AUTO", mode="auto", reorder_point=10, order_up_to=30)
            history(c, 17, skus=("AUTO",))
            # a person's values: the next daily run has levels to journal
            c.call("sku.configure", sku="AUTO", reorder_point=1, order_up_to=2, safety_stock=0)
            tuned = len(tuned_rows(d, "AUTO"))
            worker = wait_for(lambda: c.call("health")["planner"]["pid"], "the worker to start")
            if hang:
                os.kill(worker, signal.SIGSTOP)  # alive, never answers
            try:
                history(c, 1, skus=("AUTO",))  # the day's run falls due in this advance
            finally:
                if hang:
                    try:
                        os.kill(worker, signal.SIGKILL)  # now, if the daemon has not killed it yet
                    except ProcessLookupError:
                        pass
            status = c.call("planner.status")
            assert status["failed_runs"] == 0, status
            assert (status["worker"]["pid"] != worker) is hang and (status["worker"]["restarts"] >= 1) is hang
            assert len(tuned_rows(d, "AUTO")) > tuned  # the hung run was done (by the next worker)
            c.call("planner.run")
        hashes.append(journal_hash(d))
    assert hashes[0] == hashes[1]


def test_a_sku_first_seen_in_an_order_takes_the_default_mode(make_daemon):
    d = make_daemon(config().replace("[default_policy]\n", '[default_policy]\nmode = "auto"\nservice_level = 0.9\n'))
    with d.client() as c:
        submit(c, "first", line("FRESH", 2))
        got = c.call("sku.get", sku="FRESH")
        assert (got["policy"]["mode"], got["policy"]["service_level"]) == ("auto", 0.9)
        assert c.call("planner.status")["modes"]["auto"] == 1


def test_a_hung_worker_is_killed_after_the_run_timeout_and_replaced(make_daemon):
    d = make_daemon(config("restart_min_s = 0.2\nrun_timeout_s = 1"))
    with d.client() as c:
        c.call("sku.configure", sku="X", mode="auto")
        worker = wait_for(lambda: c.call("health")["planner"]["pid"], "the worker to start")
        os.kill(worker, signal.SIGSTOP)  # alive, never answers
        try:
            reply = c.request("planner.run")
            assert reply["error"]["code"] == "planner_unavailable", reply
            assert c.call("health")["status"] == "serving"
            health = wait_for(
                lambda: (h := c.call("health")["planner"])["state"] == "ready" and h["pid"] != worker and h,
                "a new worker",
            )
            assert health["restarts"] >= 1
        finally:
            try:
                os.kill(worker, signal.SIGKILL)
            except ProcessLookupError:
                pass
        assert c.call("planner.run")["skus"] == 1


def test_with_the_planner_off_its_ops_say_so(make_daemon):
    d = make_daemon('[daemon]\nclock = "stepped"\nclock_start = "2026-01-05T09:00:00Z"\n')
    with d.client() as c:
        assert c.call("planner.status")["enabled"] is False
        assert c.call("health")["planner"]["state"] == "off"
        assert c.request("planner.run")["error"]["code"] == "planner_disabled"
        c.call("sku.configure", sku="A")
        assert c.call("sku.get", sku="A")["planner"]["mode"] == "manual"


def test_each_sku_is_planned_with_its_own_lead_time_not_its_suppliers_mix(make_daemon):
    """Two SKUs of one supplier, one delivered in 2 days and one in 10: each is planned
    with its own measured lead time (pooled per supplier, both would get ~6 days and the
    spread between them)."""
    d = make_daemon(config() + '\n[sources.acme]\nname = "Acme"\n')
    leads = {"FAST": 2, "SLOW": 10}
    with d.client() as c:
        for sku, lead in leads.items():
            c.call(
                "sku.configure",
                sku=sku,
                mode="suggest",  # told, not applied: the reorder rule stays as typed
                reorder_point=5,
                order_up_to=20,
                lead_time_days=lead,
                source="supplier:acme",
            )
        due: dict[int, list[dict]] = {}  # day -> requests to receive in full that day
        seen: set[str] = set()
        for day in range(45):
            for r in due.pop(day, []):
                c.call("stock.receive", sku=r["sku"], qty=r["qty"], reference=r["request_id"])
            for sku in leads:
                submit(c, f"{sku}-{day}", line(sku, 3))
            for r in c.call("procurement.list", status="all", limit=1000)["requests"]:
                if r["request_id"] not in seen:
                    seen.add(r["request_id"])
                    due.setdefault(day + leads[r["sku"]], []).append(r)
            c.call("clock.advance", seconds=DAY)
        c.call("planner.run")
        for sku, lead in leads.items():
            explain = c.call("planner.explain", sku=sku)
            # every receipt on time: no spread
            said = f"lead time {lead:.1f} ± 0.0 days measured over this SKU's last"
            assert any(said in r for r in explain["latest"]["reasons"]), explain["latest"]["reasons"]
            assert explain["last_tuned"]["forecast"]["lead_time_days"] == pytest.approx(lead)


def test_a_rare_skus_series_starts_when_it_appeared_not_on_its_first_order(make_daemon):
    """10 units every 10th day from day 10 on a SKU configured on day 0: 1 unit a day.
    A series opened on the first order would give Croston a first interval of 1 day and
    a forecast near 2.8 a day (intervals smoothed 1 -> 3.4 with alpha 0.1)."""
    d = make_daemon(config())
    with d.client() as c:
        c.call("sku.configure", sku="RARE", mode="suggest", reorder_point=5, order_up_to=20)
        for day in range(50):
            if day and day % 10 == 0:
                submit(c, f"R-{day}", line("RARE", 10))
            c.call("clock.advance", seconds=DAY)
        c.call("planner.run", sku="RARE")
        latest = c.call("planner.explain", sku="RARE")["latest"]
        assert latest["model"] == "CrostonSBA"
        # intervals 11, 10, 10, 10 smoothed: 10.7 days; sizes 10; SBA's 0.95: 0.89 a day
        assert latest["forecast"][0] == pytest.approx(0.95 * 10 / 10.729, abs=0.01)


def test_site_target_gives_smooth_and_lumpy_skus_different_targets_that_meet_it_together(make_daemon):
    """Under service_target = "site" (the default) the planner chooses each SKU's fill
    target so that their demand-weighted expected fill meets [planner] service_level:
    a smooth SKU, where a point of fill costs little stock, above it, a lumpy one (a few
    big B2B lines) below it; a SKU with a target of its own keeps it. A run for one SKU
    plans it at the whole run's marginal: the same target."""
    d = make_daemon(config("service_level = 0.96"))
    lumpy = [5, 45, 10, 50, 8]
    with d.client() as c:
        for sku in ("SMOOTH", "LUMPY", "OWN"):
            c.call("sku.configure", sku=sku, mode="auto", reorder_point=10, order_up_to=30)
        c.call("sku.configure", sku="OWN", service_level=0.99)
        for day in range(35):
            submit(c, f"S-{day}", line("SMOOTH", PATTERN[day % 7]))
            submit(c, f"O-{day}", line("OWN", PATTERN[day % 7]))
            if day % 4 == 0:
                submit(c, f"L-{day}", line("LUMPY", lumpy[(day // 4) % len(lumpy)]))
            c.call("clock.advance", seconds=DAY)
        run = c.call("planner.run")
        site = run["site"]
        assert site["target"] == 0.96 and site["feasible"] and site["expected"] >= 0.96
        assert (site["skus"], site["own_targets"]) == (3, 1)
        assert c.call("planner.status")["last_run"]["site"] == site
        got = {sku: c.call("planner.explain", sku=sku) for sku in ("SMOOTH", "LUMPY", "OWN")}
        chosen = {sku: e["latest"]["service_level"] for sku, e in got.items()}
        assert chosen["SMOOTH"] > 0.96 > chosen["LUMPY"] >= 0.80, chosen
        assert chosen["OWN"] == 0.99 and got["OWN"]["service_target"] == "sku"
        assert got["SMOOTH"]["service_target"] == "site" and got["SMOOTH"]["service_level"] == 0.96
        # the site's expected fill from what each SKU shows: weights are the daily demand
        # over the protection window, targets the ones each was planned at
        weights = {}
        for sku, e in got.items():
            f = e["last_tuned"]["forecast"]
            weights[sku] = f["lead_time_demand"] / f["lead_time_days"]
        expected = sum(weights[s] * chosen[s] for s in got) / sum(weights.values())
        assert expected == pytest.approx(site["expected"], abs=2e-3) and expected >= 0.96 - 1e-3
        # the why, in the journaled policy_tuned and in planner.explain
        said = "chosen for the site's 96.0%"
        assert any(said in r for r in got["LUMPY"]["latest"]["reasons"])
        assert any(said in r and "as much site fill, weighed by the" in r for r in got["SMOOTH"]["latest"]["reasons"])
        journaled = {sku: json.loads(tuned_rows(d, sku)[-1][1])["reasons"] for sku in ("LUMPY", "OWN")}
        assert any(said in r for r in journaled["LUMPY"])
        assert any("fill rate 99.0% (this SKU's own target, set by a person)" in r for r in journaled["OWN"])
        c.call("planner.run", sku="LUMPY")
        again = c.call("planner.explain", sku="LUMPY")["latest"]["service_level"]
        assert again == pytest.approx(chosen["LUMPY"], abs=1e-4)
        # back to the site's target: the SKU joins the allocation again
        c.call("sku.configure", sku="OWN", service_level="site")
        c.call("planner.run")
        own = c.call("planner.explain", sku="OWN")
        assert own["service_target"] == "site" and own["latest"]["service_level"] != 0.99


def test_service_target_sku_plans_every_sku_at_the_sites_level(make_daemon):
    d = make_daemon(config('service_target = "sku"\nservice_level = 0.96'))
    with d.client() as c:
        for sku in ("SMOOTH", "LUMPY"):
            c.call("sku.configure", sku=sku, mode="auto", reorder_point=10, order_up_to=30)
        for day in range(21):
            submit(c, f"S-{day}", line("SMOOTH", PATTERN[day % 7]))
            if day % 4 == 0:
                submit(c, f"L-{day}", line("LUMPY", 10 + 10 * (day % 3)))
            c.call("clock.advance", seconds=DAY)
        assert c.call("planner.run")["site"] is None
        for sku in ("SMOOTH", "LUMPY"):
            assert c.call("planner.explain", sku=sku)["latest"]["service_level"] == 0.96
