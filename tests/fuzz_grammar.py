"""The generator of the daemon's grammar fuzzer: what a hostile or careless client sends to
the control socket, the TCP listener's auth line and the webhook listener.

No I/O here (``fuzz_support`` sends and checks; ``tests/integration/test_fuzz.py`` and
``bench/fuzz.py`` both use it). Everything is drawn from one ``random.Random(seed)``, so a
seed names a run exactly: the same seed gives the same bytes, message after message.

The socket grammar is the op table itself: every member of ``protocol.AnyRequest`` and its
msgspec fields (``msgspec.inspect.type_info``), so an op added to the protocol is fuzzed
without touching this file. Each field gets a value that fits its type (drawn from the
few SKUs, orders and shipments the run works on, so requests reach deep state) or, in a
hostile request, one of the values below: numbers past every bound (``1e400``, 2^63,
10^400, ``-0.0``), markup and control characters, invalid UTF-8, strings past their length,
nesting thousands of levels deep, the wrong JSON type. Then whole lines are mutated
(truncated, bytes flipped or inserted, replaced by junk).

Pools are finite on purpose (external ids, SKUs, accounts): after the first thousands of
messages most new orders are duplicates, so the daemon's legitimate state stops growing
and a growing RSS means memory the daemon should not keep.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
from msgspec import inspect as mi

from backorder import protocol as p
from backorder.actors.events import TOPICS

FIXTURES = Path(__file__).resolve().parent / "intake" / "fixtures"
SKUS = [f"FZ-{i}" for i in range(16)]  # configured and stocked before a run
CHANNELS = ["shopify", "woocommerce", "amazon_sp", "bigcommerce", "x12_850", "csv"]
SUBMIT_CHANNELS = ["web", "phone"]
ACCOUNTS = [
    "default",
    "acme",
    "BUYERCO",
]  # BUYERCO: the X12 fixtures' sender (ISA06), so signed X12 reaches the adapter
EXTERNAL_IDS = 100  # per (channel, account): bounds the orders a run can create
SHOP = "fuzz.myshopify.com"
WOO = "fuzz.example"
_enc = msgspec.json.encode

# --- hostile values (JSON text) ---------------------------------------------------

BIG_INTS = [2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 10**18, 10**21, 10**400]
HOSTILE_NUMBERS = [
    b"1e400",
    b"-1e400",
    b"1e308",
    b"-1e308",
    b"1.7976931348623157e308",
    b"5e-324",
    b"-0.0",
    b"-0",
    b"0",
    b"-1",
    b"2147483648",
    b"9007199254740993",
    b"9223372036854775807",
    b"9223372036854775808",
    b"-9223372036854775809",
    b"18446744073709551616",
    b"1" + b"0" * 400,
    b"-" + b"9" * 400,
    b"1.5",
    b"1e2",
    b"0.1e-400",
    b"1E+2",
    b"00",
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"0x10",
    b"1.",
    b".5",
    b"+1",
]
HOSTILE_TEXT = [
    "",
    " ",
    "x[/]",
    "[bold red]x[/]",
    "[/bold]",
    "[link=file:///etc/passwd]x[/link]",
    "a\nb",
    "a\r\nb",
    "SKU\n1 x FAKE",
    "\x00",
    "\x1b[31mred\x1b[0m",
    "\u202egnp.exe",
    "\U0001f986" * 20,
    "=1+2",
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1)",
    "\tx",
    "a@x.test, b@y.test",
    "../../../etc/passwd",
    "'; DROP TABLE events; --",
    "%s%n%x",
    "{}",
    "null",
    "\ufeffBOM",
    "e\u0301",
    "\ud7ff\ue000",
    "x" * 65,
    "x" * 129,
    "x" * 513,
    "y" * 5000,
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "2024-02-30",
    "1e400",
    "NaN",
    "-1",
    "Z" * 64,
]
# JSON text that is not a plain string: escapes of lone surrogates, invalid UTF-8, broken strings
HOSTILE_STRING_BYTES = [
    b'"\\ud800"',
    b'"\\udfff\\ud800"',
    b'"\\u0000"',
    b'"\xff\xfe"',
    b'"\xc3"',
    b'"\xed\xa0\x80"',
    b'"a\\x41"',
    b'"\\u12"',
    b'"unterminated',
    b'"a\tb"',
    b'"\x01\x02"',
    b'"\\/\\b\\f"',
]
HOSTILE_SHAPES = [
    b"null",
    b"true",
    b"false",
    b"[]",
    b"{}",
    b"[1,2,3]",
    b'{"a":1}',
    b'{"__proto__":{}}',
    b"[null]",
    b'{"":""}',
    b'""',
]
DEPTHS = [64, 300, 1000, 3000, 20000, 100000]


def nested(rng: random.Random, depth: int | None = None) -> bytes:
    """JSON nested ``depth`` levels deep (arrays, objects, or unbalanced)."""
    d = depth or rng.choice(DEPTHS)
    kind = rng.randrange(4)
    if kind == 0:
        return b"[" * d + b"]" * d
    if kind == 1:
        return b'{"a":' * d + b"1" + b"}" * d
    if kind == 2:
        return b"[" * d  # never closed
    return b'[{"a":' * (d // 2) + b"0" + b"}]" * (d // 2)


def hostile_value(rng: random.Random) -> bytes:
    r = rng.random()
    if r < 0.3:
        return rng.choice(HOSTILE_NUMBERS)
    if r < 0.6:
        return _enc(rng.choice(HOSTILE_TEXT))
    if r < 0.75:
        return rng.choice(HOSTILE_STRING_BYTES)
    if r < 0.9:
        return rng.choice(HOSTILE_SHAPES)
    return nested(rng)


# --- the messages -------------------------------------------------------------------


@dataclass(slots=True)
class SocketLine:
    """One line for the control socket (newline excluded). ``tracked`` is its ``id`` when the
    reply will echo it (the line was not mutated); ``oversize``: it breaks the line limit,
    so the daemon answers ``line_too_long`` and closes the connection."""

    line: bytes
    kind: str  # the op, or the mutation applied
    tracked: int | None = None
    write: bool = False
    oversize: bool = False

    @property
    def replies(self) -> int:
        """Replies the daemon owes for it: none for a blank line (skipped by the reader)."""
        return 1 if self.line.strip() else 0


@dataclass(slots=True)
class TcpSession:
    """One TCP connection: an auth line (maybe hostile, maybe with no newline), then, once
    authenticated, socket lines. ``token_role`` is the role of a valid token, else None."""

    auth: bytes
    token_role: str | None
    half_close: bool  # shut the write side after the auth bytes (an auth line never ended)
    lines: list[SocketLine] = field(default_factory=list)
    same_write: bool = False  # the lines go in the same write as the auth line


@dataclass(slots=True)
class WebhookPost:
    """One HTTP request for the webhook listener."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes
    signed: bool
    kind: str


