"""Roles: who may change state.

``read`` (monitoring: dashboards, the TUI in read-only mode) may send every op except
those in ``protocol.WRITE_OPS``, which it gets ``forbidden`` for; ``write`` may send
everything. A Unix-socket peer's role comes from its credentials (SO_PEERCRED uid and
gid, plus the user's supplementary groups) mapped by ``[access]``; every client of the
optional ``read_socket`` is ``read``; a TCP client's role is its token's.

Order of the rules: the daemon's own uid and root are always ``write``; then
``write_uids`` / ``read_uids``; then ``write_groups`` / ``read_groups`` (write wins when
the peer is in both); then ``default_role`` (``read`` unless configured: being able to
open the socket — mode 0660 — is not by itself the right to change the site).
"""

from __future__ import annotations

import os
import pwd
import socket
import struct
from typing import Any

import msgspec

from backorder import protocol as p
from backorder.config.hosts import group_id, resolve_gid, resolve_gid_safe, resolve_uid_safe
from backorder.config.settings import AccessSettings
from backorder.errors import AccessError, Rejected

READ, WRITE = "read", "write"


class _Op(msgspec.Struct):
    op: Any = None


_OP_DECODER = msgspec.json.Decoder(_Op)


def forbidden(line: bytes, role: str) -> Rejected | None:
    """For a read-only connection: ``forbidden`` if the line asks for an op of
    ``protocol.WRITE_OPS`` (read from the op name alone, before the request is validated,
    so the answer does not depend on the rest of the request), else None."""
    try:
        op = _OP_DECODER.decode(line).op
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None  # the normal decoding answers it (RecursionError: `too_deep`)
    if isinstance(op, str) and op in p.WRITE_OPS:
        return AccessError("forbidden", f"{op} changes state; this connection has the {role} role")
    return None


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end of a Unix stream socket."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", raw)


def user_name(uid: int) -> str:
    """The actor a Unix peer's commands are journaled with: its user name, or ``uid:N``
    for a uid the user database does not know (a container, a deleted user)."""
    try:
        return pwd.getpwuid(uid).pw_name
    except (KeyError, OverflowError):
        return f"uid:{uid}"


class Roles:
    def __init__(self, access: AccessSettings) -> None:
        self.default = access.default_role
        self.write_uids = {u for w in access.write_uids if (u := resolve_uid_safe(w)) is not None}
        self.read_uids = {u for w in access.read_uids if (u := resolve_uid_safe(w)) is not None}
        self.write_gids = {resolve_gid_safe(g) for g in access.write_groups} - {None}
        self.read_gids = {resolve_gid_safe(g) for g in access.read_groups} - {None}
        self.own_uid = os.getuid()
        # (uid, gid) -> role: _groups_of blocks on the user and group databases, and the same
        # few local users connect again and again. A reload builds new Roles (a fresh cache).
        self._roles: dict[tuple[int, int], str] = {}
        self._names: dict[int, str] = {}  # uid -> user name (the same lookup, the same reason)

    def role_for(self, uid: int, gid: int) -> str:
        role = self._roles.get((uid, gid))
        if role is None:
            role = self._roles[uid, gid] = self._role_for(uid, gid)
        return role

    def name_for(self, uid: int) -> str:
        """The peer's actor (``user_name``), looked up once per uid."""
        name = self._names.get(uid)
        if name is None:
            name = self._names[uid] = user_name(uid)
        return name

    def _role_for(self, uid: int, gid: int) -> str:
        if uid in (0, self.own_uid) or uid in self.write_uids:
            return WRITE
        if uid in self.read_uids:
            return READ
        if self.write_gids or self.read_gids:
            groups = _groups_of(uid, gid)
            if groups & self.write_gids:
                return WRITE
            if groups & self.read_gids:
                return READ
        return self.default


def _groups_of(uid: int, gid: int) -> set[int]:
    """The peer's primary gid and the supplementary groups of its user (from the group
    database: SO_PEERCRED carries only the primary gid)."""
    try:
        name = pwd.getpwuid(uid).pw_name
        return set(os.getgrouplist(name, gid))
    except (KeyError, OSError):
        return {gid}


def socket_group(access: AccessSettings) -> int | None:
    if not access.group:
        return None
    return resolve_gid(group_id(access.group))
