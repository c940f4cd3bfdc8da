"""The refusal classes: every raise site names a code its class declares, catch sites keep
catching ``Rejected``, and no library module ends the process (only the CLI does)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from backorder import errors
from backorder.actors import order_rules
from backorder.actors.model import World
from backorder.config.settings import Settings
from backorder.protocol import decode_request

PACKAGE = Path(__file__).resolve().parents[2] / "backorder"
BY_NAME = {kind.__name__: kind for kind in errors.KINDS}
# ``Kind("code"`` wherever it is raised, returned or assigned with a literal code (not in prose)
SITE = re.compile(rf'(?:\braise|\breturn|=|,|\()\s*({"|".join(BY_NAME)}|Rejected)\(\s*"([a-z_]+)"')


def _sites() -> list[tuple[str, int, str, str]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "errors.py":
            continue
        text = path.read_text(encoding="utf-8")  # whole files: a formatter may wrap the code onto its own line
        for m in SITE.finditer(text):
            n = text.count("\n", 0, m.start(1)) + 1
            out.append((f"{path.relative_to(PACKAGE.parent)}:{n}", n, m.group(1), m.group(2)))
    return out


def test_every_literal_raise_site_names_a_code_of_its_own_class():
    sites = _sites()
    assert len(sites) > 100, "the scan found too few raise sites: is the pattern broken?"
    misfiled = [
        f"{where}: {cls}({code!r}) belongs to {next((k.__name__ for k in errors.KINDS if code in k.codes), 'no class')}"
        for where, _, cls, code in sites
        if cls == "Rejected" or code not in BY_NAME[cls].codes
    ]
    assert misfiled == []


def test_every_class_says_when_it_is_raised_and_owns_codes():
    for kind in errors.KINDS:
        assert issubclass(kind, errors.Rejected)
        assert kind.__doc__ and len(kind.__doc__) > 40, kind
        assert kind.codes and all(re.fullmatch(r"[a-z]+(_[a-z]+)*", c) for c in kind.codes), kind


def test_a_precise_refusal_is_still_caught_as_rejected_with_its_code_and_message():
    with pytest.raises(errors.Rejected) as info:
        order_rules.cancel(World(Settings()), "O-404", "no reason", lambda event: None, 0.0)
    assert type(info.value) is errors.NotFound
    assert info.value.code == "unknown_order" and info.value.code in errors.NotFound.codes
    assert info.value.message == str(info.value) == "no order 'O-404'"


def test_a_malformed_line_is_a_protocol_error():
    with pytest.raises(errors.ProtocolError) as info:
        decode_request(b'{"op": ')
    assert info.value.code == "malformed_json"
    with pytest.raises(errors.ProtocolError) as info:
        decode_request(b'{"op": "stock.take"}')
    assert info.value.code == "unknown_op"
    with pytest.raises(errors.InvalidInput) as info:
        decode_request(b'{"op": "order.cancel"}')
    assert info.value.code == "invalid_request"


# The commands: they alone decide the process's exit status (demo.main is ``backorder demo``;
# daemon/snapchild.py is the process the journal spawns to write a snapshot).
COMMANDS = {"backorder/cli.py", "backorder/__main__.py", "backorder/demo.py", "backorder/daemon/snapchild.py"}


def test_no_library_module_raises_system_exit():
    """Only the command line decides the process's exit status and prints to the operator;
    library code raises a precise exception the CLI turns into that."""
    found = sorted(
        str(path.relative_to(PACKAGE.parent))
        for path in PACKAGE.rglob("*.py")
        if str(path.relative_to(PACKAGE.parent)) not in COMMANDS
        and re.search(r"\bSystemExit\b|\bsys\.exit\(", path.read_text(encoding="utf-8"))
    )
    assert found == []
