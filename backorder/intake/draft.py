"""What an adapter hands to governance: a draft order in canonical field names, with
numbers still as the source sent them (governance applies the validation profile), or a
cancellation / an ignored item.

Helpers here read untrusted JSON-ish values: each raises ``Rejected("malformed_body")``
naming the path, so an adapter never crashes on a strange payload."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from msgspec import Struct, field

from backorder.errors import InvalidInput, ProtocolError, Rejected
from backorder.timeutil import format_utc, parse_datetime, parse_rfc2822


class DraftLine(Struct, kw_only=True):
    sku: str  # the channel's SKU ("" when the source gave none)
    qty: Any  # as sent: int, or a string / decimal the profile may accept
    unit_price: Decimal = Decimal(0)  # per unit, before discounts and tax
    requires_shipping: bool = True
    currency: str | None = None  # when the source prices a line in its own currency
    name: str = ""
    discount: Decimal = Decimal(0)  # allocated to the line, all its units
    line_total: Decimal | None = None  # after the discount, before tax (None: qty x unit_price - discount)
    channel_line_id: str = ""
    # Other item ids the source gave, (qualifier, id), in the order to try them: governance
    # maps them through the account's item cross-reference when ``sku`` is "" (X12 850).
    item_ids: list[tuple[str, str]] = field(default_factory=list)

    def total(self) -> Decimal:
        if self.line_total is not None:
            return self.line_total
        return Decimal(str(self.qty)) * self.unit_price - self.discount


class Draft(Struct, kw_only=True):
    """One order (or cancellation) found in a delivery."""

    # "order" | "cancel" | "ignored"; a supplier's answer to a purchase order (X12 855 / 856):
    # "acknowledge" | "cancel_supply" | "ship_notice", what it said in ``supply``
    kind: str = "order"
    external_id: str = ""
    account: str | None = None  # when the payload names the account (seller, store, sender)
    order_number: str = ""
    customer: dict = field(default_factory=dict)
    email: str = ""
    shipping_address: dict = field(default_factory=dict)
    created_at: str | None = None  # RFC 3339 UTC
    currency: str = ""
    lines: list[DraftLine] = field(default_factory=list)
    rush: bool = False
    priority: bool = False
    hold: str = ""  # why the order waits for payment ("" = not held)
    code: str = ""  # for ignored items: why
    message: str = ""
    total: Decimal | None = None  # the source's grand total (also the impact score's fallback)
    version: str | None = None  # the source's updated_at, as ``version_ts`` writes it
    # The order's money as the source reported it (``order.Totals`` field names); None:
    # the source sends none (a CSV file without the order_total column).
    totals: dict[str, Decimal] | None = None
    needs_address: bool = False  # the source withheld the street address (see governance)
    # a supplier's answer: po, sku, and qty / expected_date (None: keep the date) / reference / reason
    supply: dict = field(default_factory=dict)

    def value(self) -> Decimal:
        """The goods' value after discounts, before tax (the impact score's order value)."""
        try:
            return sum((ln.total() for ln in self.lines), Decimal(0))
        except (ArithmeticError, ValueError):  # InvalidOperation, and Overflow of a huge exponent
            return self.total or Decimal(0)


def bad(path: str, what: str) -> Rejected:
    return ProtocolError("malformed_body", f"{path}: {what}")


def obj(value: Any, path: str) -> dict:
    if not isinstance(value, dict):
        raise bad(path, f"expected an object, got {type(value).__name__}")
    return value


def arr(value: Any, path: str) -> list:
    if not isinstance(value, list):
        raise bad(path, f"expected a list, got {type(value).__name__}")
    return value


def opt_obj(value: Any, path: str) -> dict:
    """An optional object: absent, null or empty -> {}; anything else must be an object."""
    return obj(value or {}, path)


def opt_arr(value: Any, path: str) -> list:
    """An optional list: absent, null or empty -> []; anything else must be a list."""
    return arr(value or [], path)


def get(d: dict, key: str, path: str) -> Any:
    if key not in d:
        raise bad(f"{path}.{key}", "missing")
    return d[key]


def text(value: Any, limit: int = 512) -> str:
    """Optional text: None -> ""; numbers as written; truncated to what the model keeps."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)[:limit]


def ident(value: Any, path: str) -> str:
    """An id (string or integer) as text. A JSON number with a fraction or exponent is not
    an id: it would already have lost digits, so it is refused, never rounded."""
    if isinstance(value, bool) or value is None:
        raise bad(path, "missing id")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()[:128]
    raise bad(path, f"an id must be an integer or a string, got {value!r}")


# An amount of 10^30 or more is refused as read: far beyond any [limits] max_money (at most
# 10^15, checked where the order is decided), and it keeps the sums and differences an
# adapter computes (totals, line discounts) inside Decimal's exponent range, where
# 9E999999 + 9E999999 would raise Overflow instead of a refusal with a code.
MONEY_DIGITS = 30


