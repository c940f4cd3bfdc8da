"""docs/protocol.md is executable: every example in it runs, in order, against one real daemon.

An example is a fenced ```json block whose lines start with ``→`` (a request, sent verbatim
as one NDJSON line) or ``←`` (a reply or an event line; it may continue over the following
lines, so replies can be pretty-printed). Requests written next to each other are sent
together (pipelined); a reply is matched by its ``id``, whatever order the replies come
back in. An event line (``{"event": ..., "seq": ...}``) must show up on the connection,
in the order documented, at some point after the block's requests were sent.

A documented reply is a pattern: ``ok`` and ``error.code`` must be equal; a documented
``result`` may leave keys out (every key it shows must match); ``"…"`` or ``"<any>"`` match
any value; a list must have the documented length unless its last element is ``"…"``
(then it is a prefix). Error messages are for humans and are not compared.

A block preceded by ``<!-- known-bug: ... -->`` documents the intended behaviour that the
daemon does not have yet: it is left out of the story and runs on its own daemon as a
strict xfail, so fixing the bug turns that test red until the marker is removed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from backorder import errors
from backorder import protocol as p
from backorder.actors.events import TOPICS
from backorder.client import Client
from backorder.launcher import wait_until

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "protocol.md"
WILDCARDS = ("…", "<any>")

# Codes that no example in the doc can produce, and where each is checked instead.
CODES_TESTED_HERE = {"line_too_long", "too_many_connections"}  # tests at the end of this file
# roles and limits, tested in test_service_access.py, test_service_limits.py and
# test_service_tcp.py (a read-only connection, a misbehaving or unauthenticated client)
CODES_TESTED_HERE |= {
    "forbidden",
    "idle_timeout",
    "too_many_inflight",
    "unauthorized",
    "subscriber_overflow",
    "too_many_reply_bytes",
}
# the planner's worker down or hung, tested in test_planner.py (a worker killed on purpose)
CODES_TESTED_HERE |= {"planner_unavailable"}
# hostile input, tested in test_service_hostile.py (a line nested a few thousand deep)
CODES_TESTED_HERE |= {"too_deep"}
# a bulk action over 10,000 orders: tests/unit/test_bulk_rules.py
CODES_TESTED_HERE |= {"bulk_too_large"}
CODES_WITHOUT_EXAMPLE = {
    "internal_error",
    "unjournalable_event",
}  # need a bug in the daemon (see tests/actors/test_unjournalable.py)
# order.ingest outcome codes that need a signed delivery, a big body, a full queue or
# a channel payload too long for the doc: tests/intake exercises each one.
CODES_TESTED_IN_INTAKE = {
    "busy",
    "signature_invalid",
    "body_too_large",
    "currency_mismatch",
    "invalid_order",
    "missing_field",
    "unknown_sku",
    "invalid_price",
    "invalid_date",
    "account_mismatch",
    "adapter_error",
}
# needs an order routed to a 3PL (a fake one on loopback): tests/integration/test_threepl.py
CODES_TESTED_IN_THREEPL = {"routed_to_threepl", "threepl_change_pending"}  # test_threepl*.py
# needs a damaged journal file: tests/integration/test_integrity_deferred.py
CODES_TESTED_IN_INTEGRITY = {"journal_damaged"}


# --- parsing the document ----------------------------------------------------------


@dataclass
class Item:
    kind: str  # "req" | "reply" | "event"
    text: str  # the request line as sent, or the reply/event JSON text
    value: Any = None  # decoded reply/event pattern


@dataclass
class Example:
    line: int  # line number of the opening fence in the doc (1-based)
    items: list[Item]
    known_bug: str | None = None

    @property
    def requests(self) -> list[str]:
        return [it.text for it in self.items if it.kind == "req"]

    def where(self) -> str:
        return f"docs/protocol.md:{self.line}"


@dataclass
class Doc:
    text: str
    examples: list[Example] = field(default_factory=list)
    config: str = ""


def parse_doc(text: str) -> Doc:
    doc = Doc(text)
    lines = text.splitlines()
    i = 0
    last_comment: str | None = None
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith("```"):
            info = stripped[3:].strip()
            start = i
            body = []
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            if info == "toml" and last_comment is not None and "example-config" in last_comment:
                doc.config = "\n".join(body) + "\n"
            elif info == "json" and any(b.startswith("→") for b in body):
                known_bug = None
                if last_comment is not None and last_comment.startswith("known-bug:"):
                    known_bug = last_comment.removeprefix("known-bug:").strip()
                doc.examples.append(Example(start + 1, _parse_block(body, start + 1), known_bug))
            last_comment = None
        elif stripped.startswith("<!--") and stripped.endswith("-->"):
            last_comment = stripped[4:-3].strip()
        elif stripped:
            last_comment = None
        i += 1
    return doc


def _parse_block(body: list[str], fence_line: int) -> list[Item]:
    items: list[Item] = []
    for n, raw in enumerate(body, fence_line + 1):
        if raw.startswith("→"):
            items.append(Item("req", raw[1:].strip()))
        elif raw.startswith("←"):
            items.append(Item("reply", raw[1:].strip()))
        elif items and items[-1].kind == "reply":
            items[-1].text += "\n" + raw
        elif raw.strip():
            raise AssertionError(f"docs/protocol.md:{n}: line is neither → nor ← nor a continuation")
    for it in items:
        if it.kind == "reply":
            try:
                it.value = json.loads(it.text)
            except json.JSONDecodeError as exc:
                raise AssertionError(f"docs/protocol.md:{fence_line}: reply is not JSON: {exc}\n{it.text}") from None
            if "event" in it.value and "ok" not in it.value:
                it.kind = "event"
    return items


DOCUMENT = parse_doc(DOC.read_text(encoding="utf-8"))


# --- matching -------------------------------------------------------------------


def mismatches(doc: Any, actual: Any, path: str = "$") -> list[str]:
    """Where ``actual`` does not fit the documented pattern ``doc`` (empty: it fits)."""
    if isinstance(doc, str) and doc in WILDCARDS:
        return []
    if isinstance(doc, dict):
        if not isinstance(actual, dict):
            return [f"{path}: documented an object, got {actual!r}"]
        out = []
        for key, value in doc.items():
            if key not in actual:
                out.append(f"{path}.{key}: documented, missing from the reply")
            elif path.endswith(".error") and key == "message":
                continue  # messages are for humans; only the code is a contract
            else:
                out += mismatches(value, actual[key], f"{path}.{key}")
        return out
    if isinstance(doc, list):
        if not isinstance(actual, list):
            return [f"{path}: documented a list, got {actual!r}"]
        open_ended = bool(doc) and isinstance(doc[-1], str) and doc[-1] in WILDCARDS
        shown = doc[:-1] if open_ended else doc
        if (len(actual) < len(shown)) if open_ended else (len(actual) != len(shown)):
            return [
                f"{path}: documented {len(shown)}{'+' if open_ended else ''} items, got {len(actual)}: "
                f"{json.dumps(actual)[:300]}"
            ]
        out = []
        for n, (d, a) in enumerate(zip(shown, actual, strict=False)):
            out += mismatches(d, a, f"{path}[{n}]")
        return out
    if isinstance(doc, bool) or isinstance(actual, bool):
        same = doc is actual
    else:
        same = doc == actual
    return [] if same else [f"{path}: documented {doc!r}, got {actual!r}"]


def test_matcher_semantics():
    assert mismatches({"a": 1}, {"a": 1, "b": 2}) == []
    assert mismatches({"a": "…"}, {"a": [1, 2]}) == []
    assert mismatches({"a": 1}, {"a": 2}) != []
    assert mismatches({"a": 1}, {}) != []
    assert mismatches([1, "…"], [1, 2, 3]) == []
    assert mismatches([1, 2], [1, 2, 3]) != []
    assert mismatches([1, "…"], []) != []
    assert mismatches(True, 1) != []
    assert mismatches(1.0, 1) == []
    assert mismatches({"error": {"code": "x", "message": "a"}}, {"error": {"code": "x", "message": "b"}}) == []
    assert mismatches({"error": {"code": "x"}}, {"error": {"code": "y", "message": "b"}}) != []


# --- running examples -------------------------------------------------------------


class Session:
    """One connection; replies are collected by id and events kept in arrival order."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.replies: dict[str, dict] = {}
        self.events: list[dict] = []
        self.event_cursor = 0
        self.syncs = 0

    def _read_one(self) -> None:
        msg = self.client.read_line()
        if "event" in msg and "ok" not in msg:
            self.events.append(msg)
        else:
            self.replies.setdefault(json.dumps(msg.get("id")), msg)

    def reply(self, req_id: Any) -> dict:
        key = json.dumps(req_id)
        while key not in self.replies:
            self._read_one()
        return self.replies.pop(key)

    def sync(self) -> None:
        """Make sure every event caused by an answered request has been read.

        Events are queued to a subscriber when their commit lands; a reply is queued when
        its request is handled. So after one read-only round trip everything acknowledged
        is committed, and the reply to a second one is queued behind those events.
        """
        for _ in range(2):
            self.syncs += 1
            req_id = f"sync-{self.syncs}"
            self.client.send_raw(json.dumps({"op": "policy.get", "id": req_id}).encode() + b"\n")
            self.reply(req_id)

    def event_matching(self, pattern: dict) -> list[str]:
        """Consume events up to the next one that fits the pattern; [] if found, else why not."""
        start = self.event_cursor
        for attempt in range(2):
            if attempt:
                self.sync()
                self.event_cursor = start
            while self.event_cursor < len(self.events):
                ev = self.events[self.event_cursor]
                self.event_cursor += 1
                if not mismatches(pattern, ev):
                    return []
        self.event_cursor = start  # not found: the next documented event may still be there
        wanted = pattern.get("event", {}).get("type") if isinstance(pattern.get("event"), dict) else None
        same_type = [ev for ev in self.events[start:] if ev.get("event", {}).get("type") == wanted]
        if same_type:
            return mismatches(pattern, same_type[0])
        return [f"no {wanted or 'such'} event among {[ev.get('event', {}).get('type') for ev in self.events[start:]]}"]

    def run(self, ex: Example) -> list[str]:
        """Run one example block; return what did not match (empty: all did)."""
        problems: list[str] = []
        # events documented in this block come after the events seen before it
        self.event_cursor = len(self.events)
        pending: list[str] = []
        for it in ex.items:
            if it.kind == "req":
                pending.append(it.text)
                continue
            if pending:
                self.client.send_raw("".join(line + "\n" for line in pending).encode())
                pending = []
            if it.kind == "reply":
                if "id" not in it.value:
                    problems.append(f"{ex.where()}: a documented reply must show its id")
                    continue
                try:
                    got = self.reply(it.value["id"])
                except TimeoutError:
                    raise AssertionError(
                        f"{ex.where()}: no reply with id {it.value['id']!r} came back "
                        f"(unclaimed replies: {list(self.replies.values())[:3]})"
                    ) from None
                problems += [f"{ex.where()} (id {it.value['id']!r}): {m}" for m in mismatches(it.value, got)]
            else:
                why = self.event_matching(it.value)
                if why:
                    problems.append(f"{ex.where()}: event {it.text.strip()[:120]} not seen: {why[0]}")
        if pending:
            problems.append(f"{ex.where()}: requests at the end of the block have no documented reply")
        return problems


