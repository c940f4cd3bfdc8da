"""What the daemon and the planner worker say to each other: one msgspec JSON object per
line, the daemon writing to the worker's stdin, the worker answering on its stdout.

The worker reads the demand, the receipts and the request lead times itself, from the
journal file (read only, incrementally: it remembers the last seq it has read), up to the
``upto_seq`` the daemon names (everything durable when the run was asked for). The daemon
sends only what the journal cannot say cheaply: each SKU's policy as it stands and the
planner's settings. Why not send the history: a year of daily demand for 2,000 SKUs is
~730,000 numbers per run through the trio loop (encoding it would block the loop for tens
of ms and keep the series in the daemon's memory); the journal already has it.
"""

from __future__ import annotations

from collections.abc import Sequence

from msgspec import Struct


class SkuInput(Struct, kw_only=True, frozen=True):
    sku: str
    mode: str
    service_level: float
    reorder_point: int
    order_up_to: int
    safety_stock: int
    lead_time_days: float
    moq: int
    pack_size: int
    source: str  # "supplier:NAME" / "transfer:SITE": lead times are measured per source
    # service_level was set for this SKU by a person: a site-wide allocation leaves it
    own_target: bool = False


class Params(Struct, kw_only=True, frozen=True):
    history_days: int
    min_history_days: int
    max_change: float
    review_days: float
    handling_days: float
    cycle_days: float
    min_lead_times: int
    # "sku": each SKU planned at its service_level; "site": targets chosen across the SKUs
    # so that their demand-weighted expected fill meets site_service_level at the least stock
    service_target: str = "sku"
    site_service_level: float = 0.97
    service_floor: float = 0.80
    site_marginal: float | None = None  # a run over some SKUs: the last whole run's marginal


class RunRequest(Struct, kw_only=True, frozen=True, tag="run"):
    run_id: int
    db: str
    upto_seq: int
    now: float
    params: Params
    skus: list[SkuInput]


class Levels(Struct, kw_only=True, frozen=True):
    reorder_point: int
    order_up_to: int
    safety_stock: int


class SkuResult(Struct, kw_only=True, frozen=True):
    """The planner's word on one SKU. ``new`` None: keep the levels (``reasons`` says why)."""

    sku: str
    new: Levels | None
    demand_class: str
    model: str
    # Sequences: decoded as lists; the daemon keeps them as arrays (daemon.planner.compact)
    forecast: Sequence[float]  # next 30 days, daily, units
    history: Sequence[float] = ()  # the last 30 days of demand the forecast followed, daily units
    daily_mean: float = 0.0
    lead_time_demand: float = 0.0
    error_sd: float = 0.0
    lead_time_days: float = 0.0
    lead_time_sd: float = 0.0
    lead_time_measured: bool = False
    tracking_signal: float = 0.0
    biased: bool = False
    service_level: float = 0.0  # the fill target it was planned at (0: not planned)
    reasons: list[str] = []


class SiteFill(Struct, kw_only=True, frozen=True):
    """A run's service levels set across SKUs: the site's target, the demand-weighted
    expected fill of the targets chosen, whether it meets the target, the marginal fill
    per unit of safety stock they were chosen at, over how many SKUs (of which how many
    kept a target of their own)."""

    target: float
    expected: float
    feasible: bool
    marginal: float
    skus: int
    own_targets: int


class Ready(Struct, kw_only=True, frozen=True, tag="ready"):
    """The worker's first line, once its imports are done."""

    pid: int


class Results(Struct, kw_only=True, frozen=True, tag="results"):
    """Part of a run's results (``CHUNK`` SKUs): the daemon decodes and applies each part
    between its other work, instead of one multi-megabyte line that would hold the trio
    loop for tens of milliseconds (2,000 SKUs with their 30-day forecasts: ~1.5 MB)."""

    run_id: int
    results: list[SkuResult]


class RunReply(Struct, kw_only=True, frozen=True, tag="done"):
    """The end of a run, after its ``Results`` lines."""

    run_id: int
    read_upto: int
    duration_s: float
    skus: int
    site: SiteFill | None = None  # service_target = "site"


class RunFailed(Struct, kw_only=True, frozen=True, tag="failed"):
    """A run the worker could not do (the journal unreadable, a bug): it stays up."""

    run_id: int
    error: str


Inbound = RunRequest
# SKU results per Results line: a line is decoded in one go (~12 KB), and the worker's
# results flow while the daemon takes in the ones before (one SKU per loop step under the
# stepped clock: see daemon.planner.Planner._apply).
CHUNK = 16
Outbound = Ready | Results | RunReply | RunFailed
