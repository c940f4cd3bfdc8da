"""The rules that decide a Unix peer's role (backorder.daemon.access.Roles), and the
hashed bearer tokens of the TCP listener (backorder.daemon.tcp)."""

from __future__ import annotations

import grp
import os
import pwd

import pytest

from backorder.config.settings import AccessSettings, ConfigError, TcpClient, parse_settings
from backorder.daemon import access, tcp

NOBODY = pwd.getpwnam("nobody")
NOGROUP = NOBODY.pw_gid
OTHER_UID = 4242  # no such user: its groups are only its primary gid


def role(peer_uid: int, peer_gid: int, **rules) -> str:
    return access.Roles(AccessSettings(**rules)).role_for(peer_uid, peer_gid)


def test_own_uid_and_root_always_write():
    assert role(os.getuid(), 0, default_role="read", read_uids=[OTHER_UID]) == "write"
    assert role(0, 0, read_uids=[0]) == "write"


def test_uid_rules_then_group_rules_then_default():
    assert role(OTHER_UID, 1234) == "read"  # default_role is read
    assert role(OTHER_UID, 1234, default_role="write") == "write"
    assert role(OTHER_UID, 1234, write_uids=[OTHER_UID]) == "write"
    assert role(NOBODY.pw_uid, NOGROUP, write_uids=["nobody"]) == "write"  # names resolve
    # a uid rule beats a group rule
    assert role(OTHER_UID, NOGROUP, read_uids=[OTHER_UID], write_groups=[NOGROUP]) == "read"
    # groups: write wins when the peer is in both
    assert role(OTHER_UID, NOGROUP, write_groups=[NOGROUP], read_groups=[NOGROUP]) == "write"
    assert role(OTHER_UID, NOGROUP, read_groups=["nogroup"], default_role="write") == "read"


def test_supplementary_groups_of_the_peer_user_count():
    # a user whose supplementary groups (from the group database) include one we map
    for g in grp.getgrall():
        for member in g.gr_mem:
            try:
                user = pwd.getpwnam(member)
            except KeyError:
                continue
            if user.pw_gid != g.gr_gid and user.pw_uid not in (0, os.getuid()):
                assert role(user.pw_uid, user.pw_gid, write_groups=[g.gr_gid]) == "write"
                assert role(user.pw_uid, user.pw_gid) == "read"
                return
    pytest.skip("no user with a supplementary group on this host")


def test_unknown_users_and_groups_are_config_errors_naming_the_key():
    with pytest.raises(ConfigError, match=r"access\.write_uids: no user named 'no-such-user-x'"):
        parse_settings('[access]\nwrite_uids = ["no-such-user-x"]\n')
    with pytest.raises(ConfigError, match=r"access\.read_uids: uid\(s\) \[7\] are also in access\.write_uids"):
        parse_settings("[access]\nwrite_uids = [7]\nread_uids = [7]\n")
    with pytest.raises(ConfigError, match=r"access\.socket_mode"):
        parse_settings('[access]\nsocket_mode = "rw-rw----"\n')


def test_tokens_are_random_stored_hashed_and_matched_to_their_client():
    a, b = tcp.new_token(), tcp.new_token()
    assert a != b and len(a) > 40
    clients = {
        "erp": TcpClient(token_sha256=tcp.hash_token(a)),
        "dash": TcpClient(token_sha256=tcp.hash_token(b), role="read"),
    }
    assert a not in repr(clients)
    assert tcp.find_client(clients, a)[0] == "erp"
    name, client = tcp.find_client(clients, b)
    assert (name, client.role) == ("dash", "read")
    assert tcp.find_client(clients, a + "x") is None
    assert tcp.find_client(clients, "") is None
    assert tcp.find_client({}, a) is None