STORY = [ex for ex in DOCUMENT.examples if ex.known_bug is None]


def test_every_example_in_protocol_md_runs_as_documented(make_daemon):
    assert len(STORY) == len(DOCUMENT.examples), "a known-bug block is documented: fix the bug instead"
    assert DOCUMENT.config, "docs/protocol.md must hold the example daemon config (<!-- example-config -->)"
    sent = sum(len(ex.requests) for ex in STORY)
    assert sent >= 60, f"only {sent} example requests found in docs/protocol.md: is the parser broken?"
    d = make_daemon(DOCUMENT.config)
    problems: list[str] = []
    with d.client() as client:
        session = Session(client)
        for ex in STORY:
            problems += session.run(ex)
    assert not problems, f"{len(problems)} mismatch(es) between docs/protocol.md and the daemon:\n" + "\n".join(
        problems
    )


# --- the document covers the whole protocol ---------------------------------------------


def _sent_ops() -> set[str]:
    ops = set()
    for ex in STORY:
        for line in ex.requests:
            try:
                req = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(req, dict) and isinstance(req.get("op"), str):
                ops.add(req["op"])
    return ops


def test_no_two_requests_of_the_story_share_an_id():
    # replies are matched by id: two sections that reuse ids match each other's replies
    # when their requests are in flight together, and the story fails only sometimes
    seen: dict[object, str] = {}
    clashes = []
    for ex in STORY:
        for line in ex.requests:
            try:
                req = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(req, dict) or "id" not in req:
                continue
            key = json.dumps(req["id"])
            if key in seen:
                clashes.append(f"id {key} at {seen[key]} and {ex.where()}")
            seen[key] = ex.where()
    assert clashes == []


