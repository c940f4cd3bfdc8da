"""The X12 envelope every outbound interchange shares (ISA/GS around one transaction set,
GE/IEA after it): '*' elements, '~' segments, '>' sub-elements, version 004010. The 850
purchase order and the 856 ship notice build their own ST..SE body and wrap it here."""

from __future__ import annotations

import datetime as dt

from msgspec import Struct


class Party(Struct, frozen=True):
    """One side of the interchange: ISA qualifier and id, GS application code."""

    isa_qualifier: str
    isa_id: str
    gs_id: str


def text(value: object) -> str:
    """An element value: the separators (and line breaks) must not appear inside one."""
    return "".join(ch for ch in str(value) if ch not in "*~^:>" and ch.isprintable()).strip() or "-"


def _isa(value: str, width: int) -> str:
    return value[:width].ljust(width)


def interchange(
    functional_id: str, sender: Party, receiver: Party, usage: str, control: int, at: dt.datetime, body: list[list[str]]
) -> bytes:
    """``body`` (ST..SE) in one ISA/GS envelope; ``control`` numbers both, ``at`` dates them."""
    date6, date8, time4 = at.strftime("%y%m%d"), at.strftime("%Y%m%d"), at.strftime("%H%M")
    segments = [
        [
            "ISA",
            "00",
            _isa("", 10),
            "00",
            _isa("", 10),
            sender.isa_qualifier,
            _isa(sender.isa_id, 15),
            receiver.isa_qualifier,
            _isa(receiver.isa_id, 15),
            date6,
            time4,
            "U",
            "00401",
            f"{control:09d}",
            "0",
            usage,
            ">",
        ],
        ["GS", functional_id, sender.gs_id, receiver.gs_id, date8, time4, str(control), "X", "004010"],
        *body,
        ["GE", "1", str(control)],
        ["IEA", "1", f"{control:09d}"],
    ]
    return ("~\n".join("*".join(seg) for seg in segments) + "~\n").encode()
