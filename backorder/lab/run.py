"""Run the lab: for each seed, generate the site once, replay it under every policy
(each on a fresh daemon and journal), referee each journal, and write the report
(``report.json`` and ``report.md`` in the output folder)."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, replace
from functools import lru_cache
from multiprocessing import get_context
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
    jobs: int = 1,
) -> dict[str, Any]:
    """Every policy on every seed; returns the report (also written under ``out``).
    ``keep`` leaves the last run's daemon serving (and its journal in place).
    ``by_group``: the report also splits each seed's figures by kind of SKU
    (``groups``: demand pattern, supplier pace, quoted lead time). Every finished run is
    kept under ``out/done`` (``stored``); ``resume`` reuses those this code made on the
    same site instead of running them again. ``jobs``: runs at once, each in a process
    of its own (a run is one daemon and its driver); the report is the same as with one."""
    chosen = policies.parse(names)
    if keep and jobs > 1:
        raise ValueError("--keep leaves one run's daemon serving: it needs --jobs 1")
    out.mkdir(parents=True, exist_ok=True)
    stored.code_digest()  # of the source as it is now, when the runs start (it is cached)
    done: dict[tuple[int, str], dict[str, Any]] = {}  # (seed, policy) -> {"record", "figures", ...}
    unavailable: dict[str, str] = {}
    skus_of: dict[int, Any] = {}
    todo: list[tuple[ScenarioSpec, policies.Policy]] = []
    kept: RunInfo | None = None
    for seed in seeds:
        site_spec = replace(spec, seed=seed)
        t0 = time.perf_counter()
        site = _site(site_spec)  # generated once per seed (each pooled run makes its own)
        say(f"seed {seed}: {len(site.orders):,} orders, {site.line_count():,} lines ({time.perf_counter() - t0:.1f} s)")
        skus_of[seed] = site.skus
        for policy in chosen:
            if resume and not (keep and seed == seeds[-1] and policy is chosen[-1]):  # --keep's daemon: run
                found, why = stored.load(out, site_spec, policy.name, notices=notices, per_sku=by_group)
                if found is not None:
                    say(f"  {policy.name}: reused {stored.path_for(out, policy.name, seed)}")
                    done[seed, policy.name] = {**found, "reused": True}
                    continue
                say(f"  {policy.name}: running ({why})")
            todo.append((site_spec, policy))
        if jobs == 1:  # this seed's runs now, while its site is at hand
            for site_spec, policy in todo:
                if policy.name in unavailable:
                    continue
                last = keep and seed == seeds[-1] and (site_spec, policy) == todo[-1]
                try:
                    info, figs = _run_kept(
                        site, site_spec, policy, out, notices, by_group, keep_journals, say, keep=last
                    )
                except PolicyUnavailable as exc:
                    unavailable[policy.name] = str(exc)
                    say(f"  {policy.name}: not available ({exc})")
                    continue
                done[seed, policy.name] = {"record": info.record(), "figures": figs}
                kept = info if last else None
            todo = []
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            futures = {
                pool.submit(_run_pooled, site_spec, policy.name, out, notices, by_group, keep_journals): (
                    site_spec.seed,
                    policy.name,
                )
                for site_spec, policy in todo
            }
            for future in as_completed(futures):
                seed, name = futures[future]
                try:
                    record, figs = future.result()
                except PolicyUnavailable as exc:
                    unavailable[name] = str(exc)
                    say(f"  {name} seed {seed}: not available ({exc})")
                    continue
                done[seed, name] = {"record": record, "figures": figs}
    runs: list[dict[str, Any]] = []
    by_seed: dict[int, dict[str, dict]] = {}
    split: dict[int, dict[str, Any]] = {}
    for seed in seeds:
        per_sku: dict[str, dict] = {}
        for policy in chosen:
            found = done.get((seed, policy.name))
            if found is None or policy.name in unavailable:
                continue
            figs = dict(found["figures"])
            per = figs.pop("per_sku", None)
            if by_group:
                per_sku[policy.name] = per
            by_seed.setdefault(seed, {})[policy.name] = figs
            runs.append({**found["record"], **({"reused": True} if found.get("reused") else {}), "figures": figs})
        if by_group:
            split[seed] = groups.split(skus_of[seed], per_sku)
    if kept is not None:
        assert kept.daemon is not None and kept.daemon.proc is not None
        say(f"  kept running: backorder tui --socket {kept.socket}  (stop it: kill {kept.daemon.proc.pid})")
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


def _run_kept(
    site: Site,
    site_spec: ScenarioSpec,
    policy: policies.Policy,
    out: Path,
    notices: bool,
    per_sku: bool,
    keep_journals: bool,
    say: Callable[[str], None],
    *,
    keep: bool = False,
) -> tuple[RunInfo, dict[str, Any]]:
    """One run: replayed, refereed, kept under ``out/done``; its folder dropped unless
    ``keep_journals`` or ``keep`` (then its daemon still serves)."""
    workdir = out / "runs" / f"{policy.name}-seed{site_spec.seed}"

    def started(info: RunInfo) -> None:
        say(f"  {policy.name}: daemon on {info.socket} (watch: backorder tui --socket {info.socket})")

    info, figs = run_one(site, policy, workdir, keep=keep, on_start=started, notices=notices, per_sku=per_sku)
    say(
        f"  {policy.name} seed {site_spec.seed}: {info.lines_sent:,} lines in {info.seconds:.1f} s; "
        f"fill {figs['fill_rate']}, on hand {figs['on_hand_units']}, p95 age {figs['backorder_age_p95_days']} d"
    )
    stored.save(out, site_spec, policy.name, info.record(), figs, notices=notices)
    if not keep:
        _drop(workdir, keep_journals)
    return info, figs


@lru_cache(maxsize=1)
def _site(site_spec: ScenarioSpec) -> Site:
    return Site.generate(site_spec)


def _run_pooled(
    site_spec: ScenarioSpec, name: str, out: Path, notices: bool, per_sku: bool, keep_journals: bool
) -> tuple[dict, dict]:
    """``_run_kept`` in a process of the pool (which makes the site once per seed)."""
    info, figs = _run_kept(
        _site(site_spec),
        site_spec,
        policies.parse([name])[0],
        out,
        notices,
        per_sku,
        keep_journals,
        lambda line: print(line, flush=True),
    )
    return info.record(), figs
