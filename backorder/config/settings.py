"""Settings: one msgspec Struct tree decoded from TOML, validated with key paths.

Every key is optional; ``Settings()`` is a working daemon (``./backorder.db``,
``./backorder.sock``, FIFO, auto-pick off). ``config/backorder.example.toml`` documents
every key.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

from backorder.config.hosts import group_id, resolve_gid, resolve_gid_safe, resolve_uid
from backorder.email_address import is_addr_spec
from backorder.numbers import MAX_INT, MAX_MONEY, MAX_WEIGHT
from backorder.timeutil import parse_ts

_SOURCE = re.compile(r"^(supplier|transfer):[A-Za-z0-9_.\-]+$")


class ConfigError(Exception):
    """The configuration is invalid; the message names the key and the reason."""


class Weights(Struct, kw_only=True, forbid_unknown_fields=True):
    """Priority rank = rush*rush + value*line_value + age*hours_waited (higher is served first)."""

    # Bounded so that a rank is always a finite number (backorder.numbers.MAX_WEIGHT).
    rush: Annotated[float, Meta(ge=0, le=MAX_WEIGHT)] = 24.0  # hours of waiting a rush flag is worth
    value: Annotated[float, Meta(ge=0, le=MAX_WEIGHT)] = 0.01  # hours per currency unit of line value
    age: Annotated[float, Meta(ge=0, le=MAX_WEIGHT)] = 1.0  # rank gained per hour waited (anti-starvation)


class ReorderPolicy(Struct, kw_only=True, forbid_unknown_fields=True):
    """When and how much to reorder for one SKU (see docs/protocol.md, sku.configure)."""

    reorder_point: Annotated[int, Meta(ge=0, le=MAX_INT)] = 0
    order_up_to: Annotated[int, Meta(ge=0, le=MAX_INT)] = 0
    safety_stock: Annotated[int, Meta(ge=0, le=MAX_INT)] = 0
    lead_time_days: Annotated[float, Meta(ge=0, le=3650)] = 7.0
    moq: Annotated[int, Meta(ge=1, le=MAX_INT)] = 1
    pack_size: Annotated[int, Meta(ge=1, le=MAX_INT)] = 1
    source: str = "supplier:default"
    backorder_threshold: Annotated[int, Meta(ge=0, le=MAX_INT)] | None = None
    # Who sets reorder_point / order_up_to / safety_stock: a person (manual), the planner
    # (auto), or the planner proposes and a person applies (suggest). See docs/operations.md.
    mode: Literal["manual", "auto", "suggest"] = "manual"
    # This SKU's own target unit fill rate, set by a person; None: the site's ([planner]
    # service_level), which under [planner] service_target = "site" the planner splits
    # across the SKUs (docs/operations.md, "Planner").
    service_level: Annotated[float, Meta(ge=0.5, le=0.999)] | None = None

    QUANTITIES = ("reorder_point", "order_up_to", "safety_stock", "moq", "pack_size", "backorder_threshold")

    def problems(self, max_quantity: int | None = None) -> list[str]:
        """Inconsistencies, and (given the site's ``[limits] max_quantity``) numbers over it."""
        out = []
        if max_quantity is not None:
            out += [
                f"{name} {value} is over the site's limit of {max_quantity} units ([limits] max_quantity)"
                for name in self.QUANTITIES
                if (value := getattr(self, name)) is not None and value > max_quantity
            ]
        if self.order_up_to < max(self.reorder_point, self.safety_stock):
            out.append(
                "order_up_to must be >= reorder_point and >= safety_stock "
                "(otherwise every reorder would trigger another)"
            )
        if not _SOURCE.match(self.source):
            out.append("source must look like 'supplier:NAME' or 'transfer:SITE'")
        return out


class Source(Struct, kw_only=True, forbid_unknown_fields=True):
    """A supplier or a sister site that transfers stock."""

    name: str = ""
    email: str = ""
    lead_time_days: Annotated[float, Meta(ge=0)] | None = None
    # Where its purchase-order documents go ("none" keeps them in the outbox
    # unsent), and its EDI identity when it takes X12 850 purchase orders.
    deliver: Literal["none", "email", "webhook", "file"] = "none"
    edi: bool = False
    isa_qualifier: Annotated[str, Meta(pattern=r"^[A-Z0-9]{2}$")] = "ZZ"
    isa_id: Annotated[str, Meta(min_length=1, max_length=15)] = "SUPPLIER"
    gs_id: Annotated[str, Meta(min_length=2, max_length=15)] = "SUPPLIER"


class DaemonSettings(Struct, kw_only=True, forbid_unknown_fields=True):
    db: str = "backorder.db"
    socket: str = "backorder.sock"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    grace_s: Annotated[float, Meta(ge=0)] = 10.0
    max_connections: Annotated[int, Meta(ge=1)] = 256
    max_inflight: Annotated[int, Meta(ge=1)] = 4096  # requests in flight per connection
    subscriber_buffer: Annotated[int, Meta(ge=16)] = 10000
    actor_idle_s: Annotated[float, Meta(gt=0)] = 30.0  # passivate a SKU actor idle this long
    max_active_skus: Annotated[int, Meta(ge=16)] = 5000  # live SKU actors; the least recently active go first
    # events between periodic snapshots: a start after kill -9 replays up to this many plus
    # those journaled while the snapshot child ran (docs/operations.md, "Start-up and the
    # integrity check": ~20 us each, so 200,000 keeps that start under 10 s here)
    snapshot_every: Annotated[int, Meta(ge=1000)] = 200_000
    # wall: real time. simulated: runs clock_speed times real time from clock_start.
    # stepped: stands at clock_start and moves only on clock.advance (deterministic runs).
    clock: Literal["wall", "simulated", "stepped"] = "wall"
    # simulated seconds per real second; bounded so the clock stays within datetime range
    clock_speed: Annotated[float, Meta(gt=0, le=1e6)] = 1.0
    clock_start: str | None = None  # RFC 3339 start of simulated or stepped time (required for stepped)
    # The journal's integrity check (PRAGMA quick_check, seq gaps; daemon/integrity.py).
    # true: the cheap checks before serving, the full check right after, writes refused if
    # it fails; "before_ready": the full check before serving (~2-20 s per GiB: cached or not);
    # false: none.
    integrity_check: bool | Literal["before_ready"] = True


class PlannerSettings(Struct, kw_only=True, forbid_unknown_fields=True):
    """The demand planner (backorder.daemon.planner, its worker backorder.planner.worker)."""

    enabled: bool = False  # start the worker process and run on the schedule below
    interval_hours: Annotated[float, Meta(gt=0, le=24 * 365)] = 24.0  # engine time between runs
    history_days: Annotated[int, Meta(ge=28, le=3650)] = 365  # demand window the models see
    min_history_days: Annotated[int, Meta(ge=7, le=3650)] = 28  # fewer: the SKU keeps its values
    max_change: Annotated[float, Meta(gt=0, le=10)] = 0.5  # one run moves a value by at most this share
    review_days: Annotated[float, Meta(ge=0, le=365)] = 0.0  # 0: position is reviewed on every event
    handling_days: Annotated[float, Meta(ge=0, le=365)] = 0.0  # receipt to available, added to lead time
    cycle_days: Annotated[float, Meta(gt=0, le=365)] = 14.0  # demand one purchase order should cover
    min_lead_times: Annotated[int, Meta(ge=1, le=1000)] = 3  # receipts of a SKU before its own lead time counts
    # The site's target unit fill rate, for every SKU without a service_level of its own.
    service_level: Annotated[float, Meta(ge=0.5, le=0.999)] = 0.97
    # "site": each run chooses per-SKU fill targets whose demand-weighted expected fill
    # meets service_level at the least safety stock (smooth SKUs higher, lumpy ones lower);
    # "sku": every such SKU is planned at service_level itself.
    service_target: Literal["site", "sku"] = "site"
    service_floor: Annotated[float, Meta(ge=0.5, le=0.999)] = 0.80  # "site": no SKU's target below this
    run_timeout_s: Annotated[float, Meta(gt=0)] = 120.0  # wall time a run may take before the worker is restarted
    # wall time from the worker's launch to its "ready" before it is killed and started
    # again (its imports: ~2 s of CPU, 52-72 s of wall time at a load average of 24 on the
    # 2-core test machine; a worker killed while importing starts again from scratch)
    start_timeout_s: Annotated[float, Meta(gt=0)] = 300.0
    restart_min_s: Annotated[float, Meta(gt=0)] = 0.5  # first restart backoff; doubles per crash
    restart_max_s: Annotated[float, Meta(gt=0)] = 60.0


class ProcurementSettings(Struct, kw_only=True, forbid_unknown_fields=True):
    """How requests go out to their sources."""

    # Requests raised for the same source within this many hours of the first go out as
    # one purchase order with several lines, its document sent when the window closes.
    # 0: every request is a purchase order of its own, sent at once.
    consolidate_hours: Annotated[float, Meta(ge=0, le=720)] = 0.0


class AllocationSettings(Struct, kw_only=True, forbid_unknown_fields=True):
    mode: Literal["fifo", "priority"] = "fifo"
    weights: Weights = msgspec.field(default_factory=Weights)


class FulfillmentSettings(Struct, kw_only=True, forbid_unknown_fields=True):
    auto_pick: bool = False
    # The carrier that labels shipments, by name: one of ``actors.carrier.CARRIERS`` (a
    # test keeps the two lists equal). An unknown name is refused, not ignored.
    carrier: Literal["local", "easypost", "ups"] = "local"
    # Routing, most specific first: an order's channel, then its service level ("rush" or
    # "standard"), then ``carrier``. Each value is a carrier name as above.
    carrier_by_channel: dict[str, Literal["local", "easypost", "ups"]] = {}
    carrier_by_service: dict[Literal["rush", "standard"], Literal["local", "easypost", "ups"]] = {}
    # Standard orders take the cheapest rate delivering within this many days (0 = any).
    standard_max_days: Annotated[int, Meta(ge=0, le=60)] = 0


class Address(Struct, kw_only=True, forbid_unknown_fields=True):
    """The ship-from address a remote carrier prints on the label."""

    name: str = ""
    company: str = ""
    street1: str = ""
    street2: str = ""
    city: str = ""
    state: str = ""
    zip: str = ""
    country: str = "US"
    phone: str = ""


class RemoteCarrierSettings(Struct, kw_only=True, forbid_unknown_fields=True):
    """One real carrier's REST API (``[carriers.easypost]``, ``[carriers.ups]``). Secrets are
    read at each use from an environment variable or a file (like the intake secrets), never
    from this file: EasyPost's API key and webhook secret; UPS's OAuth client id and secret."""

    base_url: str = ""  # "" = the carrier's production API
    key_env: str = ""  # EasyPost API key / UPS client id
    key_file: str = ""
    secret_env: str = ""  # UPS client secret
    secret_file: str = ""
    webhook_secret_env: str = ""  # tracking webhooks: HMAC secret (EasyPost), the credential header (UPS)
    webhook_secret_file: str = ""
    webhook_url: str = ""  # UPS Track Alert: where UPS posts each label's tracking events ("" = none)
    account_number: str = ""  # UPS shipper number
    timeout_s: Annotated[float, Meta(gt=0, le=120)] = 20.0
    parcel_weight_oz: Annotated[float, Meta(gt=0, le=2400)] = 16.0  # per unit
    from_address: Address = msgspec.field(default_factory=Address)


class CarriersSettings(Struct, kw_only=True, forbid_unknown_fields=True):
    easypost: RemoteCarrierSettings = msgspec.field(default_factory=RemoteCarrierSettings)
    ups: RemoteCarrierSettings = msgspec.field(default_factory=RemoteCarrierSettings)


# --- running as a site service (roles, limits, TCP, metrics) ----------------------------


class AccessSettings(Struct, kw_only=True, forbid_unknown_fields=True):
    """Who may connect (socket mode and group) and with which role (see docs/operations.md)."""

    group: str = ""  # group (name or number) of the socket files; "" = the daemon's group
    socket_mode: Annotated[str, Meta(pattern=r"^0?[0-7]{3}$")] = "0660"
    read_socket: str = ""  # optional second socket: every client on it has the read role
    write_uids: list[int | str] = []
    write_groups: list[int | str] = []
    read_uids: list[int | str] = []
    read_groups: list[int | str] = []
    default_role: Literal["read", "write"] = "read"  # a peer no rule names


class LimitsSettings(Struct, kw_only=True, forbid_unknown_fields=True):
    """Per-connection limits; breaking one costs the offender its connection, nobody else."""

    line_bytes: Annotated[int, Meta(ge=1024, le=64 * 1024 * 1024)] = 1024 * 1024
    idle_timeout_s: Annotated[float, Meta(ge=0)] = 0.0  # 0 = never; a subscriber is never idle
    inflight_wait_s: Annotated[float, Meta(gt=0)] = 30.0  # at max_inflight (or reply_bytes) this long: disconnected
    # encoded replies one connection may leave unsent before the daemon stops reading it and
    # building its heavy reads: what a client that pipelines large reads and reads slowly can
    # make the daemon hold is about this plus one reply. Measured: an order reply is ~200
    # bytes, an audit.query of 10,000 events ~2.9 MB; 4 MiB lets a client that reads keep one
    # such page in flight while the next is built.
    reply_bytes: Annotated[int, Meta(ge=64 * 1024)] = 4 * 1024 * 1024
    # a subscriber with [daemon] subscriber_buffer events unread: "lag" (drop, then a
    # `lagged` line) or "disconnect" (told `subscriber_overflow`, closed)
    subscriber_overflow: Literal["lag", "disconnect"] = "lag"
    # of each listener's connections ([daemon] max_connections for the Unix sockets, [tcp]
    # max_connections), this many (at most all but one) only write-role clients may take:
    # read-role clients cannot lock out the operators
    write_reserve: Annotated[int, Meta(ge=0)] = 16
    # The largest number a request may name: units of a line, a receipt or a count, and a
    # reorder policy's levels. Far below the schema's ceiling (2**53 - 1, backorder.numbers):
    # a typo such as 10**21 units is refused (invalid_quantity) instead of ordering it.
    max_quantity: Annotated[int, Meta(ge=1, le=MAX_INT)] = 1_000_000
    # The largest unit price an order line may carry, in currency units (invalid_price).
    max_money: Annotated[int, Meta(ge=1, le=MAX_MONEY)] = 10_000_000


class TcpClient(Struct, kw_only=True, forbid_unknown_fields=True):
    token_sha256: Annotated[str, Meta(pattern=r"^[0-9a-f]{64}$")]
    role: Literal["read", "write"] = "write"


class TcpSettings(Struct, kw_only=True, forbid_unknown_fields=True):
    """The optional TCP listener for remote integrators (off unless ``port`` is set)."""

    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=0, le=65535)] | None = None  # None = off; 0 = any free port
    certfile: str = ""  # TLS when both are set
    keyfile: str = ""
    auth_timeout_s: Annotated[float, Meta(gt=0)] = 10.0  # TLS handshake and auth line, at most
    max_connections: Annotated[int, Meta(ge=1)] = 64  # authenticated; apart from the Unix sockets'
    max_pending: Annotated[int, Meta(ge=1)] = 64  # connections authenticating at once
    max_pending_per_host: Annotated[int, Meta(ge=1)] = 8  # of those, from one address
    clients: dict[str, TcpClient] = {}


