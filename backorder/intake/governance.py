"""The governed checks of one delivery, in this order: size, signature over the raw bytes,
parse, topic, validation. Pure functions of the delivery, the settings and the model:
they decide, they change nothing (the intake service records the outcome).

Validation profiles: the adapter's defaults, under the ``[channels.NAME]`` keys, under the
``[channels.NAME.accounts.ACCOUNT]`` keys; SKU aliases also come from ``intake.alias``
(journaled), which win over the file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from decimal import Decimal

import msgspec
from msgspec import Struct

from backorder.actors.model import World
from backorder.config.settings import ChannelSettings, IntakeSettings, Settings, ValidationProfile
from backorder.email_address import check_email
from backorder.errors import AccessError, InvalidInput, LimitError, NotFound
from backorder.intake.adapters import CHANNELS, account_hint
from backorder.intake.draft import Draft
from backorder.protocol import OrderSubmit
from backorder.secrets import read_secret

# Header a source without a signature scheme of its own (amazon_sp, bigcommerce, x12_850,
# csv) must send over HTTP: base64 HMAC-SHA256 of the raw body with the account's secret.
GENERIC_SIGNATURE = "x-backorder-hmac-sha256"
# ISO 4217 codes in use (a code outside this list is `unknown_currency`)
ISO_4217 = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN
BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP
GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK
LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB
PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SYP SZL THB TJS
TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XOF XPF YER ZAR ZMW ZWL""".split()
)
_WHOLE = re.compile(r"^\s*\+?\d+(\.0*)?\s*$")
# Impact score: what a stuck delivery costs (docs/intake.md)
RUSH_IMPACT = 500.0
PRIORITY_IMPACT = 250.0
AGE_IMPACT_PER_H = 10.0


class Delivery(Struct, kw_only=True):
    channel: str
    account: str | None
    headers: dict[str, str]  # names lower-cased
    body: bytes
    via: str = "socket"  # "socket" | "http" | "retry"


def normalise_headers(headers: dict[str, str] | list) -> dict[str, str]:
    items = headers.items() if isinstance(headers, dict) else headers
    return {str(k).lower(): str(v) for k, v in items}


def channel_settings(settings: Settings, channel: str) -> ChannelSettings:
    if channel not in CHANNELS:
        raise NotFound("unknown_channel", f"unknown channel {channel!r} (known: {', '.join(sorted(CHANNELS))})")
    cfg = settings.channels.get(channel) or ChannelSettings()
    if not cfg.enabled:
        raise NotFound("unknown_channel", f"channel {channel!r} is disabled in the configuration")
    return cfg


def profile(settings: Settings, channel: str, account: str) -> ValidationProfile:
    """Adapter defaults < channel keys < account keys."""
    cfg = channel_settings(settings, channel).profile(account)
    base = dict(CHANNELS[channel].DEFAULTS)
    return ValidationProfile(
        **{
            **{f: base.get(f) for f in ValidationProfile.__struct_fields__},
            **{f: v for f in ValidationProfile.__struct_fields__ if (v := getattr(cfg, f)) is not None},
        }
    )


def resolve_account(d: Delivery) -> str:
    if d.account:
        return d.account
    return account_hint(d.channel, d.headers) or "default"


def secret(prof: ValidationProfile) -> bytes | None:
    return read_secret(prof.secret_env, prof.secret_file).encode() or None


def sign(body: bytes, key: bytes) -> str:
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()


def check_size(d: Delivery, intake: IntakeSettings) -> None:
    if len(d.body) > intake.max_body_bytes:
        raise LimitError("body_too_large", f"the body has {len(d.body)} bytes; at most {intake.max_body_bytes}")


def check_signature(d: Delivery, prof: ValidationProfile) -> None:
    """Over the raw bytes, before anything reads them. Native schemes (Shopify,
    WooCommerce) are always checked; other channels only over HTTP (the socket's file
    permissions already authenticate its clients)."""
    adapter = CHANNELS[d.channel]
    header = adapter.SIGNATURE_HEADER
    ping = getattr(adapter, "is_ping", None)
    if ping is not None and ping(d.headers, d.body):
        return  # WooCommerce's setup ping is unsigned; it carries no order and is only acknowledged
    if header is None:
        if d.via != "http":
            return
        header = GENERIC_SIGNATURE
    given = d.headers.get(header)
    if not given:
        raise AccessError("signature_missing", f"no {header} header")
    key = secret(prof)
    if key is None:
        raise AccessError("signature_invalid", "no secret is configured for this account (secret_env / secret_file)")
    if not hmac.compare_digest(sign(d.body, key).encode(), given.strip().encode()):
        raise AccessError("signature_invalid", f"{header} does not match the body")


