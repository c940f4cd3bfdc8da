"""SIGHUP: reload the config file without a restart.

Applied at once:
- ``[daemon] log_level`` and ``[logging]``;
- the role rules of ``[access]`` and ``[limits]``, for connections accepted from now on
  (the socket files' group and mode and the read socket need a restart);
- the TCP clients' tokens (``[tcp.clients]``), for new connections;
- ``[allocation]``: sent to the order actor as a ``policy.set`` (journaled, correlation id
  ``config-reload``);
- each ``[skus.NAME]`` table that differs from the running file: a journaled
  ``sku_configured`` event, cause ``config``, exactly as the file's policies are
  journaled at start, so a replay rebuilds the same state;
- ``[default_policy]``, for SKUs with no journaled policy (as a restart would);
- ``[notifications]`` (channel settings, routes, templates, retries), see ``_channels``;
- ``[intake]`` (but its listener and workers), ``[channels.*]``, ``strict_skus``,
  ``[sources]``, ``[locations]``, ``[procurement]`` and ``[promises]``, see ``_intake``.

The rest of ``[daemon]``, ``[tcp]``, ``[metrics]`` and ``[planner]`` needs a restart: a change there is
logged (``reload_needs_restart``) and otherwise ignored. An invalid file is refused with a
log line; the running config stays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
import structlog

from backorder import protocol as p
from backorder.actors import sku_rules
from backorder.actors.engine import CONFIG
from backorder.config import service_checks
from backorder.config.settings import AccessSettings, ConfigError, Settings, load_settings, writeback_targets
from backorder.daemon import logging as dlog
from backorder.daemon import requestlog
from backorder.daemon.recovery import journal_file_policies

if TYPE_CHECKING:
    from backorder.actors.engine import Engine
    from backorder.actors.router import Router
    from backorder.notify.notifier import Notifier

log = structlog.get_logger()


@dataclass(eq=False, slots=True)
class Targets:
    """The running parts a reload changes; built by the daemon once they all run."""

    settings: Settings  # the running settings, changed in place (every part reads them at each use)
    engine: Engine  # journals the changed policies
    router: Router  # the order actor gets a changed [allocation] as a policy.set
    notifier: Notifier  # new channel settings and templates
    apply_access: Callable[[AccessSettings], None]  # new roles for the connections accepted from now on
    status: Callable[[str], None]  # the service manager's status line


class _LogReply:
    """Where the answer to a change made by a reload goes: the log."""

    def __init__(self, what: str) -> None:
        self.what = what

    def ok(self, result) -> None:
        log.info("reload_applied", change=self.what)

    def error(self, code: str, message: str) -> None:
        log.error("reload_change_failed", change=self.what, code=code, reason=message)


def reload(targets: Targets, path: str | Path | None) -> bool:
    """Apply the file at ``path``; False (and the old config kept) if it is invalid."""
    if path is None:
        log.warning("reload_skipped", reason="the daemon was started without --config")
        return False
    try:
        new = load_settings(path)
    except ConfigError as exc:
        log.error("reload_refused", reason=str(exc), config=str(path))
        return False
    missing = service_checks.environment_problems(new)
    if missing:
        log.error("reload_refused", reason="; ".join(missing), config=str(path))
        return False
    for warning in service_checks.exposure_warnings(new):
        log.warning("listener_exposed", detail=warning)
    old = targets.settings
    # keep what the command line overrode and what only a restart can change
    if msgspec.structs.replace(new.tcp, clients=old.tcp.clients) != old.tcp:
        log.warning("reload_needs_restart", section="tcp")
    if (new.access.group, new.access.socket_mode, new.access.read_socket) != (
        old.access.group,
        old.access.socket_mode,
        old.access.read_socket,
    ):
        log.warning("reload_needs_restart", section="access", keys="group, socket_mode, read_socket")
    if new.metrics != old.metrics:
        log.warning("reload_needs_restart", section="metrics")
    if new.kpi != old.kpi:  # the KPI figures are rebuilt from the journal under one target
        log.warning("reload_needs_restart", section="kpi")
    if new.planner != old.planner:  # the planner's worker and schedule are set up at start
        log.warning("reload_needs_restart", section="planner")
    if new.retention != old.retention:  # the sweep is set up at start
        log.warning("reload_needs_restart", section="retention")
    old.tcp = msgspec.structs.replace(old.tcp, clients=new.tcp.clients)  # tokens: at once
    new_daemon = msgspec.structs.replace(
        new.daemon, db=old.daemon.db, socket=old.daemon.socket, log_level=old.daemon.log_level
    )
    if new_daemon != old.daemon:
        log.warning("reload_needs_restart", section="daemon")
    if new.daemon.log_level != old.daemon.log_level:
        dlog.set_level(new.daemon.log_level)
        old.daemon.log_level = new.daemon.log_level
    requestlog.configure(new.logging.requests)
    old.logging = new.logging
    targets.apply_access(new.access)
    old.limits = new.limits
    old.access = new.access
    _policies(targets, old, new)
    _channels(targets.notifier, old, new)
    _writeback(targets.notifier, old, new)
    _carriers(targets.notifier, old, new)
    _intake(old, new)
    log.info("config_reloaded", config=str(path))
    targets.status(f"serving (config reloaded from {path})")
    return True


def _channels(notifier: Notifier, old: Settings, new: Settings) -> None:
    """``[notifications]``: routes, tolerance, tracking URL and EDI ids are read by the rules
    at each decision (and the decision is journaled with its channel); the notifier gets
    new channel settings (SMTP, webhook, file drop), templates, retry and breaker settings
    for its next attempt. Channel objects a test injected are left alone."""
    cfg = new.notifications
    if cfg == old.notifications:
        return
    if not old.notifications.routes and cfg.routes:
        log.warning(
            "reload_needs_restart",
            section="notifications.routes",
            reason="depletion warnings start only if routes were set at start",
        )
    old.notifications = cfg
    notifier.configure(cfg)


def _writeback(notifier: Notifier, old: Settings, new: Settings) -> None:
    """``[channels.*.writeback]``: the rules read the accounts at each shipment; the notifier
    gets adapters with the new settings (an added account gets its channel and breaker)
    for its next attempt. Stock sync periods and accounts that start or stop stock levels
    take a restart."""
    if writeback_targets(new) == writeback_targets(old):
        return
    old_stock = {t for t, wb in writeback_targets(old).items() if wb.stock}
    if old_stock != {t for t, wb in writeback_targets(new).items() if wb.stock}:
        log.warning("reload_needs_restart", section="channels.*.writeback", keys="stock")
    old.channels = new.channels  # what the adapters are built from (``_intake`` sets it too)
    notifier.configure(old.notifications)


def _carriers(notifier: Notifier, old: Settings, new: Settings) -> None:
    """``[carriers]``: base URLs, secrets' sources, ship-from address; for the next label."""
    if new.carriers == old.carriers:
        return
    old.carriers = new.carriers
    channel = notifier.channels.get("carrier")
    configure = getattr(channel, "configure", None)
    if configure is not None:
        configure(new.carriers)