class MetricsSettings(Struct, kw_only=True, forbid_unknown_fields=True):
    """Prometheus text on http://host:port/metrics (off unless ``port`` is set)."""

    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=0, le=65535)] | None = None
    refresh_s: Annotated[float, Meta(gt=0)] = 1.0  # how often the trio loop refreshes the gauges
    timeout_s: Annotated[float, Meta(gt=0)] = 10.0  # a silent scraper's connection is closed after this
    max_connections: Annotated[int, Meta(ge=1, le=1024)] = 8  # served at once (one thread each); more are closed


class LoggingSettings(Struct, kw_only=True, forbid_unknown_fields=True):
    """The canonical one-line summary per request (backorder.daemon.requestlog)."""

    requests: Literal["none", "errors", "writes", "all"] = "writes"


# --- notifications ----------------------------------------------------------------------

Channel = Literal["none", "email", "webhook", "file"]


class SmtpSettings(Struct, kw_only=True, forbid_unknown_fields=True):
    host: str = "localhost"
    port: Annotated[int, Meta(ge=1, le=65535)] = 25
    starttls: bool = False
    ca_file: str = ""  # CA bundle to verify the server's certificate ("" = the system's)
    username: str = ""
    # The NAME of an environment variable holding the password: no secret in a config file.
    password_env: str = ""
    sender: str = "backorder@localhost"
    timeout_s: Annotated[float, Meta(gt=0)] = 30.0