class Grammar:
    """``next()`` yields the messages of one run: socket lines, TCP sessions and webhook
    posts, mixed by ``mix`` (weights)."""

    def __init__(
        self,
        seed: int,
        *,
        tokens: dict[str, str],
        secrets: dict[str, str],
        line_limit: int,
        body_limit: int,
        mix: dict[str, float] | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.tokens = tokens  # role -> valid token
        self.secrets = secrets  # channel -> HMAC secret
        self.line_limit = line_limit
        self.body_limit = body_limit
        mix = mix or {"socket": 0.94, "tcp": 0.03, "webhook": 0.03}
        self._surfaces = list(mix)
        self._surface_weights = list(mix.values())
        self._ids = 0
        self._new_accounts = 0
        self.ops = [_OpSpec(t) for t in mi.type_info(p.AnyRequest).types]
        self._op_weights = [OP_WEIGHTS.get(s.tag, 2.0) for s in self.ops]
        self.fixtures = _load_fixtures()

    def next(self) -> SocketLine | TcpSession | WebhookPost:
        surface = self.rng.choices(self._surfaces, self._surface_weights)[0]
        if surface == "tcp":
            return self.tcp_session()
        if surface == "webhook":
            return self.webhook_post()
        return self.socket_line()

    # --- socket ---------------------------------------------------------------------

    def socket_line(self) -> SocketLine:
        rng = self.rng
        r = rng.random()
        if r < 0.45:
            return self.request(hostility=0.0)
        if r < 0.85:
            return self.request(hostility=rng.choice((0.05, 0.2, 0.5)))
        return self.mutated()

    def request(self, hostility: float, spec: _OpSpec | None = None) -> SocketLine:
        """A request of the op table: fields fit their types, except that each is hostile
        with probability ``hostility`` (and so is the shape of the object)."""
        rng = self.rng
        spec = spec or rng.choices(self.ops, self._op_weights)[0]
        self._ids += 1
        rid = self._ids
        parts: list[bytes] = []
        tracked: int | None = rid
        if hostility and rng.random() < hostility * 0.3:
            rid_text = hostile_value(rng)
            tracked = None
        else:
            rid_text = str(rid).encode()
        if not (hostility and rng.random() < hostility * 0.1):
            parts.append(b'"id":' + rid_text)
        else:
            tracked = None  # no id: the reply's id is null
        op = _enc(spec.tag)
        if hostility and rng.random() < hostility * 0.2:
            op = rng.choice(
                [
                    b'"stock.take"',
                    b'"auth"',
                    b'"ORDER.SUBMIT"',
                    b"5",
                    b"null",
                    b'["health"]',
                    b'"health\\u0000"',
                    b'""',
                    hostile_value(rng),
                ]
            )
            tracked = None
        if not (hostility and rng.random() < hostility * 0.05):
            parts.append(b'"op":' + op)
        else:
            tracked = None
        for f in spec.fields:
            if f.required:
                if hostility and rng.random() < hostility * 0.1:
                    continue  # a required field missing
            elif rng.random() > f.presence:
                continue
            value = hostile_value(rng) if hostility and rng.random() < hostility else self.value(f.name, f.type, 0)
            parts.append(f.key + value)
            if hostility and rng.random() < hostility * 0.1:  # the same key again
                parts.append(f.key + (hostile_value(rng) if rng.random() < 0.5 else self.value(f.name, f.type, 0)))
        if hostility and rng.random() < hostility * 0.2:
            parts.append(_enc(rng.choice(["zzz", "op ", "ID", "lines\u0000", "x" * 300])) + b":" + hostile_value(rng))
        rng.shuffle(parts)
        line = b"{" + b",".join(parts) + b"}"
        return self._finish(SocketLine(line, spec.tag, tracked, spec.tag in p.WRITE_OPS))

    def _finish(self, sl: SocketLine) -> SocketLine:
        """A line longer than the limit is refused with the connection: mark it."""
        if len(sl.line) > self.line_limit:
            sl.oversize = True
            sl.tracked = None
        return sl

    def mutated(self) -> SocketLine:
        rng = self.rng
        r = rng.random()
        if r < 0.08:
            return self._finish(SocketLine(rng.choice(DEPTHS_LINE)(rng), "deep_nesting"))
        if r < 0.14:
            return SocketLine(rng.choice([b"", b" ", b"\t", b"\r", b" \x0b\x0c "]), "blank")
        if r < 0.22:
            junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))).replace(b"\n", b" ")
            return SocketLine(junk, "junk")
        if r < 0.3:
            return SocketLine(rng.choice(HOSTILE_SHAPES + HOSTILE_NUMBERS + HOSTILE_STRING_BYTES), "not_an_object")
        if r < 0.301:
            return SocketLine(
                b'{"op":"health","pad":"' + b"x" * (self.line_limit + 10) + b'"}', "too_long", oversize=True
            )
        base = self.request(hostility=rng.choice((0.0, 0.2)))
        line = bytearray(base.line)
        how = rng.randrange(4)
        if how == 0 and len(line) > 1:
            del line[rng.randrange(1, len(line)) :]
            kind = "truncated"
        elif how == 1:
            for _ in range(rng.randrange(1, 4)):
                line[rng.randrange(len(line))] = rng.randrange(256)
            kind = "byte_flip"
        elif how == 2:
            for _ in range(rng.randrange(1, 4)):
                pos = rng.randrange(len(line) + 1)
                line[pos:pos] = rng.choice(INTERESTING_BYTES)
            kind = "bytes_inserted"
        else:
            a = rng.randrange(len(line))
            b = rng.randrange(a, len(line) + 1)
            line[a:a] = line[a:b]
            kind = "slice_repeated"
        out = bytes(line).replace(b"\n", b" ")
        return self._finish(SocketLine(out, kind, write=base.write))

    # --- field values ---------------------------------------------------------------

    def value(self, name: str, t, depth: int) -> bytes:
        rng = self.rng
        match t:
            case mi.UnionType(types=types):
                real = [x for x in types if not isinstance(x, mi.NoneType)]
                if not real or (len(real) < len(types) and rng.random() < 0.15):
                    return b"null"
                return self.value(name, rng.choice(real), depth)
            case mi.StrType():
                return _enc(self.text(name, t))
            case mi.IntType():
                return str(self.integer(name, t)).encode()
            case mi.FloatType():
                return self.floating(t)
            case mi.DecimalType():
                return rng.choice(PRICES) if rng.random() < 0.9 else rng.choice(HOSTILE_PRICES)
            case mi.BoolType():
                return b"true" if rng.random() < 0.3 else b"false"
            case mi.LiteralType(values=values):
                return _enc(rng.choice(values))
            case (
                mi.ListType(item_type=item, min_length=lo, max_length=hi)
                | mi.SetType(item_type=item, min_length=lo, max_length=hi)
            ):
                n = rng.choice((1, 1, 1, 2, 3)) if (lo or 0) > 0 else rng.choice((0, 1, 2))
                if hi and rng.random() < 0.002:
                    n = hi + 1  # one past the bound
                return b"[" + b",".join(self.value(name, item, depth + 1) for _ in range(n)) + b"]"
            case mi.DictType(value_type=vt):
                if name == "headers":
                    return self.ingest_headers()
                n = rng.randrange(3)
                return b"{" + b",".join(_enc(f"k{i}") + b":" + self.value(name, vt, depth + 1) for i in range(n)) + b"}"
            case mi.StructType(fields=fields):
                parts = [
                    _enc(f.encode_name) + b":" + self.value(f.name, f.type, depth + 1)
                    for f in fields
                    if f.required or rng.random() < 0.5
                ]
                return b"{" + b",".join(parts) + b"}"
            case mi.RawType() | mi.AnyType():
                return str(rng.randrange(1000)).encode()
            case mi.NoneType():
                return b"null"
        return hostile_value(rng)  # a type this grammar does not know yet: still fuzzed

    def text(self, name: str, t: mi.StrType) -> str:
        rng = self.rng
        pool = TEXT_POOLS.get(name)
        if pool is not None:
            value = pool(self)
        elif t.pattern is not None:
            value = PATTERN_VALUES.get(t.pattern, lambda _g: "ABC")(self)
        else:
            value = rng.choice(WORDS)
        if t.max_length is not None and rng.random() < 0.01:
            value = "x" * (t.max_length + 1)
        return value

    def integer(self, name: str, t: mi.IntType) -> int:
        rng = self.rng
        lo = t.ge if t.ge is not None else (t.gt + 1 if t.gt is not None else None)
        hi = t.le if t.le is not None else (t.lt - 1 if t.lt is not None else None)
        if name == "letter_id":
            return rng.randrange(1, 60)
        r = rng.random()
        if r < 0.9:
            base = lo if lo is not None else -5
            n = base + rng.randrange(0, 20)
            return n if hi is None else min(n, hi)
        if r < 0.95:
            return rng.choice([x for x in (lo, hi) if x is not None] or [0])
        # within the type's bounds, however large: the daemon must bound what it keeps
        big = [x for x in BIG_INTS if hi is None or x <= hi]
        return rng.choice(big) if big else (hi or 0)

    def floating(self, t: mi.FloatType) -> bytes:
        rng = self.rng
        lo = t.ge if t.ge is not None else (t.gt if t.gt is not None else 0.0)
        hi = t.le if t.le is not None else (t.lt if t.lt is not None else None)
        r = rng.random()
        if r < 0.85:
            top = min(hi, 50.0) if hi is not None else 50.0
            return repr(round(rng.uniform(lo, top), 3)).encode()
        if r < 0.93:
            return repr(float(rng.choice([x for x in (lo, hi) if x is not None]))).encode()
        big = [b"1e308", b"1.7976931348623157e308", b"5e-324", b"1e300", b"-0.0"]
        return rng.choice(big) if hi is None else rng.choice([b"-0.0", b"5e-324", repr(float(hi)).encode()])

    def external_id(self) -> str:
        return f"fz-{self.rng.randrange(EXTERNAL_IDS)}"

    def ingest_headers(self) -> bytes:
        rng = self.rng
        heads = {
            "X-Shopify-Topic": rng.choice(["orders/create", "orders/cancelled", "orders/updated", "x"]),
            "X-Shopify-Shop-Domain": SHOP,
            "X-WC-Webhook-Topic": rng.choice(["order.created", "order.updated"]),
            "X-WC-Webhook-Source": f"https://{WOO}/",
            "Content-Type": "application/json",
        }
        keep = {k: v for k, v in heads.items() if rng.random() < 0.6}
        if rng.random() < 0.2:
            keep[rng.choice(["X-Shopify-Hmac-Sha256", "X-Backorder-Hmac-Sha256", "x\x00"])] = rng.choice(HOSTILE_TEXT)
        return _enc(keep)

    # --- TCP auth line ----------------------------------------------------------------

    def tcp_session(self) -> TcpSession:
        rng = self.rng
        r = rng.random()
        role = None
        half_close = False
        if r < 0.3:
            role = rng.choice(sorted(self.tokens))
            auth = b'{"op":"auth","id":"a","token":' + _enc(self.tokens[role]) + b"}"
        elif r < 0.45:
            auth = b'{"op":"auth","id":' + hostile_value(rng) + b',"token":' + hostile_value(rng) + b"}"
        elif r < 0.55:
            auth = nested(rng)
        elif r < 0.62:
            auth = b'{"op":"auth","token":' + nested(rng, rng.choice((1000, 3000))) + b"}"
        elif r < 0.7:
            good = self.tokens[rng.choice(sorted(self.tokens))]
            auth = b'{"op":"auth","token":' + _enc(good[:-1] + "A") + b"}"  # one character off
        elif r < 0.78:
            auth = self.request(hostility=0.2).line  # a plain request before any auth
        elif r < 0.84:
            auth = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))).replace(b"\n", b" ")
        elif r < 0.9:
            auth = b'{"op":"auth","token":"' + b"t" * rng.choice((4096, 5000, 20000))  # no newline, too long
            half_close = True
        elif r < 0.95:
            auth = b'{"op":"auth","token":"never-ended"}'
            half_close = True
        else:
            auth = b'{"op":"auth","token":' + rng.choice(HOSTILE_STRING_BYTES) + b"}"
        session = TcpSession(auth if half_close else auth + b"\n", role, half_close)
        if role is not None:
            session.lines = [self.socket_line() for _ in range(rng.randrange(0, 12))]
            session.lines = [sl for sl in session.lines if not sl.oversize]
            session.same_write = rng.random() < 0.5
        return session

    # --- webhook listener -------------------------------------------------------------

    def webhook_post(self) -> WebhookPost:
        rng = self.rng
        r = rng.random()
        channel = (
            rng.choice(CHANNELS)
            if r < 0.93
            else rng.choice(["nope", "..", "shopify/extra", "%00", "x" * 300, "sh%C3%B6p", "[/]"])
        )
        body, kind = self.webhook_body(channel)
        q = rng.random()
        if q < 0.45:
            query = ""
        elif q < 0.7:
            query = "?account=" + rng.choice(ACCOUNTS)
        elif q < 0.9:
            self._new_accounts += 1  # a fresh account every time: state kept per account must be bounded
            query = f"?account=new-{self._new_accounts}"
        else:
            query = "?account=" + rng.choice(["", "%ff%fe", "[/]", "a&account=b", "x" * 2000, "%0a%0d"])
        headers = self.webhook_headers(channel, rng)
        s = rng.random()
        # A fresh account is never signed right: what an unauthenticated sender makes the
        # daemon keep must stay bounded, while signed orders stay within the finite pools.
        signed = s < 0.6 and not query.startswith("?account=new-")
        secret = self.secrets.get(channel)
        if signed and secret is not None:
            headers.append((SIGNATURE_HEADER.get(channel, "X-Backorder-Hmac-Sha256"), _sign(body, secret)))
        elif s < 0.8:
            signed = False
            headers.append(
                (
                    SIGNATURE_HEADER.get(channel, "X-Backorder-Hmac-Sha256"),
                    rng.choice(["", "bm9wZQ==", "!!!", "a" * 200, _sign(body, "wrong")]),
                )
            )
        else:
            signed = False
        method = "POST" if rng.random() < 0.97 else rng.choice(["GET", "PUT", "DELETE"])
        return WebhookPost(method, f"/webhooks/{channel}{query}", headers, body, signed, kind)

    def webhook_headers(self, channel: str, rng: random.Random) -> list[tuple[str, str]]:
        if channel == "shopify":
            topic = rng.choice(
                ["orders/create", "orders/create", "orders/cancelled", "orders/updated", "app/uninstalled"]
            )
            heads = [
                ("X-Shopify-Topic", topic),
                ("X-Shopify-Shop-Domain", SHOP),
                ("X-Shopify-Webhook-Id", f"w{rng.randrange(10**6)}"),
            ]
        elif channel == "woocommerce":
            topic = rng.choice(["order.created", "order.created", "order.updated", "order.deleted", "product.created"])
            heads = [
                ("X-WC-Webhook-Topic", topic),
                ("X-WC-Webhook-Source", f"https://{WOO}/"),
                ("X-WC-Webhook-Resource", topic.split(".")[0]),
                ("X-WC-Webhook-Event", topic.split(".")[1]),
                ("X-WC-Webhook-ID", "12"),
                ("X-WC-Webhook-Delivery-ID", str(rng.randrange(10**6))),
            ]
        else:
            heads = []
        if rng.random() < 0.1:
            heads = [(k, rng.choice(["", "[/]", "x" * 1000, "\u00e9"]) if rng.random() < 0.5 else v) for k, v in heads]
        if rng.random() < 0.05:
            heads.append((rng.choice(["X-Fuzz", "X-Shopify-Topic", "Content-Type"]), rng.choice(["a", "x" * 4000])))
        return heads

    def webhook_body(self, channel: str) -> tuple[bytes, str]:
        rng = self.rng
        samples = self.fixtures.get(channel) or self.fixtures["shopify"]
        template = rng.choice(samples)
        r = rng.random()
        if r < 0.01:
            return b"x" * (self.body_limit + rng.randrange(1, 5000)), "too_large"
        if r < 0.05:
            return nested(rng), "deep_nesting"
        if r < 0.1:
            return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 400))), "junk"
        if isinstance(template, bytes):  # CSV, X12: text formats
            return self._text_body(template), "text"
        return self._json_body(template, hostility=0.0 if r < 0.45 else rng.choice((0.05, 0.2))), "json"

    def _json_body(self, template, hostility: float) -> bytes:
        """The fixture with fresh order ids and SKUs of the run; some leaves hostile."""
        rng = self.rng
        hostile: list[bytes] = []

        def walk(node, key: str):
            if isinstance(node, dict):
                return {k: walk(v, k) for k, v in node.items()}
            if isinstance(node, list):
                return [walk(v, key) for v in node]
            if hostility and rng.random() < hostility:
                hostile.append(hostile_value(rng))
                return f"\x00FUZZ{len(hostile) - 1}\x00"
            if key in ("id", "AmazonOrderId", "order_number", "name") and not isinstance(node, bool):
                return self.external_id() if isinstance(node, str) else rng.randrange(EXTERNAL_IDS)
            if key in ("sku", "SellerSKU") and isinstance(node, str):
                return rng.choice(SKUS)
            if key in ("quantity", "QuantityOrdered") and isinstance(node, int):
                return rng.choice((1, 1, 2, 3, 10**400 if rng.random() < 0.01 else 5))
            return node

        body = _enc(walk(template, ""))
        for i, h in enumerate(hostile):
            body = body.replace(b'"\\u0000FUZZ' + str(i).encode() + b'\\u0000"', h, 1)
        return body

    def _text_body(self, template: bytes) -> bytes:
        rng = self.rng
        body = bytearray(template.replace(b"CSV-10", b"CSV-" + str(rng.randrange(EXTERNAL_IDS)).encode()))
        for _ in range(rng.choice((0, 0, 1, 3))):
            token = rng.choice(HOSTILE_NUMBERS + [b"[/]", b"=1+2", b"\xff", b"\x00", b'"', b",,,", b"~*>", b"\r\n"])
            pos = rng.randrange(len(body) + 1)
            body[pos:pos] = token
        if rng.random() < 0.1:
            del body[rng.randrange(len(body)) :]
        return bytes(body)