def own_secret(settings: Settings, channel: str, account: str) -> bool:
    """Whether the configuration gives the account a signing secret of its own."""
    cfg = settings.channels.get(channel)
    acct = cfg.accounts.get(account) if cfg is not None else None
    return acct is not None and bool(acct.secret_env or acct.secret_file)


def check_account(d: Delivery, drafts: list[Draft], settings: Settings) -> None:
    """A signed delivery books its orders to the account whose secret verified it. The
    signature was checked before the payload was read, with the secret of the account the
    delivery named (``?account=``, a source's header), else with the channel's; a payload
    that names another account (X12 ISA06, an Amazon seller, a BigCommerce store) is
    refused, and so is one signed with the channel's secret naming an account that has a
    secret of its own: one partner's secret must not create or cancel another's orders."""
    named = d.account or account_hint(d.channel, d.headers)
    for draft in drafts:
        if not draft.account or draft.account == named:
            continue
        if named is not None:
            raise AccessError(
                "account_mismatch",
                f"the payload is for account {draft.account!r}; the delivery was signed for account {named!r}",
            )
        if own_secret(settings, d.channel, draft.account):
            raise AccessError(
                "account_mismatch",
                f"account {draft.account!r} has a secret of its own: deliver its "
                f"orders signed with it and ?account={draft.account}",
            )


def parse(d: Delivery, prof: ValidationProfile) -> list[Draft]:
    adapter = CHANNELS[d.channel]
    ping = getattr(adapter, "is_ping", None)
    if ping is not None and ping(d.headers, d.body):
        return [Draft(kind="ignored", code="webhook_ping", message="webhook setup ping acknowledged")]
    return adapter.parse(d.body, d.headers, prof)


def site_sku(world: World, prof: ValidationProfile, channel: str, account: str, sku: str) -> str:
    """The site SKU of a channel SKU: the account's journaled alias, then the channel's
    (account "*"), then the profile's, else the SKU itself."""
    for table in (world.aliases.get((channel, account)), world.aliases.get((channel, "*")), prof.sku_aliases):
        if table and sku in table:
            return table[sku]
    return sku


def xref_sku(world: World, prof: ValidationProfile, channel: str, account: str, ids: list[tuple[str, str]]) -> str:
    """The site SKU of a line known only by other item ids (an X12 buyer part number, a
    UPC/EAN/GTIN): the first id, in the order given, that the journaled aliases (account,
    then channel) or the profile's ``item_xref`` map. A key may name the qualifier
    (``"BP:BC-GR-01"``) or not (``"BC-GR-01"``); the qualified key wins. "" when none maps."""
    tables = (world.aliases.get((channel, account)), world.aliases.get((channel, "*")), prof.item_xref)
    for qualifier, item in ids:
        for key in (f"{qualifier}:{item}", item):
            for table in tables:
                if table and key in table:
                    return table[key]
    return ""


def _amount(value: Decimal, what: str) -> None:
    if not value.is_finite() or value < 0:
        raise InvalidInput("invalid_price", f"{what} {value} is not an amount >= 0")


def quantity(value, lenient: bool, where: str) -> int:
    if isinstance(value, bool):
        raise InvalidInput("invalid_quantity", f"{where}: quantity {value!r} is not a number")
    if isinstance(value, int):
        q = value
    elif lenient and isinstance(value, (str, Decimal)) and _WHOLE.match(str(value)):
        q = int(Decimal(str(value).strip()))
    elif isinstance(value, str) and _WHOLE.match(value):
        raise InvalidInput("invalid_quantity", f"{where}: quantity {value!r} is a string (lenient_numbers is off)")
    else:
        raise InvalidInput("invalid_quantity", f"{where}: quantity {value!r} is not a whole number")
    if q <= 0:
        raise InvalidInput("invalid_quantity", f"{where}: quantity must be > 0, got {q}")
    return q