class WebhookSettings(Struct, kw_only=True, forbid_unknown_fields=True):
    url: str = ""
    # The NAME of an environment variable holding the HMAC-SHA256 signing secret.
    secret_env: str = ""
    timeout_s: Annotated[float, Meta(gt=0)] = 10.0


class FileDropSettings(Struct, kw_only=True, forbid_unknown_fields=True):
    dir: str = "outbox"


class EdiSettings(Struct, kw_only=True, forbid_unknown_fields=True):
    """This site's identity in the X12 envelopes it sends."""

    isa_qualifier: Annotated[str, Meta(pattern=r"^[A-Z0-9]{2}$")] = "ZZ"
    isa_id: Annotated[str, Meta(min_length=1, max_length=15)] = "BACKORDER"
    gs_id: Annotated[str, Meta(min_length=2, max_length=15)] = "BACKORDER"
    usage: Literal["P", "T"] = "P"  # ISA15: production or test


class NotificationSettings(Struct, kw_only=True, forbid_unknown_fields=True):
    # "CHANNEL" or "CHANNEL/ACCOUNT" -> channel; "*" is the fallback. No route: "none".
    routes: dict[str, Channel] = {}
    # No longer read: every waiting line has a promise, whose delays [promises]
    # tolerance_days judges. Accepted so that files which set it still load.
    tolerance_hours: Annotated[float, Meta(ge=0)] = 24.0
    templates_dir: str = ""
    tracking_url: str = "https://track.example/{tracking}"
    message_id_domain: str = "backorder.local"
    max_attempts: Annotated[int, Meta(ge=1)] = 8
    backoff_base_s: Annotated[float, Meta(gt=0)] = 2.0
    backoff_max_s: Annotated[float, Meta(gt=0)] = 600.0
    jitter: Annotated[float, Meta(ge=0, le=1)] = 0.2
    breaker_failures: Annotated[int, Meta(ge=1)] = 5
    breaker_reset_s: Annotated[float, Meta(gt=0)] = 60.0
    depletion_check_s: Annotated[float, Meta(gt=0)] = 3600.0
    smtp: SmtpSettings = msgspec.field(default_factory=SmtpSettings)
    webhook: WebhookSettings = msgspec.field(default_factory=WebhookSettings)
    file: FileDropSettings = msgspec.field(default_factory=FileDropSettings)
    edi: EdiSettings = msgspec.field(default_factory=EdiSettings)

    def route(self, channel: str, account: str) -> str:
        r = self.routes
        return r.get(f"{channel}/{account}") or r.get(channel) or r.get("*") or "none"


