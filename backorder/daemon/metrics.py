"""Metrics in Prometheus text format (``[metrics] port``, off by default).

Two halves, so that no thread reads what the trio loop owns:
- ``Recorder``: plain counters and histogram buckets, updated on the trio thread by the
  socket code and the journal's commit listener (a dict increment per request: cheap
  enough to stay on even when the endpoint is off).
- ``Metrics``: every ``refresh_s`` the trio loop builds the complete set of metric
  families (prometheus_client objects) from the recorder and the model and swaps it in;
  the HTTP threads only read that finished, immutable list.

The HTTP server is prometheus_client's WSGI app on a thread per connection, bounded: a
connection silent for ``timeout_s`` is closed, and at most ``max_connections`` are served
at once (beyond that a new connection is closed at once), so idle peers cannot pile up
threads.
"""

from __future__ import annotations

import bisect
import socket
import threading
import time
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import structlog
import trio
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from backorder.actors import views

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

    from backorder.actors.model import World
    from backorder.actors.router import Router
    from backorder.config.settings import MetricsSettings
    from backorder.daemon.journal import Journal
    from backorder.daemon.server import Hub

log = structlog.get_logger()

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)


class Hist:
    """A histogram as plain numbers: counts per bucket (not cumulative), sum."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def family(self, name: str, doc: str) -> HistogramMetricFamily:
        cumulative, running = [], 0
        for bound, n in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            running += n
            cumulative.append((bound, running))
        return HistogramMetricFamily(name, doc, buckets=cumulative, sum_value=self.total)


class Recorder:
    """Counters of the trio thread (see the module docstring)."""

    def __init__(self) -> None:
        self.requests: dict[str, int] = {}
        self.errors: dict[tuple[str, str], int] = {}
        self.latency = Hist(LATENCY_BUCKETS)
        self.commit = Hist(COMMIT_BUCKETS)
        self.batch = Hist(BATCH_BUCKETS)
        self.rejected = 0  # requests refused as bad input (health: rejected_requests)

    def request(self, op: str) -> None:
        self.requests[op] = self.requests.get(op, 0) + 1

    def error(self, op: str, code: str) -> None:
        key = (op, code)
        self.errors[key] = self.errors.get(key, 0) + 1

    def committed(self, journal) -> None:
        """A journal listener: called on the trio thread after each commit."""
        self.commit.observe(journal.last_commit_s)
        self.batch.observe(journal.last_batch)


class _Snapshot:
    """The collector the HTTP thread calls: returns the families last built by the loop."""

    def __init__(self) -> None:
        self.families: list = []

    def collect(self):
        return list(self.families)


class _Handler(WSGIRequestHandler):
    """One connection; ``timeout`` (set per server) applies to every read of the socket."""

    def log_message(self, format, *args) -> None:
        """Scrapes are not logged."""

    def handle(self) -> None:
        try:
            super().handle()
        except OSError:  # TimeoutError included: a silent or vanished peer; the connection closes
            pass


class _Server(ThreadingMixIn, WSGIServer):
    """A thread per connection, at most ``slots`` of them. Refusing (closing) beyond the
    cap rather than waiting keeps the accept loop free to notice ``shutdown``."""

    daemon_threads = True
    slots: threading.BoundedSemaphore

    def process_request(self, request, client_address) -> None:
        if not self.slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request, client_address) -> None:
        log.warning("metrics_request_failed", peer=str(client_address), exc_info=True)


def serve_http(
    host: str, port: int, registry: CollectorRegistry, timeout_s: float, max_connections: int
) -> tuple[_Server, threading.Thread]:
    """Start the endpoint on a daemon thread; returns the server and its thread."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
    server_class = type("MetricsServer", (_Server,), {"address_family": family})
    handler = type("MetricsHandler", (_Handler,), {"timeout": timeout_s})
    server = make_server(host, port, make_wsgi_app(registry), server_class, handler_class=handler)
    server.slots = threading.BoundedSemaphore(max_connections)
    thread = threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True)
    thread.start()
    return server, thread