def validate(
    draft: Draft, channel: str, account: str, prof: ValidationProfile, world: World, settings: Settings
) -> OrderSubmit:
    """The canonical order of a draft, or Rejected with the first problem found."""
    if not draft.external_id:
        raise InvalidInput("missing_field", "the order has no id")
    currency = draft.currency.strip().upper()
    if currency not in ISO_4217:
        raise InvalidInput("unknown_currency", f"currency {draft.currency!r} is not an ISO 4217 code")
    if prof.currencies and currency not in prof.currencies:
        raise InvalidInput(
            "unknown_currency",
            f"currency {currency} is not accepted for {channel}/{account} (accepted: {', '.join(prof.currencies)})",
        )
    if not draft.lines:
        raise InvalidInput("missing_field", "the order has no lines")
    optional = set(prof.optional_fields or ())
    strict = settings.strict_skus or bool(prof.known_skus_only)
    lines = []
    for n, ln in enumerate(draft.lines, 1):
        where = f"line {n}"
        channel_sku = ln.sku or xref_sku(world, prof, channel, account, ln.item_ids)
        if not channel_sku:
            ids = ", ".join(f"{q} {i}" for q, i in ln.item_ids)
            raise InvalidInput(
                "missing_sku",
                f"{where} ({ln.name or 'unnamed'}) has no SKU"
                + (f" and no cross-reference maps its item ids ({ids})" if ids else ""),
            )
        if ln.currency and ln.currency.upper() != currency:
            raise InvalidInput("currency_mismatch", f"{where} is priced in {ln.currency}, the order in {currency}")
        qty = quantity(ln.qty, bool(prof.lenient_numbers), where)
        sku = site_sku(world, prof, channel, account, channel_sku) if ln.sku else channel_sku
        if ln.requires_shipping and strict and not (sku in world.skus and world.skus[sku].known):
            raise NotFound(
                "unknown_sku",
                f"{where}: SKU {channel_sku!r} is not a site SKU"
                + (f" (alias of {sku!r})" if sku != channel_sku else "")
                + "; add an alias or configure it",
            )
        _amount(ln.unit_price, f"{where}: unit price")
        _amount(ln.discount, f"{where}: discount")
        if ln.line_total is not None:
            _amount(ln.line_total, f"{where}: line total")
        lines.append(
            {
                "sku": sku,
                "qty": qty,
                "unit_price": ln.unit_price,
                "requires_shipping": ln.requires_shipping,
                "discount": ln.discount,
                "line_total": ln.line_total,
                "channel_line_id": ln.channel_line_id,
            }
        )
    ships = any(ln["requires_shipping"] for ln in lines)
    if not draft.email and "email" not in optional:
        raise InvalidInput(
            "missing_field",
            'the order has no customer e-mail (list "email" in optional_fields if this source withholds it)',
        )
    check_email(draft.email, "the customer e-mail")
    addr = draft.shipping_address
    # An order whose lines ship nothing needs no address. A source that withholds the street
    # (Amazon without restricted data) still names the country: accepted, and no shipment
    # of it is labelled until the address is set (``needs_address``).
    needs_address = False
    if ships and "shipping_address" not in optional and not (addr.get("address1") and addr.get("country_code")):
        if not (draft.needs_address and addr.get("country_code")):
            raise InvalidInput("missing_field", "the order ships but has no shipping address (address1, country_code)")
        needs_address = True
    spec = {
        "channel": channel,
        "account": account,
        "external_id": draft.external_id,
        "order_number": draft.order_number,
        "customer": draft.customer,
        "email": draft.email,
        "shipping_address": addr,
        "created_at": draft.created_at,
        "currency": currency,
        "lines": lines,
        "rush": draft.rush,
        "priority": draft.priority or bool(prof.priority),
        "hold": draft.hold,
        "source_version": draft.version,
        "totals": draft.totals,
        "needs_address": needs_address,
    }
    try:
        return msgspec.convert(spec, OrderSubmit)
    except msgspec.ValidationError as exc:
        raise InvalidInput("invalid_order", f"the order does not fit the canonical model: {exc}") from None


MAX_IMPACT = 1e15  # the value part of one order's impact; a dead letter sums its orders'


def impact(draft: Draft | None, prof: ValidationProfile | None) -> float:
    """Base impact of a failed delivery (age is added when listed): order value, rush,
    customer priority."""
    if draft is None:
        return 0.0
    try:
        value = float(draft.value())
    except (ArithmeticError, ValueError):
        value = 0.0
    # float() of a decimal like 1e400 is inf, which JSON (and so the journal) cannot hold:
    # a price that large earns the top score, a finite one.
    value = max(-MAX_IMPACT, min(value, MAX_IMPACT)) if value == value else 0.0
    pri = draft.priority or bool(prof and prof.priority)
    return round(value + RUSH_IMPACT * draft.rush + PRIORITY_IMPACT * pri, 2)
