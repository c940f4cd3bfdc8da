"""Inbound supplier answers in ANSI X12 004010: the 855 purchase order acknowledgment and
the 856 advance ship notice. They answer the site's own purchase orders (the outbound 850
of ``backorder.documents.purchase_order``), so they become procurement ops, not orders:
each draft is ``kind = "acknowledge" | "cancel_supply" | "ship_notice"`` with the PO
number, the SKU and what the supplier said in ``supply``; the intake finds the request
(the PO's line for that SKU) and sends the op. The interchange is split into segments by
``x12_850.segments`` (the separators the ISA declares); the account is ISA06.

855: BAK (03 PO number), then per line PO1 (02 quantity ordered, qualifier/id pairs: VP
= our SKU, else SK, BP, IN, UP) and its ACK segments (01 status, 02 quantity, 04 date
qualifier, 05 date CCYYMMDD); a header DTM (017 estimated delivery, 067 / 002 delivery)
dates the lines whose ACK has no date. ACK01 IR (rejected) or ID (deleted), or BAK02 RJ
for the whole PO: the line is cancelled. Any other status: acknowledged for the sum of
its ACK02 quantities (without ACK: PO102). 856: BSN (02 shipment id = the notice's
reference), DTM (017 / 067 / 002 estimated delivery), the HL levels: an order level's
PRF (01 PO number) holds the item levels below it, each LIN (qualifier/id pairs) with
SN1 (02 units shipped). Items of one PO and SKU are summed. SE01 (segment count) is
checked in both.
"""

from __future__ import annotations

from backorder.errors import InvalidInput, ProtocolError
from backorder.intake import draft as d
from backorder.intake.x12_850 import segments

DELIVERY_DATES = ("017", "067", "002", "068")  # estimated delivery, delivery, delivery requested, ship
REJECTED = frozenset({"IR", "ID"})
# Where a supplier's answer carries the item of our purchase order, first found wins (our
# 850 sends the SKU as VP and BP; suppliers echo either, or their own SK / IN / UP).
SKU_QUALIFIERS = ("VP", "SK", "BP", "IN", "UP")


def _el(seg: list[str], n: int) -> str:
    return seg[n].strip() if len(seg) > n else ""


def _date(value: str, where: str) -> str:
    if len(value) != 8 or not (value.isascii() and value.isdigit()):
        raise InvalidInput("invalid_date", f"{where} {value!r} is not CCYYMMDD")
    return f"{value[:4]}-{value[4:6]}-{value[6:]}"


def _qty(value: str, where: str) -> int:
    # "²".isdigit() is true, and a 5,000-digit number would exceed int()'s digit limit
    if not (value.isascii() and value.isdigit()) or len(value) > 15 or int(value) <= 0:
        raise InvalidInput("invalid_quantity", f"{where} {value!r} is not a whole number of units > 0")
    return int(value)


def _sku(seg: list[str], first: int) -> str:
    ids = {_el(seg, q): _el(seg, q + 1) for q in range(first, len(seg) - 1, 2)}
    return next((ids[q] for q in SKU_QUALIFIERS if ids.get(q)), "")[:64]


Segments = list[list[str]]


def _sets(body: bytes, kind: str) -> tuple[str | None, list[Segments]]:
    """(sender, [(ST index, the set's segments up to SE)]) of the sets of type ``kind``."""
    segs = segments(body)
    if segs[-1][0] != "IEA":
        raise ProtocolError("malformed_body", "the interchange has no IEA trailer")
    sender = _el(segs[0], 6)
    out: list[Segments] = []
    cur: Segments | None = None
    start = 0
    for i, seg in enumerate(segs):
        tag = seg[0].strip()
        if tag == "ST":
            cur, start = ([] if _el(seg, 1) == kind else None), i
            continue
        if cur is None:
            continue
        if tag == "SE":
            if _el(seg, 1) != str(i - start + 1):
                raise ProtocolError("malformed_body", f"SE01 says {_el(seg, 1)} segments, the set has {i - start + 1}")
            out.append(cur)
            cur = None
            continue
        cur.append([seg[0].strip(), *seg[1:]])
    if cur is not None:
        raise ProtocolError("malformed_body", "a transaction set has no SE trailer")
    return sender or None, out