class Metrics:
    """The endpoint: its families are built from the parts passed here (read on the trio
    thread at each refresh)."""

    def __init__(
        self,
        cfg: MetricsSettings,
        *,
        recorder: Recorder,
        journal: Journal,
        world: World,
        router: Router,
        connections: Collection,
        hub: Hub,
        started_at: float,
        now: Callable[[], float],
    ) -> None:
        self.cfg = cfg
        self.recorder = recorder
        self.journal = journal
        self.world = world
        self.router = router
        self.connections = connections
        self.hub = hub
        self.started_at = started_at
        self.now = now  # the engine clock: the KPI windows are engine days
        self.registry = CollectorRegistry(auto_describe=False)
        self.snapshot = _Snapshot()
        self.registry.register(self.snapshot)

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        m = self.cfg
        self.refresh()
        server, thread = serve_http(m.host, m.port or 0, self.registry, m.timeout_s, m.max_connections)
        log.info("metrics_listening", host=m.host, port=server.server_port)
        task_status.started()
        try:
            while True:
                await trio.sleep(m.refresh_s)
                self.refresh()
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(server.shutdown)
            server.server_close()
            thread.join(5)

    def refresh(self) -> None:
        """Build every family from the daemon's state (trio thread) and swap them in."""
        rec = self.recorder
        world = self.world
        out = []
        c = CounterMetricFamily("backorder_requests", "Requests received, by op", labels=["op"])
        for op, n in sorted(rec.requests.items()):
            c.add_metric([op], n)
        out.append(c)
        c = CounterMetricFamily("backorder_request_errors", "Error replies, by op and code", labels=["op", "code"])
        for (op, code), n in sorted(rec.errors.items()):
            c.add_metric([op, code], n)
        out.append(c)
        out.append(
            rec.latency.family(
                "backorder_reply_latency_seconds", "From reading a request to sending its reply (durable)"
            )
        )
        out.append(rec.commit.family("backorder_journal_commit_seconds", "Duration of one journal commit"))
        out.append(rec.batch.family("backorder_journal_commit_batch_events", "Events per journal commit"))
        j = self.journal
        out += [
            _gauge("backorder_journal_last_seq", "Last journaled event", j.last_seq),
            _gauge("backorder_journal_lag_events", "Journaled events not yet durable", j.last_seq - j.committed_seq),
            _gauge(
                "backorder_journal_last_commit_timestamp_seconds", "Wall time of the last commit", j.last_commit_at or 0
            ),
        ]
        r = self.router
        depths = [ch.statistics().current_buffer_used for ch in r.inboxes.values()]
        g = GaugeMetricFamily("backorder_mailbox_depth", "Messages waiting in actor mailboxes", labels=["actor"])
        g.add_metric(["order"], r.order_inbox.statistics().current_buffer_used)
        g.add_metric(["sku_total"], sum(depths))
        g.add_metric(["sku_max"], max(depths, default=0))
        out.append(g)
        g = GaugeMetricFamily("backorder_actors", "SKU actors by state", labels=["state"])
        g.add_metric(["active"], len(r.inboxes))
        g.add_metric(["passivated"], len(world.skus) - len(r.inboxes))
        out.append(g)
        out.append(_counter("backorder_actor_restarts", "Actor crashes (each restarted)", r.crashes))
        out.append(_counter("backorder_actor_activations", "SKU actor activations", r.activations))
        out.append(_counter("backorder_actor_passivations", "SKU actor passivations", r.passivations))
        report = views.kpi_report(world, self.now())
        k = views.kpis(world, self.now(), report)  # not stats(): no oldest-wait scan on every refresh
        out += [
            _gauge("backorder_backorder_lines", "Order lines waiting for stock", k["open_backorder_lines"]),
            _gauge("backorder_backorder_units", "Units waiting for stock", k["units_waiting"]),
            _gauge(
                "backorder_fulfillment_rate",
                'backorder_kpi_backorder_fill_rate_lines{window="all"}: backordered lines filled within '
                "[kpi] backorder_target_hours / backordered lines due (cancelled while waiting = a miss)",
                k["fulfillment_rate"],
            ),
            _gauge(
                "backorder_reorder_lead_time_hours",
                'backorder_kpi_reorder_lead_time_hours{window="all"}: mean hours from raise to last receipt, '
                "open requests past their expected date counted by their age so far",
                k["avg_reorder_lead_time_hours"],
            ),
            _gauge(
                "backorder_order_accuracy",
                'backorder_kpi_order_accuracy_post_backorder{window="all"}: backordered orders shipped '
                "with no recorded exception / backordered orders shipped",
                k["order_accuracy"],
            ),
            _gauge("backorder_dead_letters", "Dead-lettered messages", k["dead_letters"]),
            _gauge("backorder_orders", "Orders known", k["orders"]),
            _gauge("backorder_connections", "Open client connections", len(self.connections)),
            _gauge("backorder_subscribers", "Event subscribers", len(self.hub.subscribers)),
            _gauge("backorder_uptime_seconds", "Seconds since start", time.time() - self.started_at),
        ]
        out += kpi_families(report)
        self.snapshot.families = out  # one reference swap: the HTTP thread sees old or new


def kpi_families(report: dict) -> list[GaugeMetricFamily]:
    """Every windowed KPI of ``stats.kpis`` as gauges with a ``window`` label (7d, 30d,
    all): ``backorder_kpi_<name>`` (the value; NaN while the denominator is 0),
    ``..._numerator`` and ``..._denominator``; for the lead time also p50 / p90, the open
    overdue requests, and the same per ``source``. The help text is the KPI's definition."""
    out = []
    for name, kpi in report.items():
        base = f"backorder_kpi_{name}"
        doc = f"{kpi['formula']}. {kpi['help']}"
        per_source = name == "reorder_lead_time_hours"
        labels = ["window", "source"] if per_source else ["window"]
        fields = ["value", "numerator", "denominator"] + (["p50", "p90", "open_overdue"] if per_source else [])
        families = {
            f: GaugeMetricFamily(
                base if f == "value" else f"{base}_{f}", doc if f == "value" else f"{f}: {doc}", labels=labels
            )
            for f in fields
        }
        for w in kpi["windows"]:
            rows = [(w, "*")] + ([(fig, src) for src, fig in w["by_source"].items()] if per_source else [])
            for fig, source in rows:
                label = [w["window"], source] if per_source else [w["window"]]
                for f, fam in families.items():
                    value = fig[f]
                    fam.add_metric(label, float("nan") if value is None else value)
        out += families.values()
    return out


def _gauge(name: str, doc: str, value) -> GaugeMetricFamily:
    # a KPI with nothing to compute yet (no shipment, no reorder) is NaN, not 0
    return GaugeMetricFamily(name, doc, value=float("nan") if value is None else value)


def _counter(name: str, doc: str, value) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)
