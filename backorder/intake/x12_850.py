"""ANSI X12 004010 850 purchase orders. One interchange (ISA ... IEA) may carry several
functional groups (GS ... GE) and transaction sets (ST ... SE); each 850 is one order.

Separators are whatever the ISA declares: the element separator is the 4th character,
the component separator ISA16 and the segment terminator the character after ISA16 (the
ISA is fixed-width, 106 characters); line breaks after a terminator are allowed.
Segments used: BEG (01 purpose: 00 original, 01 cancellation; 03 PO number; 05 date
CCYYMMDD), CUR (02 currency), REF, PER (EM: e-mail), TD5 (12 service level: rush when
listed in ``rush_services``), N1/N2/N3/N4 (ST: ship-to), PO1 (01 the buyer's line
number, kept as the line's id for the 855/856 that answer it; 02 quantity; 04 unit price;
then qualifier/id pairs: VP vendor part number = our SKU; without one, the buyer's part
number BP, buyer's item number IN, UPC UP, EAN EN, GTIN UK and SK map through the trading
partner's cross-reference, ``item_xref`` or ``intake.alias``), PID, CTT (01 number of PO1
lines, checked), AMT (TT: the total transaction amount; else the lines' sum is the
total), SE (01 segment count, checked). The account is the interchange sender (ISA06).
"""

from __future__ import annotations

from decimal import Decimal

from backorder.errors import InvalidInput, ProtocolError
from backorder.intake import draft as d

NAME = "x12_850"
SIGNATURE_HEADER = None
DEFAULTS = {"rush_services": ["ND", "SD", "NH", "AM", "ON"], "optional_fields": ["email"], "lenient_numbers": True}
# The seller's own part number: taken as the SKU as sent (then ``sku_aliases``).
SELLER_QUALIFIER = "VP"
# Item ids that are not ours, tried in this order through the cross-reference.
XREF_QUALIFIERS = ("BP", "IN", "UP", "EN", "UK", "SK")


def segments(body: bytes) -> list[list[str]]:
    """Split an interchange into segments of elements."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("latin-1")
    text = text.lstrip("\ufeff\r\n\t ")
    if not text.startswith("ISA") or len(text) < 106:
        raise ProtocolError("malformed_body", "an X12 interchange starts with a 106-character ISA segment")
    elem, term = text[3], text[105]
    if elem.isalnum() or term.isalnum() or elem == term:
        raise ProtocolError("malformed_body", "the ISA does not declare usable separators")
    out = []
    for raw in text.split(term):
        raw = raw.strip("\r\n")
        if raw:
            out.append(raw.split(elem))
    return out


def _el(seg: list[str], n: int) -> str:
    return seg[n].strip() if len(seg) > n else ""


def parse(body: bytes, headers: dict[str, str], profile) -> list[d.Draft]:
    segs = segments(body)
    sender = _el(segs[0], 6)
    if segs[-1][0] != "IEA":
        raise ProtocolError("malformed_body", "the interchange has no IEA trailer")
    drafts: list[d.Draft] = []
    cur: d.Draft | None = None
    st_index = 0
    party = ""
    po1_count = 0
    ctt: int | None = None
    po_total: Decimal | None = None
    for i, seg in enumerate(segs):
        tag = seg[0].strip()
        if tag == "ST":
            if _el(seg, 1) != "850":
                cur = None
                continue
            cur, st_index, party, po1_count, ctt = d.Draft(account=sender or None), i, "", 0, None
            po_total = None
            continue
        if cur is None:
            continue
        if tag == "BEG":
            cur.external_id = _el(seg, 3)
            cur.order_number = cur.external_id
            if _el(seg, 1) == "01":
                cur.kind = "cancel"
                cur.message = "BEG01 = 01 (cancellation)"
            date = _el(seg, 5)
            if date:
                if len(date) != 8 or not (date.isascii() and date.isdigit()):
                    raise InvalidInput("invalid_date", f"BEG05 {date!r} is not CCYYMMDD")
                cur.created_at = f"{date[:4]}-{date[4:6]}-{date[6:]}T00:00:00Z"
        elif tag == "CUR":
            cur.currency = _el(seg, 2)
        elif tag == "PER":
            for q in range(3, len(seg) - 1, 2):
                if _el(seg, q) == "EM":
                    cur.email = _el(seg, q + 1)
        elif tag == "TD5":
            cur.rush = cur.rush or _el(seg, 12).upper() in {s.upper() for s in profile.rush_services or ()}
        elif tag == "N1":
            party = _el(seg, 1)
            if party == "ST":
                cur.shipping_address["name"] = _el(seg, 2)
            elif party == "BY":
                cur.customer = {"id": _el(seg, 4), "name": _el(seg, 2)}
        elif tag == "N2" and party == "ST":
            cur.shipping_address["company"] = _el(seg, 1)
        elif tag == "N3" and party == "ST":
            cur.shipping_address["address1"] = _el(seg, 1)
            cur.shipping_address["address2"] = _el(seg, 2)
        elif tag == "N4" and party == "ST":
            cur.shipping_address.update(
                city=_el(seg, 1), region=_el(seg, 2), postal_code=_el(seg, 3), country_code=_el(seg, 4)
            )
        elif tag == "PO1":
            po1_count += 1
            ids = {_el(seg, q): _el(seg, q + 1) for q in range(6, len(seg) - 1, 2)}
            sku = ids.get(SELLER_QUALIFIER, "")
            cur.lines.append(
                d.DraftLine(
                    sku=sku[:64],
                    qty=_el(seg, 2),
                    unit_price=d.money(_el(seg, 4), f"PO1[{po1_count}].04"),
                    channel_line_id=_el(seg, 1)[:128],
                    item_ids=[] if sku else [(q, ids[q][:128]) for q in XREF_QUALIFIERS if ids.get(q)],
                )
            )
        elif tag == "AMT" and _el(seg, 1) == "TT":
            po_total = d.money(_el(seg, 2), "AMT02")
        elif tag == "CTT":
            count = _el(seg, 1)
            # "²".isdigit() is true; a 5,000-digit count would exceed int()'s digit limit
            ctt = int(count) if count.isascii() and count.isdigit() and len(count) <= 9 else -1
        elif tag == "SE":
            count = i - st_index + 1
            if _el(seg, 1) != str(count):
                raise ProtocolError("malformed_body", f"SE01 says {_el(seg, 1)} segments, the set has {count}")
            if ctt is not None and ctt != po1_count:
                raise InvalidInput("order_items_mismatch", f"CTT01 counts {ctt} line items, the PO has {po1_count} PO1")
            if not cur.external_id:
                raise ProtocolError("malformed_body", "a purchase order without BEG03 (PO number)")
            if not cur.currency:
                cur.currency = (profile.currencies or ["USD"])[0]  # CUR is optional: the account's currency
            subtotal = d.gross(cur.lines)
            cur.total = subtotal if po_total is None else po_total
            cur.totals = d.totals(subtotal=subtotal, total=cur.total)
            drafts.append(cur)
            cur = None
    if cur is not None:
        raise ProtocolError("malformed_body", "a transaction set has no SE trailer")
    if not drafts:
        return [d.ignored("unsupported_topic", "the interchange holds no 850 purchase order")]
    return drafts
