"""Checks of the service settings (issue 5) that msgspec cannot express: users and groups
must exist on this host, TCP clients need a token, TLS needs both files; and the
collection of EVERY validation problem of a file (msgspec stops at the first one).

Each problem is one string starting with its key path, as ``check-config`` prints it."""

from __future__ import annotations

import grp
import pwd
from typing import TYPE_CHECKING

import msgspec

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
