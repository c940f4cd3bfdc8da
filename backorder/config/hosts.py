"""Who and where on this host: user and group names to ids, loopback addresses.

A leaf of the config package: the settings checks (``settings.py``) and the daemon's
access rules (``daemon/access.py``) both use it, and it imports nothing of the product."""

from __future__ import annotations

import grp
import ipaddress
import pwd


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


def resolve_uid_safe(who: int | str) -> int | None:
    try:
        return resolve_uid(who)
    except KeyError:
        return None


def is_loopback(host: str) -> bool:
    """Whether a listener on ``host`` is reachable only from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name, or "" (every address)
