"""The layering of the package, checked over its import graph.

Every module under ``backorder/`` is parsed with ``ast`` (nothing is imported), and every
``backorder.*`` import it makes is collected: ``import backorder.x``, ``from backorder
import x``, ``from backorder.x import y``, relative imports, and imports anywhere in the
file: inside functions and inside ``if TYPE_CHECKING:`` blocks too. A type-only import
still ties the importer to the imported module's names (a rename breaks it, a type
checker follows it), so for the layering it counts the same.

The rules:

* the core (pure rules and actors, the canonical order, the wire protocol and the
  neutral leaves) imports nothing of the I/O packages (daemon, intake, notify), the
  console (tui), nor the command line and the demo;
* config imports only config and the neutral leaves (it is read by everything, so it
  must depend on nothing of the product), with no cycle inside it;
* the neutral leaves import only each other;
* the journal's events own their structs: they import neither the wire protocol nor the
  canonical order, so changing either cannot change the journal format;
* the wire protocol and everything of the product it imports stay free of trio: the
  console (asyncio) imports the protocol.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import backorder

ROOT = Path(backorder.__file__).parent

# Neutral leaves: shared by every layer, depending on none.
LEAVES = {"backorder.numbers", "backorder.timeutil", "backorder.errors", "backorder.email_address", "backorder.clock"}
CORE_PREFIXES = ("backorder.actors",)
CORE_MODULES = {"backorder.order", "backorder.protocol", *LEAVES}
FORBIDDEN_IN_CORE = (
    "backorder.daemon",
    "backorder.intake",
    "backorder.notify",
    "backorder.threepl",
    "backorder.tui",
    "backorder.cli",
    "backorder.demo",
)


def module_name(path: Path) -> str:
    parts = ["backorder", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_package(name: str) -> bool:
    return MODULES.get(name, Path()).name == "__init__.py"


def imports_of(name: str, source: str | None = None) -> set[str]:
    """The ``backorder.*`` modules that module ``name`` imports, wherever in the file."""
    tree = ast.parse(source if source is not None else MODULES[name].read_text(), str(MODULES.get(name)))
    package = name if _is_package(name) else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            for a in node.names:
                # ``from backorder import protocol``: the module imported is backorder.protocol
                sub = f"{mod}.{a.name}"
                found.add(sub if sub in MODULES else mod)
    return {m for m in found if m == "backorder" or m.startswith("backorder.")}


def _under(module: str, prefixes) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def is_core(name: str) -> bool:
    return name in CORE_MODULES or _under(name, CORE_PREFIXES)


def violations() -> dict[str, list[str]]:
    """Every broken rule, as rule -> ["importer -> imported", ...]."""
    out: dict[str, list[str]] = {"core": [], "config": [], "leaves": []}
    for name in MODULES:
        for imp in sorted(imports_of(name)):
            if is_core(name) and _under(imp, FORBIDDEN_IN_CORE):
                out["core"].append(f"{name} -> {imp}")
            if _under(name, ("backorder.config",)) and not (_under(imp, ("backorder.config",)) or imp in LEAVES):
                out["config"].append(f"{name} -> {imp}")
            if name in LEAVES and imp not in LEAVES:
                out["leaves"].append(f"{name} -> {imp}")
    return out


def test_the_graph_sees_every_kind_of_import():
    """The collector itself: a rule over a graph that misses imports would pass vacuously."""
    source = (
        "from __future__ import annotations\n"
        "import backorder.daemon.journal\n"
        "from backorder import protocol as p, numbers\n"
        "from . import events\n"
        "from ..intake import adapters\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from backorder.notify.notifier import Notifier\n"
        "def f():\n"
        "    from backorder.tui.live import Changes\n"
    )
    assert imports_of("backorder.actors.engine", source) == {
        "backorder.daemon.journal",
        "backorder.protocol",
        "backorder.numbers",
        "backorder.actors.events",
        "backorder.intake.adapters",
        "backorder.notify.notifier",
        "backorder.tui.live",
    }
    assert "backorder.actors.engine" in MODULES and is_core("backorder.actors.engine")
    assert all(m in MODULES for m in LEAVES | {"backorder.order", "backorder.protocol"})


@pytest.mark.parametrize("rule", ["core", "config", "leaves"])
def test_layering(rule):
    assert violations()[rule] == []


def test_the_journal_events_do_not_import_the_wire_or_the_canonical_order():
    assert imports_of("backorder.actors.events") & {"backorder.protocol", "backorder.order"} == set()


def test_config_has_no_import_cycle():
    graph = {
        n: {i for i in imports_of(n) if _under(i, ("backorder.config",))}
        for n in MODULES
        if _under(n, ("backorder.config",))
    }

    def reach(start: str) -> set[str]:
        seen, todo = set(), list(graph.get(start, ()))
        while todo:
            n = todo.pop()
            if n not in seen:
                seen.add(n)
                todo.extend(graph.get(n, ()))
        return seen

    assert [n for n in graph if n in reach(n)] == []


def test_protocol_and_what_it_imports_stay_free_of_trio():
    seen, todo = set(), ["backorder.protocol"]
    while todo:
        name = todo.pop()
        if name in seen or name not in MODULES:
            continue
        seen.add(name)
        todo.extend(imports_of(name))
    for name in seen:
        tree = ast.parse(MODULES[name].read_text())
        top = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names} | {
            (n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and not n.level
        }
        assert not top & {"trio", "textual"}, name


def test_config_channel_names_are_intake_adapters():
    """config keeps the channel names (it imports nothing of intake); intake's adapter
    table must name exactly those."""
    from backorder.config.settings import CHANNEL_NAMES
    from backorder.intake.adapters import CHANNELS

    assert set(CHANNELS) == CHANNEL_NAMES


# The forecasting stack: the planner's worker process loads it, the daemon never does
# (a year of statsforecast imports costs ~1.3 s and ~100 MB; a model fit must never run on
# the trio loop).
FORECASTING = {"numpy", "scipy", "pandas", "statsforecast", "numba"}


def _closure(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen or name not in MODULES:
            continue
        seen.add(name)
        todo.extend(imports_of(name))
    return seen


def _third_party(name: str) -> set[str]:
    tree = ast.parse(MODULES[name].read_text())
    return {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names} | {
        (n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and not n.level
    }


def test_the_daemon_never_imports_the_forecasting_stack():
    """Statically: nothing the daemon's composition root reaches (imports anywhere in a
    file, lazy ones too) imports the planner's worker or numpy / scipy / pandas /
    statsforecast; the worker does (so the check is not vacuous)."""
    daemon = _closure("backorder.daemon.app")
    assert "backorder.daemon.planner" in daemon and "backorder.planner.wire" in daemon
    assert "backorder.planner.worker" not in daemon
    assert {name: _third_party(name) & FORECASTING for name in daemon if _third_party(name) & FORECASTING} == {}
    assert _third_party("backorder.planner.worker") & FORECASTING


def test_a_started_daemon_module_set_has_no_forecasting_package():
    """Dynamically: importing the daemon (and the op handlers, the planner supervisor)
    loads none of the forecasting packages."""
    import subprocess
    import sys

    code = (
        "import sys, backorder.daemon.app, backorder.daemon.planner, backorder.cli; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(FORECASTING)!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_daemon_and_the_core_never_import_the_lab():
    """The lab (backorder.lab) uses numpy; the trio process must not pay for it, nor
    depend on the lab's code: the daemon and the core never import it, directly or not."""
    roots = [n for n in MODULES if _under(n, ("backorder.daemon", "backorder.actors"))]
    seen: set[str] = set()
    for root in roots:
        seen |= _closure(root)
    assert roots and not [n for n in seen if _under(n, ("backorder.lab",))]
    assert "backorder.lab.generator" in MODULES  # the rule watches a package that exists