# --- order intake: channels, accounts, validation profiles -----------------------------


class WritebackSettings(Struct, kw_only=True, forbid_unknown_fields=True):
    """How one channel account hears back from the site (``[channels.NAME.accounts.ID.writeback]``,
    or ``[channels.NAME.writeback]`` for every account of the channel): shipments and
    cancellations in the channel's own API, and available-to-sell per SKU. Sent through the
    notifier's outbox as notices of audience ``channel`` on the delivery channel
    ``NAME/ID`` (its own breaker). See docs/notifications.md "Writing back to the channels"."""

    enabled: bool = True
    fulfillment: bool = True  # shipments and cancellations
    stock: bool = False  # available-to-sell per SKU, coalesced per [channels.NAME] stock_sync_s
    # https://SHOP.myshopify.com, https://SHOP.example (WooCommerce), https://api.bigcommerce.com,
    # https://sellingpartnerapi-na.amazon.com; a loopback URL in tests. Unused by x12_850.
    base_url: str = ""
    # The NAME of an environment variable holding the credential, or a file holding it (first
    # line): Shopify / BigCommerce access token, Amazon LWA access token, WooCommerce
    # "consumer_key:consumer_secret".
    credential_env: str | None = None
    credential_file: str | None = None
    api_version: str = "2024-07"  # Shopify Admin REST version
    store_hash: str = ""  # BigCommerce
    marketplace_id: str = ""  # Amazon SP-API
    seller_id: str = ""  # Amazon SP-API (Listings Items path)
    product_type: str = "PRODUCT"  # Amazon Listings Items patch
    location_id: str = ""  # Shopify inventory location; BigCommerce inventory location (number)
    # site SKU -> the channel's id of the item whose stock is set: Shopify inventory_item_id,
    # WooCommerce product (or variation) id. BigCommerce and Amazon address items by SKU.
    item_ids: dict[str, str] = {}
    safety_buffer: Annotated[int, Meta(ge=0)] = 0  # units held back from every channel
    share: Annotated[float, Meta(ge=0, le=1)] = 1.0  # of what is left, the part this account may sell
    timeout_s: Annotated[float, Meta(gt=0)] = 10.0
    dir: str = "outbox/x12_856"  # x12_850 partners: where the 856 ship notices are written
    isa_qualifier: Annotated[str, Meta(pattern=r"^[A-Z0-9]{2}$")] = "ZZ"  # the partner's, X12 856
    isa_id: str = "PARTNER"
    gs_id: str = "PARTNER"


