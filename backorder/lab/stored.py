"""Finished lab runs kept on disk, so a long lab (the full benchmark: 120 runs, hours) can
stop and go on where it stopped (``backorder lab --resume``, ``bench/decision.py
--resume``).

Each finished run is one small JSON file under ``OUT/done/``: the site it replayed (the
scenario spec with its seed), whether notices were journaled, a digest of the code that
ran it, the run's record and the referee's figures. A run is reused only if all of those
match: a file written by other code is run again, never mixed into a report (a reader
could not tell which figures came from which daemon)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from functools import cache
from pathlib import Path
from typing import Any

import backorder
from backorder.lab.generator import ScenarioSpec


@cache
def code_digest() -> str:
    """A digest of the package's source: the daemon, the lab's driver and referee all in it
    (not the installed libraries: a run is not told from one made with another numpy)."""
    root = Path(backorder.__file__).parent
    h = hashlib.blake2b(digest_size=12)
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()


_DIFFERS = {"spec": "made on another site", "notices": "made with other --notices", "code": "made by other code"}


def path_for(out: Path, policy: str, seed: int) -> Path:
    return out / "done" / f"{policy}-seed{seed}.json"


def _key(spec: ScenarioSpec, notices: bool) -> dict[str, Any]:
    return {"spec": asdict(spec), "notices": notices, "code": code_digest()}


def load(out: Path, spec: ScenarioSpec, policy: str, *, notices: bool, per_sku: bool) -> tuple[dict | None, str]:
    """The stored run of ``policy`` on ``spec``'s site (its seed set), or None and why not."""
    path = path_for(out, policy, spec.seed)  # type: ignore[arg-type]
    try:
        stored = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None, "not run yet"
    except (OSError, ValueError) as exc:
        return None, f"unreadable ({exc})"
    if not (
        isinstance(stored, dict) and isinstance(stored.get("record"), dict) and isinstance(stored.get("figures"), dict)
    ):
        return (
            None,
            "unreadable (not a stored run: no record and figures)",
        )  # a file edited or written by something else
    for name, want in _key(spec, notices).items():
        if stored.get(name) != want:
            return None, _DIFFERS[name]
    if per_sku and "per_sku" not in stored["figures"]:
        return None, "it has no per-SKU figures"
    return stored, "reused"


def save(out: Path, spec: ScenarioSpec, policy: str, record: dict, figures: dict, *, notices: bool) -> None:
    """Keep a finished run (written to a temp name and renamed: a lab killed while writing
    leaves the old file or the new one, never half of one)."""
    path = path_for(out, policy, spec.seed)  # type: ignore[arg-type]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({**_key(spec, notices), "record": record, "figures": figures}) + "\n")
    os.replace(tmp, path)
