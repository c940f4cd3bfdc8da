"""Checks of valid settings against where the daemon runs: the environment it needs
(the webhook signing secret) and listeners exposed beyond this machine without TLS.

Not problems of the file (``Settings.problems`` finds those, ``check-config`` refuses
them): ``check-config`` may run in an operator's shell without the secrets, and an
exposed listener may sit behind a TLS proxy. Each message starts with its key path."""

from __future__ import annotations

import os

from backorder.config.hosts import is_loopback
from backorder.config.settings import Settings, webhook_in_use


def environment_problems(s: Settings, environ: dict[str, str] | None = None) -> list[str]:
    """What the daemon's environment lacks for this config: checked when the daemon starts
    and reloads (``check-config`` may run in an operator's shell, without the secrets)."""
    env = os.environ if environ is None else environ
    name = s.notifications.webhook.secret_env
    if webhook_in_use(s) and name and not env.get(name):
        return [
            f"notifications.webhook.secret_env: the environment variable {name} (the webhook "
            "signing secret) is not set or empty"
        ]
    return []


def exposure_warnings(s: Settings) -> list[str]:
    """Listeners reachable from other machines without TLS: allowed (a TLS-terminating proxy
    may be in front), but said, by ``check-config`` and in the log at start."""
    out = []
    t = s.tcp
    if t.port is not None and not is_loopback(t.host) and not (t.certfile and t.keyfile):
        out.append(
            f"tcp.host: the TCP listener on {t.host!r} is not on loopback and has no TLS: bearer "
            "tokens and orders cross the network in clear (set tcp.certfile and tcp.keyfile)"
        )
    listen = s.intake.listen
    if listen is not None and not is_loopback(listen.rpartition(":")[0]):
        out.append(
            f"intake.listen: the webhook listener on {listen!r} is not on loopback and serves plain "
            "HTTP: put a TLS-terminating proxy in front of it, or bind it to 127.0.0.1"
        )
    m = s.metrics
    if m.port is not None and not is_loopback(m.host):
        out.append(
            f"metrics.host: the metrics endpoint on {m.host!r} is not on loopback; it has no "
            "authentication and no TLS: bind it to 127.0.0.1, or put a TLS proxy with access "
            "control in front of it"
        )
    return out