class ValidationProfile(Struct, kw_only=True, forbid_unknown_fields=True):
    """What a channel (or one account of it) may send: fields left unset at account level
    take the channel's value (see ``ChannelSettings.profile``)."""

    sku_aliases: dict[str, str] | None = None  # channel SKU -> site SKU
    # item id -> site SKU for lines without the seller's SKU (X12 850 buyer part numbers,
    # UPC/EAN/GTIN); a key may name the qualifier: "BP:BC-GR-01", "UP:012345678905"
    item_xref: dict[str, str] | None = None
    currencies: list[str] | None = None  # accepted ISO 4217 codes; empty = any known code
    lenient_numbers: bool | None = None  # accept quantities sent as strings ("3", "3.0")
    optional_fields: list[str] | None = None  # canonical fields the source may withhold (e.g. "email")
    known_skus_only: bool | None = None  # reject SKUs (after aliases) the site never configured
    hold_statuses: list[str] | None = None  # source payment statuses that put an order on hold
    rush_services: list[str] | None = None  # shipping service names/codes that mean rush
    priority: bool | None = None  # the customer of this account is a priority customer
    secret_env: str | None = None  # name of the environment variable holding the signing secret
    secret_file: str | None = None  # or a file holding it (first line)
    # an account's own table replaces the channel's whole (and is its own delivery channel)
    writeback: WritebackSettings | None = None


