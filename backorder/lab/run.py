"""Run the lab: for each seed, generate the site once, replay it under every policy
(each on a fresh daemon and journal), referee each journal, and write the report
(``report.json`` and ``report.md`` in the output folder)."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from backorder.config.settings import load_settings
from backorder.lab import groups, policies, report, stored
from backorder.lab.driver import CONFIG, Driver, PolicyUnavailable, RunInfo, stop
from backorder.lab.generator import ScenarioSpec, Site
from backorder.lab.referee import referee


def run_one(
    site: Site,
    policy: policies.Policy,
    workdir: Path,
    *,
    keep: bool = False,
    on_start: Callable[[RunInfo], None] | None = None,
    notices: bool = False,
    per_sku: bool = False,
) -> tuple[RunInfo, dict[str, Any]]:
    """Replay ``site`` under ``policy`` and referee the journal. With ``keep`` the daemon
    still serves on return (the journal is read while it runs); else it is stopped
    first. ``per_sku``: the figures include each SKU's (the referee's). Raises
    PolicyUnavailable."""
    info = Driver(site, policy, workdir, on_start=on_start, notices=notices).run()
    if not keep:
        stop(info)
    t0 = time.perf_counter()
    figs = referee(info.db, info.measure_from, info.end_ts, load_settings(info.db.parent / CONFIG), per_sku=per_sku)
    figs["referee_seconds"] = round(time.perf_counter() - t0, 2)
    return info, figs


def _drop(workdir: Path, keep_journals: bool) -> None:
    if not keep_journals:
        shutil.rmtree(workdir, ignore_errors=True)


def run_lab(
    spec: ScenarioSpec,
    names: list[str],
    seeds: list[int],
    out: Path,
    *,
    keep: bool = False,
    keep_journals: bool = False,
    say: Callable[[str], None] = print,
    notices: bool = False,
    by_group: bool = False,
    resume: bool = False,
) -> dict[str, Any]:
    """Every policy on every seed; returns the report (also written under ``out``).
    ``keep`` leaves the last run's daemon serving (and its journal in place).
    ``by_group``: the report also splits each seed's figures by kind of SKU
    (``groups``: demand pattern, supplier pace, quoted lead time). Every finished run is
    kept under ``out/done`` (``stored``); ``resume`` reuses those this code made on the
    same site instead of running them again."""
    chosen = policies.parse(names)
    out.mkdir(parents=True, exist_ok=True)
    stored.code_digest()  # of the source as it is now, when the runs start (it is cached)
    runs: list[dict[str, Any]] = []
    by_seed: dict[int, dict[str, dict]] = {}
    unavailable: dict[str, str] = {}
    split: dict[int, dict[str, Any]] = {}
    kept: tuple[RunInfo, Path] | None = None  # with ``keep``: the last run's daemon, still serving
    for seed in seeds:
        t0 = time.perf_counter()
        site_spec = replace(spec, seed=seed)
        site = Site.generate(site_spec)
        say(f"seed {seed}: {len(site.orders):,} orders, {site.line_count():,} lines ({time.perf_counter() - t0:.1f} s)")
        per_sku: dict[str, dict] = {}
        for policy in chosen:
            if policy.name in unavailable:
                continue
            workdir = out / "runs" / f"{policy.name}-seed{seed}"
            if resume and not (keep and seed == seeds[-1] and policy is chosen[-1]):  # --keep's daemon: run
                done, why = stored.load(out, site_spec, policy.name, notices=notices, per_sku=by_group)
                if done is not None:
                    say(f"  {policy.name}: reused {stored.path_for(out, policy.name, seed)}")
                    figs = done["figures"]
                    per = figs.pop("per_sku", None)
                    if by_group:
                        per_sku[policy.name] = per
                    by_seed.setdefault(seed, {})[policy.name] = figs
                    runs.append({**done["record"], "reused": True, "figures": figs})
                    continue
                say(f"  {policy.name}: running ({why})")

            def started(info: RunInfo, name: str = policy.name) -> None:
                say(f"  {name}: daemon on {info.socket} (watch: backorder tui --socket {info.socket})")

            try:
                info, figs = run_one(
                    site, policy, workdir, keep=keep, on_start=started, notices=notices, per_sku=by_group
                )
            except PolicyUnavailable as exc:
                unavailable[policy.name] = str(exc)
                say(f"  {policy.name}: not available ({exc})")
                continue
            say(
                f"  {policy.name}: {info.lines_sent:,} lines in {info.seconds:.1f} s; fill {figs['fill_rate']}, "
                f"on hand {figs['on_hand_units']}, p95 age {figs['backorder_age_p95_days']} d"
            )
            stored.save(out, site_spec, policy.name, info.record(), figs, notices=notices)
            if by_group:
                per_sku[policy.name] = figs.pop("per_sku")
            by_seed.setdefault(seed, {})[policy.name] = figs
            runs.append({**info.record(), "figures": figs})
            if kept is not None:  # a newer run is the one to keep
                stop(kept[0])
                _drop(kept[1], keep_journals)
            if keep:
                kept = (info, workdir)
            else:
                _drop(workdir, keep_journals)
        if by_group:
            split[seed] = groups.split(site.skus, per_sku)
    if kept is not None:
        info = kept[0]
        assert info.daemon is not None and info.daemon.proc is not None
        say(f"  kept running: backorder tui --socket {info.socket}  (stop it: kill {info.daemon.proc.pid})")
    result: dict[str, Any] = {
        "spec": asdict(spec) | {"seed": None},
        "seeds": seeds,
        "policies": [p.name for p in chosen],
        "unavailable": unavailable,
        "runs": runs,
    }
    result["summary"] = report.summarise(by_seed)
    if by_group:
        result["groups"] = split
    (out / "report.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "report.md").write_text(report.markdown(result))
    return result