def _header_date(segs: list[list[str]]) -> str | None:
    for seg in segs:
        if seg[0] == "DTM" and _el(seg, 1) in DELIVERY_DATES and _el(seg, 2):
            return _date(_el(seg, 2), f"DTM {_el(seg, 1)}")
        if seg[0] in ("PO1", "HL"):
            return None  # only the header's
    return None


def _supply(kind: str, account: str | None, external_id: str, **fields: object) -> d.Draft:
    return d.Draft(kind=kind, account=account, external_id=external_id, order_number=str(fields["po"]), supply=fields)


def parse_855(body: bytes, headers: dict[str, str], profile: object) -> list[d.Draft]:
    sender, sets = _sets(body, "855")
    drafts: list[d.Draft] = []
    for segs in sets:
        bak = next((s for s in segs if s[0] == "BAK"), None)
        if bak is None or not _el(bak, 3):
            raise ProtocolError("malformed_body", "an 855 without BAK03 (purchase order number)")
        po, whole_rejected = _el(bak, 3), _el(bak, 2) == "RJ"
        default_date = _header_date(segs)
        lines: list[tuple[str, int, list[list[str]]]] = []
        for seg in segs:
            if seg[0] == "PO1":
                sku = _sku(seg, 6)
                if not sku:
                    raise InvalidInput("missing_sku", f"PO1 line {_el(seg, 1) or '?'} of {po} names no SKU")
                lines.append((sku, _qty(_el(seg, 2), f"PO1 {sku} quantity"), []))
            elif seg[0] == "ACK" and lines:
                lines[-1][2].append(seg)
        if not lines:
            raise ProtocolError("malformed_body", f"the 855 for {po} has no PO1 line")
        for sku, ordered, acks in lines:
            statuses = {_el(a, 1) for a in acks}
            if whole_rejected or (statuses and statuses <= REJECTED):
                reason = "rejected by the supplier (X12 855)"
                drafts.append(_supply("cancel_supply", sender, f"{po}/{sku}", po=po, sku=sku, reason=reason))
                continue
            kept = [a for a in acks if _el(a, 1) not in REJECTED]
            qty = sum(_qty(_el(a, 2), f"ACK {sku} quantity") for a in kept if _el(a, 2)) if kept else ordered
            dates = [_date(_el(a, 5), f"ACK {sku} date") for a in kept if _el(a, 5)]
            date = max(dates) if dates else default_date  # the last of its deliveries
            drafts.append(_supply("acknowledge", sender, f"{po}/{sku}", po=po, sku=sku, qty=qty, expected_date=date))
    if not drafts:
        return [d.ignored("unsupported_topic", "the interchange holds no 855 acknowledgment")]
    return drafts


def parse_856(body: bytes, headers: dict[str, str], profile: object) -> list[d.Draft]:
    sender, sets = _sets(body, "856")
    drafts: list[d.Draft] = []
    for segs in sets:
        bsn = next((s for s in segs if s[0] == "BSN"), None)
        if bsn is None or not _el(bsn, 2):
            raise ProtocolError("malformed_body", "an 856 without BSN02 (shipment id)")
        reference = _el(bsn, 2)[:128]
        date = next(
            (_date(_el(s, 2), f"DTM {_el(s, 1)}") for s in segs if s[0] == "DTM" and _el(s, 1) in DELIVERY_DATES[:3]),
            None,
        )
        po = ""
        sku = ""
        items: dict[tuple[str, str], int] = {}
        for seg in segs:
            tag = seg[0]
            if tag == "PRF":
                po = _el(seg, 1)
            elif tag == "LIN":
                sku = _sku(seg, 2)
            elif tag == "SN1":
                if not po:
                    raise ProtocolError("malformed_body", f"an item of {reference} under no order level (PRF)")
                if not sku:
                    raise InvalidInput("missing_sku", f"an item of {reference} ({po}) names no SKU (LIN)")
                items[(po, sku)] = items.get((po, sku), 0) + _qty(_el(seg, 2), f"SN1 {sku} units")
                sku = ""
        if not items:
            raise ProtocolError("malformed_body", f"the 856 {reference} ships no item (HL/LIN/SN1)")
        for (po, sku), qty in items.items():
            drafts.append(
                _supply(
                    "ship_notice",
                    sender,
                    f"{reference}/{po}/{sku}",
                    po=po,
                    sku=sku,
                    qty=qty,
                    expected_date=date,
                    reference=reference,
                )
            )
    if not drafts:
        return [d.ignored("unsupported_topic", "the interchange holds no 856 ship notice")]
    return drafts