def _intake(old: Settings, new: Settings) -> None:
    """``[intake]``, ``[channels.*]`` and the settings the rules read at each decision
    (``strict_skus``, ``[sources]``, ``[locations]``, ``[procurement]``): read at each use,
    and the decisions they shape are journaled (a request's ``po_id`` and ``send_after``
    among them), so they apply to the next delivery or request. The webhook listener's
    address and the number of workers are fixed at start."""
    if (new.intake.listen, new.intake.workers) != (old.intake.listen, old.intake.workers):
        log.warning("reload_needs_restart", section="intake", keys="listen, workers")
    old.intake = msgspec.structs.replace(new.intake, listen=old.intake.listen, workers=old.intake.workers)
    old.channels = new.channels
    old.strict_skus = new.strict_skus
    old.sources = new.sources
    old.locations = new.locations
    old.procurement = new.procurement
    old.promises = new.promises  # promises and the dates told are journaled: new rules apply from now on


def _policies(targets: Targets, old: Settings, new: Settings) -> None:
    engine = targets.engine
    world = engine.world
    if new.allocation != old.allocation:
        w = new.allocation.weights
        req = p.PolicySet(mode=new.allocation.mode, weights=p.WeightsUpdate(rush=w.rush, value=w.value, age=w.age))
        targets.router.call_order(req, _LogReply("allocation"), "config-reload", CONFIG)
        old.allocation = new.allocation
    if new.default_policy != old.default_policy:
        # SKUs with no journaled policy follow the file's default, as a restart would make them
        before = world.default_policy
        swapped = [s for s in world.skus.values() if s.policy is before]
        for s in swapped:
            s.policy = new.default_policy
        world.default_policy = old.default_policy = new.default_policy
        # act on the new policy now, as the start-up recovery would after a restart
        engine.context("config", "config-reload", CONFIG)
        now = engine.now()
        for s in swapped:
            if sku_rules.reorder_quantity(s):
                sku_rules.settle(world, s, engine.emit, now)
    changed = [name for name, pol in new.skus.items() if old.skus.get(name) != pol]
    if changed:
        old.skus = {**old.skus, **{name: new.skus[name] for name in changed}}
        journal_file_policies(engine, {name: new.skus[name] for name in changed}, "config-reload")
