"""The table of ops (``protocol.OP_TABLE``) against everything derived from it or kept
beside it: the request structs of the protocol, the daemon's handlers, the router's
routes, the write list, and the "Operations" table of docs/protocol.md."""

from __future__ import annotations

import inspect
import re
import typing
from pathlib import Path

from backorder import protocol as p
from backorder.actors import router
from backorder.daemon import handlers

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def _request_structs() -> set[type]:
    """Every op struct the protocol module defines (a tagged subclass of Request; a private
    one, like ``_PolicyNumbers``, is a base of ops, not an op)."""
    return {
        cls
        for cls in vars(p).values()
        if inspect.isclass(cls) and issubclass(cls, p.Request) and cls is not p.Request and cls.__name__[0] != "_"
    }


def test_every_request_struct_has_one_row_and_one_handler():
    rows = [op.request for op in p.OP_TABLE]
    assert len(rows) == len(set(rows)), "a struct with two rows"
    assert set(rows) == _request_structs(), "a request struct without a row, or a row for something else"
    assert set(handlers.HANDLERS) == set(rows), "ops without a handler, or handlers for no op"


def test_names_union_and_write_list_come_from_the_table():
    assert p.OPS == {op.name for op in p.OP_TABLE}
    assert all(op.name == op.request.__struct_config__.tag for op in p.OP_TABLE)
    assert set(typing.get_args(p.AnyRequest)) == {op.request for op in p.OP_TABLE}
    assert p.WRITE_OPS == {op.name for op in p.OP_TABLE if op.role == "write"}
    assert {op.role for op in p.OP_TABLE} == {"read", "write"}


def test_each_route_is_kept_by_its_handler():
    for op in p.OP_TABLE:
        handler = handlers.HANDLERS[op.request]
        if op.route in p.ACTOR_ROUTES:  # a change the actor that owns it decides
            assert handler is handlers.to_actor, op.name
            assert router.ROUTES[op.request] is router._SENDERS[op.route], op.name
            assert op.role == "write", op.name
        else:
            assert handler is not handlers.to_actor and op.request not in router.ROUTES, op.name
        if op.route == "intake":
            assert handler.__module__ == "backorder.intake.ops", op.name
        if op.route == "read":  # answered from the model: nothing is journaled
            assert op.role == "read", op.name


def test_every_handler_says_what_it_does():
    for cls, handler in handlers.HANDLERS.items():
        doc = inspect.getdoc(handler)
        assert doc and "\n" not in doc, f"{cls.__name__}: {handler.__qualname__} needs a one-line docstring"


def _doc_table() -> list[tuple[str, str, str]]:
    section = DOC.read_text(encoding="utf-8").split("\n## Operations\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| \[`([a-z._]+)`\]\(#([a-z_]+)\) \| ([a-z]+) \|", section, flags=re.M)


def test_protocol_doc_lists_every_op_with_its_role():
    rows = _doc_table()
    assert len(rows) >= 30, "no Operations table found in docs/protocol.md: is the parser broken?"
    names = [name for name, _, _ in rows]
    assert len(names) == len(set(names)), "an op listed twice in docs/protocol.md"
    assert {name: role for name, _, role in rows} == {op.name: op.role for op in p.OP_TABLE}
    for name, anchor, _ in rows:  # the link goes to the op's own section
        assert anchor == name.replace(".", ""), name