def _sign(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


SIGNATURE_HEADER = {"shopify": "X-Shopify-Hmac-Sha256", "woocommerce": "X-WC-Webhook-Signature"}


def _load_fixtures() -> dict[str, list]:
    """The intake tests' real deliveries: JSON ones decoded (mutated as trees), text ones raw."""
    out: dict[str, list] = {}
    for path in sorted(FIXTURES.glob("*/*")):
        data = path.read_bytes()
        out.setdefault(path.parent.name, []).append(msgspec.json.decode(data) if path.suffix == ".json" else data)
    return out


class _OpSpec:
    """One op of the table: its tag and, per field, its JSON key, type and how often an
    optional field is present."""

    def __init__(self, t: mi.StructType) -> None:
        self.tag = t.tag
        self.fields = [_Field(f) for f in t.fields if f.name != "id"]


class _Field:
    __slots__ = ("key", "name", "presence", "required", "type")

    def __init__(self, f: mi.Field) -> None:
        self.name = f.name
        self.key = _enc(f.encode_name) + b":"
        self.type = f.type
        self.required = f.required
        self.presence = 0.4


# Writes reach the journal: they weigh most. An op missing here (a new one) weighs 2.
OP_WEIGHTS = {
    "order.submit": 20,
    "stock.receive": 10,
    "sku.configure": 8,
    "stock.adjust": 5,
    "policy.set": 3,
    "order.ingest": 10,
    "order.cancel": 3,
    "order.amend": 3,
    "order.release": 2,
    "pick.confirm": 4,
    "procurement.confirm": 2,
    "intake.alias": 2,
    "deadletters.retry": 1,
    "deadletters.discard": 1,
    "notifications.retry": 1,
    "audit.query": 2,
    "subscribe": 0.2,
    "log.level": 0.2,
    "health": 1,
}

WORDS = ["", "ok", "fuzz", "Zoë", "A1", "note", "reason given", "x" * 40]
PRICES = [b'"1.00"', b'"0"', b'"12.50"', b'"999.99"', b"3", b"0.5", b'"0.01"']
HOSTILE_PRICES = [
    b'"1e400"',
    b'"NaN"',
    b'"sNaN"',
    b'"Infinity"',
    b'"-5"',
    b"1e308",
    b"1e400",
    b'"' + b"9" * 60 + b'"',
    b'"0.0000000000000000000001"',
    b'"1,5"',
    b'"-0"',
    b"-1e308",
    b'"1e-400"',
]


def _order_id(g: Grammar) -> str:
    return f"O{g.rng.randrange(1, 3000):07d}"


TEXT_POOLS = {
    "sku": lambda g: g.rng.choice(SKUS),
    "skus": lambda g: g.rng.choice(SKUS),
    "prefix": lambda g: g.rng.choice(["", "FZ", "FZ-1", "zz"]),
    "order_id": _order_id,
    "shipment_id": lambda g: f"S{g.rng.randrange(1, 2000):07d}",
    "shipment_ids": lambda g: f"S{g.rng.randrange(1, 2000):07d}",
    "request_id": lambda g: f"{g.rng.choice(('PO', 'TR'))}-{g.rng.randrange(1, 300):06d}",
    "notice_id": lambda g: f"N{g.rng.randrange(1, 500):07d}",
    "channel": lambda g: g.rng.choice(SUBMIT_CHANNELS + CHANNELS),
    "account": lambda g: g.rng.choice(ACCOUNTS),
    "external_id": Grammar.external_id,
    "channel_sku": lambda g: g.rng.choice(["GRINDER-SS", "MUG-RED", "GIFT-25", "ext-1"]),
    "email": lambda g: g.rng.choice(["a@x.test", "buyer@example.com", "a@x.test, b@y.test", "not-an-email", ""]),
    "since": lambda g: g.rng.choice(
        [
            "2024-03-01T00:00:00Z",
            "2024-01-01",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "2024-13-40T99:00:00Z",
            "yesterday",
        ]
    ),
    "created_at": lambda g: g.rng.choice(
        [
            "2024-03-01T00:00:00Z",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59+14:00",
            "2024-02-30T00:00:00Z",
            "1709251200",
        ]
    ),
    "expected_date": lambda g: g.rng.choice(["2024-03-09", "2024-04-01", "0001-01-01", "9999-12-31", "2024-02-30"]),
    "topics": lambda g: g.rng.choice(sorted(TOPICS) + ["nope"]),
    "cause": lambda g: g.rng.choice(
        [
            "unknown_sku",
            "malformed_body",
            "missing_field",
            "invalid_quantity",
            "signature_invalid",
            "transient_failure",
            "nope",
        ]
    ),
    "currency": lambda g: g.rng.choice(["USD", "USD", "EUR", "GBP", "XXX", "ZZZ"]),
    "body": lambda g: g.rng.choice(["{}", '{"id": 1}', "", "a,b\n1,2"]),
    "body_base64": lambda g: g.rng.choice(["", "e30=", "!!!", "////"]),
    "query": lambda g: g.rng.choice([_order_id(g), "fz-1", "#1042", "x"]),
}
PATTERN_VALUES = {
    r"^[A-Z]{3}$": lambda g: g.rng.choice(["USD", "EUR", "XXX"]),
    r"^\d{4}-\d{2}-\d{2}$": lambda g: g.rng.choice(["2024-03-09", "0001-01-01", "9999-12-31", "2024-02-30"]),
}
INTERESTING_BYTES = [
    b"\x00",
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    b'"',
    b"\\",
    b"{",
    b"[",
    b"]",
    b"}",
    b",",
    b":",
    b"\r",
    b"1e400",
    b"-",
    b"\\u0000",
]
DEPTHS_LINE = [
    lambda rng: nested(rng),
    lambda rng: b'{"op":"health","id":' + nested(rng) + b"}",
    lambda rng: b'{"op":"order.submit","id":1,"channel":"web","external_id":"d","lines":' + nested(rng) + b"}",
    lambda rng: b'{"op":"stock.receive","sku":"FZ-1","qty":1,"reference":' + nested(rng) + b"}",
]