class ChannelSettings(ValidationProfile, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = True
    accounts: dict[str, ValidationProfile] = {}
    # write-back: at most one available-to-sell update per SKU and account this often
    stock_sync_s: Annotated[float, Meta(gt=0)] = 60.0

    def profile(self, account: str) -> ValidationProfile:
        """The channel's profile with the account's explicit keys on top."""
        acct = self.accounts.get(account)
        fields = {f: getattr(self, f) for f in ValidationProfile.__struct_fields__}
        if acct is not None:
            fields.update({f: v for f in ValidationProfile.__struct_fields__ if (v := getattr(acct, f)) is not None})
        return ValidationProfile(**fields)


class IntakeSettings(Struct, kw_only=True, forbid_unknown_fields=True):
    queue_size: Annotated[int, Meta(ge=1)] = 2000  # deliveries waiting or in flight, all lanes
    priority_reserve: Annotated[int, Meta(ge=0)] = 200  # of queue_size, only for rush / high-value
    workers: Annotated[int, Meta(ge=1)] = 64  # deliveries handed to the order actor at once
    high_value: Annotated[float, Meta(ge=0)] = 1000.0  # order value that earns the priority lane
    max_body_bytes: Annotated[int, Meta(ge=1024)] = 1_048_576
    retry_attempts: Annotated[int, Meta(ge=0)] = 3  # transient failures retried this often
    retry_base_s: Annotated[float, Meta(gt=0)] = 0.05  # first backoff; doubles, with jitter
    retry_max_s: Annotated[float, Meta(gt=0)] = 5.0
    retry_after_s: Annotated[int, Meta(ge=1)] = 2  # Retry-After of a 503
    silent_after_s: Annotated[float, Meta(gt=0)] = 3600.0  # a source quiet this long is "silent"
    signature_samples: Annotated[int, Meta(ge=0, le=1000)] = 20  # bad-signature deliveries kept per source
    max_sources: Annotated[int, Meta(ge=1)] = 1000  # (channel, account) pairs tracked; more share "(other)"
    listen: str | None = None  # "127.0.0.1:8080" turns the webhook listener on (port 0: any)
    # The webhook listener's guards against slow or idle peers (see docs/intake.md)
    max_connections: Annotated[int, Meta(ge=1)] = 256  # served at once; more wait in the accept backlog
    body_timeout_s: Annotated[float, Meta(gt=0)] = 10.0  # to receive a request's whole body, else 408
    idle_timeout_s: Annotated[float, Meta(gt=0)] = 5.0  # a connection with no request (or headers) in progress
    read_timeout_s: Annotated[float, Meta(gt=0)] = 60.0  # silence from the peer, including while it awaits a reply
    max_header_bytes: Annotated[int, Meta(ge=1024, le=1_048_576)] = 16384  # request line and headers


class KpiSettings(Struct, kw_only=True, forbid_unknown_fields=True):
    """How the KPIs are measured (``stats``, metrics, the console). Read at start: the
    figures are rebuilt from the journal with the target in force, so a change needs a restart."""

    # A backordered line filled (fully allocated) within this many hours of being
    # backordered is a hit of the backorder fill rate; later, or cancelled, a miss. Lines
    # carry no promise yet: the same target applies to every line.
    backorder_target_hours: Annotated[float, Meta(gt=0, le=87600)] = 48.0


class PromiseSettings(Struct, kw_only=True, forbid_unknown_fields=True):
    """Delivery promises (``[promises]``, docs/operations.md "Delivery promises"): each
    line's ship-by date at order time (``actors/promise_rules``). A date = when its units
    are expected (stock: today; an open supply: its expected date; nothing open: today +
    the source's lead time at ``lead_time_percentile``) + ``handling_days``."""

    handling_days: Annotated[int, Meta(ge=0, le=365)] = 1  # from units at the site to shipped
    # the measured lead time (planner) at this percentile: mean + z * sd; the policy's
    # lead_time_days while the planner has not measured the source
    lead_time_percentile: Annotated[float, Meta(ge=50, le=99.9)] = 95.0
    # a line whose expected ship-by date moves later than the date last told by more than
    # this gets a delay notice with the new date (once per move)
    tolerance_days: Annotated[int, Meta(ge=0, le=365)] = 0
    notify_earlier: bool = False  # also tell a customer when the date moves earlier
    # a promise's confidence is how often promises of its kind were kept, starting from
    # the rule-of-thumb value weighted as this many promises (``actors/promise_outcomes``)
    confidence_prior_weight: Annotated[float, Meta(gt=0, le=100000)] = 10.0


class RetentionSettings(Struct, kw_only=True, forbid_unknown_fields=True):
    """How long a closed order stays in memory (``[retention]``, docs/operations.md
    "Retention"). An order shipped or cancelled more than ``hot_days`` engine days ago
    leaves memory at the next engine-day boundary: its record moves to the journal
    database's ``archived_orders`` table, where reads and duplicate checks still find it."""

    hot_days: Annotated[int, Meta(ge=0, le=3650)] = 7


class ThreeplSettings(Struct, kw_only=True, forbid_unknown_fields=True):
    """A third-party logistics provider that takes new orders while the site's pick backlog
    is long (``[threepl]``, docs/operations.md "A 3PL for spikes"). Routing turns on when the
    backlog reaches ``backlog_on_hours`` and off again only once it has fallen to
    ``backlog_off_hours`` (hysteresis: between the two it stays as it was, so it never flaps).
    The backlog in hours = units in site shipments awaiting pick / the site's pick rate, the
    units the site shipped per hour over the last ``pick_rate_window_s``, never below
    ``min_pick_rate_per_hour``."""

    enabled: bool = False
    provider: Literal["shipbob", "shipstation"] = "shipbob"
    # https://api.shipbob.com/2.0, https://ssapi.shipstation.com; a loopback URL in tests
    base_url: str = ""
    # The NAME of an environment variable holding the API credential, or a file holding it
    # (first line): a ShipBob personal access token, ShipStation "api_key:api_secret".
    credential_env: str | None = None
    credential_file: str | None = None
    # The secret that signs the provider's shipment webhooks (env var NAME or file)
    webhook_secret_env: str | None = None
    webhook_secret_file: str | None = None
    channel_id: str = ""  # ShipBob: the shipbob_channel_id header; ShipStation: advancedOptions.storeId
    shipping_method: str = "Standard"
    backlog_on_hours: Annotated[float, Meta(gt=0)] = 4.0
    backlog_off_hours: Annotated[float, Meta(ge=0)] = 2.0
    pick_rate_window_s: Annotated[float, Meta(ge=60, le=86400)] = 3600.0
    min_pick_rate_per_hour: Annotated[float, Meta(gt=0)] = 60.0
    inventory_poll_s: Annotated[float, Meta(gt=0)] = 300.0
    timeout_s: Annotated[float, Meta(gt=0)] = 10.0

    def problems(self) -> list[str]:
        if not self.enabled:
            return []
        out = []
        if self.backlog_off_hours >= self.backlog_on_hours:
            out.append("threepl.backlog_off_hours: must be below backlog_on_hours (else routing would flap)")
        if not self.base_url:
            out.append("threepl.base_url: required when the 3PL is enabled")
        if not (self.credential_env or self.credential_file):
            out.append("threepl: name credential_env or credential_file")
        if not (self.webhook_secret_env or self.webhook_secret_file):
            out.append("threepl: name webhook_secret_env or webhook_secret_file (its shipment webhooks are signed)")
        return out


class Settings(Struct, kw_only=True, forbid_unknown_fields=True):
    daemon: DaemonSettings = msgspec.field(default_factory=DaemonSettings)
    logging: LoggingSettings = msgspec.field(default_factory=LoggingSettings)
    access: AccessSettings = msgspec.field(default_factory=AccessSettings)
    limits: LimitsSettings = msgspec.field(default_factory=LimitsSettings)
    tcp: TcpSettings = msgspec.field(default_factory=TcpSettings)
    metrics: MetricsSettings = msgspec.field(default_factory=MetricsSettings)
    allocation: AllocationSettings = msgspec.field(default_factory=AllocationSettings)
    fulfillment: FulfillmentSettings = msgspec.field(default_factory=FulfillmentSettings)
    carriers: CarriersSettings = msgspec.field(default_factory=CarriersSettings)
    strict_skus: bool = False
    default_policy: ReorderPolicy = msgspec.field(default_factory=ReorderPolicy)
    planner: PlannerSettings = msgspec.field(default_factory=PlannerSettings)
    skus: dict[str, ReorderPolicy] = {}
    sources: dict[str, Source] = {}
    notifications: NotificationSettings = msgspec.field(default_factory=NotificationSettings)
    locations: dict[str, str] = {}  # SKU -> storage location (pick lists walk in this order)
    intake: IntakeSettings = msgspec.field(default_factory=IntakeSettings)
    channels: dict[str, ChannelSettings] = {}
    kpi: KpiSettings = msgspec.field(default_factory=KpiSettings)
    procurement: ProcurementSettings = msgspec.field(default_factory=ProcurementSettings)
    threepl: ThreeplSettings = msgspec.field(default_factory=ThreeplSettings)
    promises: PromiseSettings = msgspec.field(default_factory=PromiseSettings)
    retention: RetentionSettings = msgspec.field(default_factory=RetentionSettings)

    def problems(self) -> list[str]:
        """Cross-field checks msgspec cannot express, each prefixed by its key path."""
        cap = self.limits.max_quantity
        out = [f"default_policy: {p}" for p in self.default_policy.problems(cap)]
        if self.daemon.clock_start is not None and not _is_timestamp(self.daemon.clock_start):
            out.append(
                f"daemon.clock_start: {self.daemon.clock_start!r} is not an RFC 3339 timestamp "
                "(e.g. 2026-01-05T09:00:00Z)"
            )
        if self.daemon.clock == "stepped" and self.daemon.clock_start is None:
            # a start read from the wall would make two runs of the same script differ
            out.append(
                'daemon.clock_start: required with clock = "stepped" (the engine time a '
                "deterministic run starts at, e.g. 2026-01-05T09:00:00Z)"
            )
        for sku, pol in self.skus.items():
            out += [f"skus.{sku}: {p}" for p in pol.problems(cap)]
        out += intake_problems(self)
        out += service_problems(self)
        out += self.threepl.problems()
        return out


# The channels intake has an adapter for: the names ``[channels.NAME]`` may use. Kept
# here so that config imports nothing of the product; intake's adapter table is checked
# against it (tests/unit/test_import_graph.py).
CHANNEL_NAMES = frozenset(
    {"shopify", "woocommerce", "amazon_sp", "bigcommerce", "x12_850", "csv", "x12_855", "x12_856"}
)


def intake_problems(settings: Settings) -> list[str]:
    out = []
    for name in settings.channels:
        if name not in CHANNEL_NAMES:
            out.append(f"channels.{name}: unknown channel (known: {', '.join(sorted(CHANNEL_NAMES))})")
    out += writeback_problems(settings)
    listen = settings.intake.listen
    if listen is not None and not re.match(r"^[^:]+:\d{1,5}$", listen):
        out.append(f"intake.listen: {listen!r} is not HOST:PORT")
    return out


def _writeback_tables(settings: Settings) -> list[tuple[str, str, WritebackSettings]]:
    """(key path, delivery channel, settings) of every enabled write-back table of an
    enabled channel: an account's own table is ``"CHANNEL/ACCOUNT"``; the channel's table is
    ``"CHANNEL/*"``, for every other account of the channel, listed or not (intake names
    accounts from the source, e.g. the shop's domain, so they need not be listed)."""
    out = []
    for name, ch in settings.channels.items():
        if not ch.enabled:
            continue
        for account, prof in ch.accounts.items():
            if prof.writeback is not None and prof.writeback.enabled:
                out.append((f"channels.{name}.accounts.{account}.writeback", f"{name}/{account}", prof.writeback))
        if ch.writeback is not None and ch.writeback.enabled:
            out.append((f"channels.{name}.writeback", f"{name}/*", ch.writeback))
    return out


def writeback_targets(settings: Settings) -> dict[str, WritebackSettings]:
    """The delivery channels of write-back (``"CHANNEL/ACCOUNT"`` or ``"CHANNEL/*"``, see
    ``_writeback_tables``) -> their settings."""
    return {target: wb for _path, target, wb in _writeback_tables(settings)}


def writeback_problems(settings: Settings) -> list[str]:
    out = []
    for path, target, wb in _writeback_tables(settings):
        channel = target.partition("/")[0]
        if channel == "csv":
            out.append(f"{path}: csv orders have no channel API to write back to")
            continue
        if channel != "x12_850" and not wb.base_url:
            out.append(f"{path}.base_url: required to write back to {channel}")
        if channel != "x12_850" and not (wb.credential_env or wb.credential_file):
            out.append(f"{path}: name credential_env or credential_file")
        if channel == "bigcommerce" and not wb.store_hash:
            out.append(f"{path}.store_hash: required for BigCommerce")
        if channel == "amazon_sp" and not wb.marketplace_id:
            out.append(f"{path}.marketplace_id: required for Amazon SP-API")
        if channel == "amazon_sp" and wb.stock and not wb.seller_id:
            out.append(f"{path}.seller_id: required for Amazon stock levels")
        if channel == "shopify" and wb.stock and not wb.location_id:
            out.append(f"{path}.location_id: required for Shopify inventory levels")
    return out


def service_problems(s: Settings) -> list[str]:
    """The service settings msgspec cannot check: users and groups must exist on this
    host, TCP clients need a token, TLS needs both files, a read socket is a second one,
    a webhook is signed."""
    out: list[str] = []
    a = s.access
    resolved: dict[str, set[int]] = {}  # key -> the ids found, for the overlap check below
    for key, resolve, kind in (
        ("write_uids", resolve_uid, "user"),
        ("read_uids", resolve_uid, "user"),
        ("write_groups", resolve_gid, "group"),
        ("read_groups", resolve_gid, "group"),
    ):
        for who in getattr(a, key):
            try:
                resolved.setdefault(key, set()).add(resolve(who))
            except KeyError:
                out.append(f"access.{key}: no {kind} named {who!r} on this host")
    if a.group and resolve_gid_safe(group_id(a.group)) is None:
        out.append(f"access.group: no group named {a.group!r} on this host")
    both = resolved.get("write_uids", set()) & resolved.get("read_uids", set())
    if both:
        out.append(f"access.read_uids: uid(s) {sorted(both)} are also in access.write_uids")
    t = s.tcp
    if bool(t.certfile) != bool(t.keyfile):
        out.append("tcp.certfile: TLS needs both tcp.certfile and tcp.keyfile")
    if t.port is not None and not t.clients:
        out.append(
            "tcp.clients: the TCP listener is on (tcp.port) but no client has a token "
            "(add one with `backorder token NAME`)"
        )
    if a.read_socket and a.read_socket == s.daemon.socket:
        out.append("access.read_socket: must differ from daemon.socket")
    if t.max_pending_per_host > t.max_pending:
        out.append(f"tcp.max_pending_per_host: {t.max_pending_per_host} is above tcp.max_pending ({t.max_pending})")
    for name, src in s.sources.items():
        if src.email and not is_addr_spec(src.email):
            out.append(f"sources.{name}.email: {src.email!r} is not one e-mail address (local@domain)")
    if webhook_in_use(s) and not s.notifications.webhook.secret_env:
        # a receiver could not tell our notices from anyone's: an empty key signs nothing
        out.append(
            "notifications.webhook.secret_env: webhook notices are on but unsigned; name the "
            "environment variable that holds the signing secret"
        )
    return out


def webhook_in_use(s: Settings) -> bool:
    """Whether any notice can go out by webhook: a URL, a route or a source's ``deliver``."""
    n = s.notifications
    return (
        bool(n.webhook.url)
        or "webhook" in n.routes.values()
        or any(src.deliver == "webhook" for src in s.sources.values())
    )


_NAMED_TABLES = {"skus": ReorderPolicy, "sources": Source, "channels": ChannelSettings}
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _name_table(raw: bytes | str, text: str) -> str:
    """msgspec shows an entry of ``[skus.NAME]`` / ``[sources.NAME]`` as `$.skus[...]`:
    find the first entry that fails on its own and put its name in the path."""
    m = re.search(r"`\$\.(skus|sources|channels)\[\.\.\.\]", text)
    if m is None:
        return text
    section = m.group(1)
    try:
        tables = msgspec.toml.decode(raw).get(section)
    except (msgspec.DecodeError, AttributeError):
        return text
    for key, value in (tables if isinstance(tables, dict) else {}).items():
        try:
            msgspec.convert(value, _NAMED_TABLES[section])
        except msgspec.ValidationError:
            shown = key if _BARE_KEY.match(key) else msgspec.json.encode(key).decode()
            return text.replace(f"`$.{section}[...]", f"`$.{section}.{shown}", 1)
    return text


def every_validation_error(raw: bytes | str, settings_type: type) -> list[str]:
    """Validate each top-level key of a TOML file on its own, so that one bad table does not
    hide the problems of the others. Returns msgspec's messages, path shown as a TOML key."""
    try:
        doc = msgspec.toml.decode(raw)
    except msgspec.DecodeError:
        return []
    if not isinstance(doc, dict):
        return []
    out = []
    fields = {f.name: f for f in msgspec.structs.fields(settings_type)}
    for key, value in doc.items():
        if key not in fields:
            out.append(f"Object contains unknown field `{key}`")
            continue
        sub = {key: value}
        try:
            msgspec.convert(sub, settings_type)
        except msgspec.ValidationError as exc:
            # the same `[skus.NAME]` naming as the first message, or its dedupe misses this one
            out.append(_name_table(raw, str(exc)).replace("`$.", "`"))
    return out


def _is_timestamp(text: str) -> bool:
    """Whether ``text`` reads as an RFC 3339 timestamp (or a date), as the clock parses it."""
    try:
        parse_ts(text)
    except (ValueError, OverflowError):
        return False
    return True


def load_settings(path: str | Path | None = None) -> Settings:
    """Read and validate a TOML file; no path means the defaults."""
    if path is None:
        return Settings()
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_settings(raw, str(path))


def parse_settings(raw: bytes | str, name: str = "config") -> Settings:
    try:
        settings = msgspec.toml.decode(raw, type=Settings)
    except msgspec.ValidationError as exc:
        # msgspec names the path as `$.daemon.grace_s`; show it as a TOML key.
        text = _name_table(raw, str(exc)).replace("`$.", "`").replace("`$`", "`(top level)`")
        # name every bad table, not only the first msgspec meets
        others = [t for t in every_validation_error(raw, Settings) if t not in text]
        raise ConfigError("; ".join([f"{name}: {text}", *others])) from None
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{name}: not valid TOML: {exc}") from None
    problems = settings.problems()
    if problems:
        raise ConfigError(f"{name}: " + "; ".join(problems))
    return settings
