"""Combining lab reports run in parts (``report.combine``, ``bench/lab_combine.py``), on the
stored full-size report of the mixed site: split by seed and combined again, it must give
the summary ``run_lab`` computed over all three seeds."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from backorder.lab import report

ROOT = Path(__file__).resolve().parents[2]
STORED = ROOT / "bench" / "results" / "lab_full_mixed_3seeds" / "report.json"


def stored() -> dict:
    return json.loads(STORED.read_text())


def part(whole: dict, seeds: set[int]) -> dict:
    """The report a run of only these seeds would have written (its summary left out:
    combine computes its own)."""
    return {
        "spec": whole["spec"],
        "seeds": sorted(seeds),
        "policies": whole["policies"],
        "unavailable": whole["unavailable"],
        "runs": [r for r in whole["runs"] if r["seed"] in seeds],
        "groups": copy.deepcopy({k: v for k, v in whole["groups"].items() if int(k) in seeds}),
    }


def test_seeds_run_in_parts_combine_to_the_summary_of_one_run():
    whole = stored()
    later = part(whole, {3})
    for dims in later["groups"].values():  # a part that ran its policies in another order
        for rows in dims.values():
            for row in rows.values():
                row["policies"] = dict(reversed(row["policies"].items()))
    combined = report.combine([later, part(whole, {1, 2})])  # in any order
    assert combined["seeds"] == [1, 2, 3]
    assert combined["policies"] == whole["policies"]
    assert [(r["seed"], r["policy"]) for r in combined["runs"]] == [(r["seed"], r["policy"]) for r in whole["runs"]]
    # a JSON round trip, as the stored one had (its per-seed keys are strings)
    assert json.loads(json.dumps(combined["summary"])) == whole["summary"]
    assert combined["groups"] == whole["groups"]
    rows = combined["groups"]["3"]["demand pattern"]
    assert all(list(row["policies"]) == whole["policies"] for row in rows.values())  # shown in the report's order
    md = report.markdown(combined)
    p95 = whole["summary"]["per_seed"]["3"]["planner-fifo"]["backorder_age_p95_days_vs_baseline"]
    row = next(line for line in md.splitlines() if line.startswith("| planner-fifo seed 3 | "))
    assert row.split(" | ")[3] == f"{p95:+.1%}"  # its p95 age against static-7, seed 3's own


def test_a_policy_only_some_seeds_have_can_be_dropped_but_not_the_sweep():
    whole = stored()
    combined = report.combine([part(whole, {1}), part(whole, {2, 3})], drop=frozenset({"planner-fifo before"}))
    assert "planner-fifo before" not in combined["policies"]
    assert all(r["policy"] != "planner-fifo before" for r in combined["runs"])
    assert "planner-fifo before" not in combined["summary"]["policies"]
    for dims in combined["groups"].values():
        for rows in dims.values():
            assert all("planner-fifo before" not in row["policies"] for row in rows.values())
    # the planner's comparisons do not depend on the dropped policy
    assert combined["summary"]["policies"]["planner-fifo"] == whole["summary"]["policies"]["planner-fifo"]
    with pytest.raises(ValueError, match="static sweep cannot be dropped"):
        report.combine([whole], drop=frozenset({"static-7"}))


def test_the_same_run_twice_or_another_site_is_refused():
    whole = stored()
    with pytest.raises(ValueError, match="seed 2 is in two reports"):
        report.combine([part(whole, {1, 2}), part(whole, {2, 3})])
    other = part(whole, {3})
    other["spec"] = {**other["spec"], "skus": 200}
    with pytest.raises(ValueError, match="different sites"):
        report.combine([part(whole, {1, 2}), other])


def test_the_script_writes_the_combined_report(tmp_path):
    whole = stored()
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(part(whole, {1})))
    b.write_text(json.dumps(part(whole, {2, 3})))
    out = tmp_path / "out"
    script = ROOT / "bench" / "lab_combine.py"
    done = subprocess.run([sys.executable, script, out, a, b, "--drop", "planner-fifo before"], capture_output=True)
    assert done.returncode == 0, done.stderr
    written = json.loads((out / "report.json").read_text())
    assert written["seeds"] == [1, 2, 3] and "planner-fifo before" not in written["policies"]
    assert "seeds 1, 2, 3" in (out / "report.md").read_text()
    refused = subprocess.run([sys.executable, script, out, a, a], capture_output=True, text=True)
    assert refused.returncode != 0 and "in two reports" in refused.stderr
