"""Checks of the service settings (issue 5) that msgspec cannot express: users and groups
must exist on this host, TCP clients need a token, TLS needs both files; and the
collection of EVERY validation problem of a file (msgspec stops at the first one).

Each problem is one string starting with its key path, as ``check-config`` prints it."""

from __future__ import annotations

import grp
import ipaddress
import os
import pwd
from typing import TYPE_CHECKING

import msgspec

from backorder.email_address import is_addr_spec

if TYPE_CHECKING:
    from backorder.config.settings import Settings


def resolve_uid(who: int | str) -> int:
    """A user name or number -> uid (KeyError for an unknown name)."""
    return who if isinstance(who, int) else pwd.getpwnam(who).pw_uid


def resolve_gid(who: int | str) -> int:
    """A group name or number -> gid (KeyError for an unknown name)."""
    return who if isinstance(who, int) else grp.getgrnam(who).gr_gid


def resolve_gid_safe(who: int | str) -> int | None:
    try:
        return resolve_gid(who)
    except KeyError:
        return None


def group_id(text: str) -> int | str:
    """``access.group`` is text: a number is a gid, anything else a group name."""
    return int(text) if text.isdigit() else text


def service_problems(s: Settings) -> list[str]:
    out: list[str] = []
    a = s.access
    resolved: dict[str, set[int]] = {}  # key -> the ids found, for the overlap check below
    for key, resolve, kind in (("write_uids", resolve_uid, "user"), ("read_uids", resolve_uid, "user"),
                               ("write_groups", resolve_gid, "group"), ("read_groups", resolve_gid, "group")):
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
        out.append("tcp.clients: the TCP listener is on (tcp.port) but no client has a token "
                   "(add one with `backorder token NAME`)")
    if a.read_socket and a.read_socket == s.daemon.socket:
        out.append("access.read_socket: must differ from daemon.socket")
    if t.max_pending_per_host > t.max_pending:
        out.append(f"tcp.max_pending_per_host: {t.max_pending_per_host} is above tcp.max_pending ({t.max_pending})")
    for name, src in s.sources.items():
        if src.email and not is_addr_spec(src.email):
            out.append(f"sources.{name}.email: {src.email!r} is not one e-mail address (local@domain)")
    if webhook_in_use(s) and not s.notifications.webhook.secret_env:
        # a receiver could not tell our notices from anyone's: an empty key signs nothing
        out.append("notifications.webhook.secret_env: webhook notices are on but unsigned; name the "
                   "environment variable that holds the signing secret")
    return out


def webhook_in_use(s: Settings) -> bool:
    """Whether any notice can go out by webhook: a URL, a route or a source's ``deliver``."""
    n = s.notifications
    return bool(n.webhook.url) or "webhook" in n.routes.values() \
        or any(src.deliver == "webhook" for src in s.sources.values())


def environment_problems(s: Settings, environ: dict[str, str] | None = None) -> list[str]:
    """What the daemon's environment lacks for this config: checked when the daemon starts
    and reloads (``check-config`` may run in an operator's shell, without the secrets)."""
    env = os.environ if environ is None else environ
    name = s.notifications.webhook.secret_env
    if webhook_in_use(s) and name and not env.get(name):
        return [f"notifications.webhook.secret_env: the environment variable {name} (the webhook "
                "signing secret) is not set or empty"]
    return []


def is_loopback(host: str) -> bool:
    """Whether a listener on ``host`` is reachable only from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name, or "" (every address)


def exposure_warnings(s: Settings) -> list[str]:
    """Listeners reachable from other machines without TLS: allowed (a TLS-terminating proxy
    may be in front), but said, by ``check-config`` and in the log at start."""
    out = []
    t = s.tcp
    if t.port is not None and not is_loopback(t.host) and not (t.certfile and t.keyfile):
        out.append(f"tcp.host: the TCP listener on {t.host!r} is not on loopback and has no TLS: bearer "
                   "tokens and orders cross the network in clear (set tcp.certfile and tcp.keyfile)")
    listen = s.intake.listen
    if listen is not None and not is_loopback(listen.rpartition(":")[0]):
        out.append(f"intake.listen: the webhook listener on {listen!r} is not on loopback and serves plain "
                   "HTTP: put a TLS-terminating proxy in front of it, or bind it to 127.0.0.1")
    m = s.metrics
    if m.port is not None and not is_loopback(m.host):
        out.append(f"metrics.host: the metrics endpoint on {m.host!r} is not on loopback; it has no "
                   "authentication and no TLS: bind it to 127.0.0.1, or put a TLS proxy with access "
                   "control in front of it")
    return out


def resolve_uid_safe(who: int | str) -> int | None:
    try:
        return resolve_uid(who)
    except KeyError:
        return None


def every_validation_error(raw: bytes | str, settings_type: type) -> list[str]:
    """Validate each top-level key of a TOML file on its own, so that one bad table does not
    hide the problems of the others. Returns msgspec's messages, path shown as a TOML key."""
    # a cycle at import time otherwise: settings imports this module for its checks
    from backorder.config.settings import _name_table

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
