"""Finished lab runs kept on disk (``backorder.lab.stored``): reused only when the same
code made them on the same site; anything else is run again."""

from __future__ import annotations

import json
from dataclasses import replace

from backorder.lab import stored
from backorder.lab.generator import ScenarioSpec

SPEC = ScenarioSpec(skus=10, days=5, warmup_days=2, seed=3)
RECORD = {"policy": "static-7", "seed": 3, "seconds": 1.5}
FIGURES = {"fill_rate": 0.9, "on_hand_units": 12.5}


def test_a_kept_run_comes_back_as_it_was_saved(tmp_path):
    stored.save(tmp_path, SPEC, "static-7", RECORD, FIGURES, notices=False)
    found, why = stored.load(tmp_path, SPEC, "static-7", notices=False, per_sku=False)
    assert why == "reused"
    assert found is not None and found["record"] == RECORD and found["figures"] == FIGURES
    assert found["code"] == stored.code_digest()
    assert not list(tmp_path.glob("done/*.tmp"))  # written under a temp name, then renamed


def test_another_site_seed_notices_or_policy_is_not_reused(tmp_path):
    stored.save(tmp_path, SPEC, "static-7", RECORD, FIGURES, notices=False)
    assert stored.load(tmp_path, replace(SPEC, days=6), "static-7", notices=False, per_sku=False) == (
        None,
        "made on another site",
    )
    assert stored.load(tmp_path, SPEC, "static-7", notices=True, per_sku=False) == (None, "made with other --notices")
    assert stored.load(tmp_path, replace(SPEC, seed=4), "static-7", notices=False, per_sku=False) == (
        None,
        "not run yet",
    )
    assert stored.load(tmp_path, SPEC, "static-5", notices=False, per_sku=False) == (None, "not run yet")


def test_a_split_by_group_needs_the_per_sku_figures(tmp_path):
    stored.save(tmp_path, SPEC, "static-7", RECORD, FIGURES, notices=False)
    assert stored.load(tmp_path, SPEC, "static-7", notices=False, per_sku=True) == (
        None,
        "it has no per-SKU figures",
    )
    stored.save(tmp_path, SPEC, "static-7", RECORD, {**FIGURES, "per_sku": {"S1": {}}}, notices=False)
    assert stored.load(tmp_path, SPEC, "static-7", notices=False, per_sku=True)[1] == "reused"


def test_a_torn_file_is_run_again(tmp_path):
    stored.save(tmp_path, SPEC, "static-7", RECORD, FIGURES, notices=False)
    path = stored.path_for(tmp_path, "static-7", 3)
    path.write_text(path.read_text()[:40])
    found, why = stored.load(tmp_path, SPEC, "static-7", notices=False, per_sku=False)
    assert found is None and why.startswith("unreadable")


def test_a_file_that_is_json_but_not_a_stored_run_is_run_again(tmp_path):
    stored.save(tmp_path, SPEC, "static-7", RECORD, FIGURES, notices=False)
    path = stored.path_for(tmp_path, "static-7", 3)
    kept = json.loads(path.read_text())
    for other in ([kept], {**kept, "figures": None}, {k: v for k, v in kept.items() if k != "record"}, "static-7"):
        path.write_text(json.dumps(other))
        found, why = stored.load(tmp_path, SPEC, "static-7", notices=False, per_sku=True)
        assert found is None and why.startswith("unreadable"), other