def test_every_op_has_a_section_and_a_running_example():
    headings = set(re.findall(r"^#{2,4} `([a-z._]+)`", DOCUMENT.text, flags=re.M))
    assert sorted(p.OPS - headings) == [], "ops without a '### `op`' section in docs/protocol.md"
    assert sorted(headings - p.OPS) == [], "sections for ops the daemon does not know"
    assert sorted(p.OPS - _sent_ops()) == [], "ops with no example that runs"


def _error_table() -> dict[str, str]:
    section = DOCUMENT.text.split("## Error codes", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `([a-z_]+)` \|(.*)\|\s*$", section, flags=re.M))


REFUSALS = "|".join(kind.__name__ for kind in (errors.Rejected, *errors.KINDS))


def _codes_in_source() -> set[str]:
    codes = set()
    for path in (ROOT / "backorder").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        codes |= set(re.findall(rf'\b(?:{REFUSALS})\(\s*"([a-z_]+)"', text))
        codes |= set(re.findall(r'(?<!log)(?<!log_)\.error\(\s*"([a-z_]+)"', text))  # Reply.error
        codes |= set(re.findall(r'\berr\(.*?,\s*"([a-z_]+)"', text))
        codes |= set(re.findall(r'Disconnect\(\s*"([a-z_]+)"', text))  # connection limits
    return codes


def _codes_in_examples(examples: list[Example]) -> set[str]:
    codes = {
        it.value["error"]["code"]
        for ex in examples
        for it in ex.items
        if it.kind == "reply" and it.value.get("ok") is False
    }
    # an order.ingest outcome carries its code in an ok reply
    codes |= {
        it.value["result"]["code"]
        for ex in examples
        for it in ex.items
        if it.kind == "reply"
        and it.value.get("ok") is True
        and isinstance(it.value.get("result"), dict)
        and it.value["result"].get("outcome")
        and it.value["result"].get("code")
    }
    return codes


def test_error_table_lists_exactly_the_codes_the_daemon_uses():
    table = set(_error_table())
    source = _codes_in_source()
    assert sorted(source - table) == [], "error codes used in backorder/ but missing from docs/protocol.md"
    assert sorted(table - source) == [], "error codes documented but never produced by backorder/"


def test_the_refusal_classes_declare_exactly_the_documented_codes():
    """Each code is declared once, by the one class that carries it, and the table lists them all."""
    declared = [code for kind in errors.KINDS for code in kind.codes]
    assert len(declared) == len(set(declared)), "a code declared by two classes"
    assert errors.Rejected.codes == set(declared)
    table = set(_error_table())
    assert sorted(set(declared) - table) == [], "codes declared in backorder/errors.py, not in docs/protocol.md"
    assert sorted(table - set(declared)) == [], "codes documented, declared by no class in backorder/errors.py"


def test_every_error_code_is_exercised():
    shown = _codes_in_examples(STORY)
    missing = (
        set(_error_table())
        - shown
        - CODES_TESTED_HERE
        - CODES_WITHOUT_EXAMPLE
        - CODES_TESTED_IN_INTAKE
        - CODES_TESTED_IN_THREEPL
        - CODES_TESTED_IN_INTEGRITY
    )
    assert sorted(missing) == [], "error codes with no example in docs/protocol.md"


def test_topics_table_matches_the_daemon():
    section = DOCUMENT.text.split("### Topics", 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| `([a-z]+)` \|(.*)\|\s*$", section, flags=re.M)
    documented = {topic: frozenset(re.findall(r"`([a-z_]+)`", cells)) for topic, cells in rows}
    assert documented == TOPICS


# --- the two error codes no example block can show -----------------------------------------


def test_line_too_long_is_answered_then_the_connection_closed(make_daemon):
    d = make_daemon(DOCUMENT.config)
    with d.client() as c:
        try:
            c.send_raw(b'{"op": "health", "id": 1, "pad": "' + b"x" * p.MAX_LINE + b'"}\n')
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed while the rest of the line was still being sent
        first = c.reply()
        assert mismatches({"id": None, "ok": False, "error": {"code": "line_too_long"}}, first) == []
        with pytest.raises((ConnectionError, OSError)):
            c.reply()


def test_too_many_connections_is_answered_then_closed(make_daemon):
    d = make_daemon(DOCUMENT.config.replace("[daemon]", "[daemon]\nmax_connections = 1", 1))

    def admitted():  # the readiness probe's connection may still be counted for a moment
        first = d.client()
        first.send_raw(b'{"op": "health", "id": 1}\n')
        got = first.read_line()
        if got["ok"]:
            return first
        first.close()
        assert got["error"]["code"] == "too_many_connections"
        return None

    first = wait_until(admitted, timeout=10, interval=0.05, message="the daemon never freed its only connection slot")
    with first, d.client() as second:
        refused = second.read_line()
        assert mismatches({"id": None, "ok": False, "error": {"code": "too_many_connections"}}, refused) == []
        with pytest.raises(ConnectionError):
            second.read_line()
        assert first.call("health")["status"] == "serving"