def money(value: Any, path: str) -> Decimal:
    """Decimal from a string, an integer or a JSON number decoded as Decimal."""
    if value is None or value == "":
        return Decimal(0)
    if isinstance(value, bool):
        raise bad(path, "not an amount")
    try:
        out = Decimal(value) if isinstance(value, (str, int, Decimal)) else None
    except InvalidOperation:
        out = None
    if out is None or not out.is_finite():
        raise InvalidInput("invalid_price", f"{path}: {value!r} is not a decimal amount")
    if out and out.adjusted() >= MONEY_DIGITS:
        raise InvalidInput("invalid_price", f"{path}: {value!r} is out of range")
    return out


def amount_sum(items: list, key: str, path: str) -> Decimal:
    """The sum of ``item[key]`` (a decimal amount) over a list of objects (``{}`` skipped
    as zero): fee lines, discount allocations."""
    out = Decimal(0)
    for i, item in enumerate(items):
        out += money(obj(item, f"{path}[{i}]").get(key), f"{path}[{i}].{key}")
    return out


def gross(lines: list[DraftLine]) -> Decimal:
    """Σ qty x unit_price: an order's merchandise before discounts, for a source that
    does not send its subtotal (0 when a quantity is not a number: validation refuses it)."""
    try:
        return sum((Decimal(str(ln.qty)) * ln.unit_price for ln in lines), Decimal(0))
    except (ArithmeticError, ValueError):
        return Decimal(0)


def totals(
    subtotal: Decimal,
    total: Decimal,
    discount: Decimal = Decimal(0),
    shipping: Decimal = Decimal(0),
    fees: Decimal = Decimal(0),
    tax: Decimal = Decimal(0),
) -> dict[str, Decimal]:
    """``Draft.totals`` in the canonical field names."""
    return {"subtotal": subtotal, "discount": discount, "shipping": shipping, "fees": fees, "tax": tax, "total": total}


def unit(extended: Decimal, qty: Any) -> Decimal:
    """Per-unit price of an extended (line total) amount, rounded for display: the line
    keeps the extended amount itself as its ``line_total``, so nothing drifts."""
    try:
        q = Decimal(str(qty))
    except InvalidOperation:
        return extended
    if q <= 0:
        return extended
    return cents(extended / q)


def cents(value: Decimal) -> Decimal:
    """Round a computed per-unit amount to 4 places, dropping zeros past the cents. An
    amount too large to keep 4 places (beyond 28 significant digits) is refused."""
    try:
        out = value.quantize(Decimal("0.0001"))
    except InvalidOperation:
        raise InvalidInput("invalid_price", f"the amount {value} is out of range") from None
    return out.quantize(Decimal("0.01")) if out == out.quantize(Decimal("0.01")) else out


def utc(value: Any, path: str) -> str | None:
    """An ISO 8601 / RFC 3339 timestamp as RFC 3339 UTC ("...Z"); None stays None. A
    timestamp without an offset is taken as UTC."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise bad(path, "a timestamp must be a string")
    try:
        return format_utc(parse_datetime(value))
    except (ValueError, OverflowError):  # OverflowError: an offset that leaves years 1-9999
        raise InvalidInput("invalid_date", f"{path}: {value!r} is not an ISO 8601 timestamp") from None


def version_ts(value: Any, rfc2822: bool = False) -> str | None:
    """A source's updated_at as a version that sorts as text (RFC 3339 UTC with
    microseconds); None when absent or unreadable: such a delivery is applied as before
    versions were compared, never refused for it."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return format_utc(parse_rfc2822(value) if rfc2822 else parse_datetime(value), micro=True)
    except (TypeError, ValueError, OverflowError):
        return None


def rfc2822_utc(value: Any, path: str) -> str | None:
    if value in (None, ""):
        return None
    try:
        return format_utc(parse_rfc2822(str(value)))
    except (TypeError, ValueError, OverflowError):
        raise InvalidInput("invalid_date", f"{path}: {value!r} is not an RFC 2822 date") from None


def matches(value: str, words: list[str] | None) -> bool:
    """Whether a service name/code names one of the rush services (case-insensitive)."""
    v = value.lower()
    return bool(v) and any(w.lower() in v for w in words or ())


def ignored(code: str, message: str, external_id: str = "") -> Draft:
    return Draft(kind="ignored", code=code, message=message, external_id=external_id)


def full_name(src: dict, first: str = "first_name", last: str = "last_name") -> str:
    return " ".join(x for x in (text(src.get(first)), text(src.get(last))) if x)


def address(src: dict, name: str, **keys: str) -> dict:
    """The canonical shipping address from a source's address object: ``keys`` maps a
    canonical field to the source's key where the names differ."""
    fields = ("company", "address1", "address2", "city", "region", "postal_code", "country_code", "phone")
    return {"name": name, **{f: text(src.get(keys.get(f, f))) for f in fields}}


def envelope(body: bytes, name: str) -> dict:
    """A poller's / fetcher's envelope, checked to be the one this adapter reads."""
    from backorder.intake.jsonbody import decode

    env = decode(body)
    if env.get("envelope") != name:
        raise bad("$.envelope", f"expected {name!r}")
    return env
