"""server.Budgets: connection slots per listener and role, and TCP authentication slots
per address; the limits are read at each admission (a reload applies at once)."""

from __future__ import annotations

from backorder.config.settings import parse_settings
from backorder.daemon.server import TCP, UNIX, Budgets


def _fill(budgets: Budgets, settings, listener: str, role: str) -> int:
    n = 0
    while budgets.admit(settings, listener, role) is None:
        n += 1
    return n


def test_each_listener_has_its_budget_and_the_read_role_never_gets_the_reserve():
    s = parse_settings("[daemon]\nmax_connections = 10\n[limits]\nwrite_reserve = 3\n[tcp]\nmax_connections = 5\n")
    b = Budgets()
    assert _fill(b, s, UNIX, "read") == 7
    why = b.admit(s, UNIX, "read")
    assert "write_reserve" in why and "7 connections" in why
    assert _fill(b, s, TCP, "read") == 2  # a budget of its own, with its own reserve
    assert _fill(b, s, UNIX, "write") == 3
    assert "[daemon] max_connections" in b.admit(s, UNIX, "write")
    b.release(UNIX, "read")
    assert b.admit(s, UNIX, "read") is None  # a freed slot serves the next one
    assert _fill(b, s, TCP, "write") == 3


def test_a_reserve_as_large_as_the_budget_leaves_the_read_role_one_connection():
    s = parse_settings("[daemon]\nmax_connections = 1\n")  # write_reserve 16 by default
    b = Budgets()
    assert _fill(b, s, UNIX, "read") == 1
    b.release(UNIX, "read")
    assert _fill(b, s, UNIX, "write") == 1


def test_authentication_slots_per_address_and_in_all():
    tcp = parse_settings("[tcp]\nmax_pending = 5\nmax_pending_per_host = 2\n").tcp
    b = Budgets()
    assert [b.take_pending(tcp, "10.0.0.1") for _ in range(3)][2] is not None
    assert b.take_pending(tcp, "10.0.0.2") is None and b.take_pending(tcp, "10.0.0.2") is None
    assert b.take_pending(tcp, "10.0.0.3") is None
    assert "max_pending" in b.take_pending(tcp, "10.0.0.4")  # 5 in all
    b.release_pending("10.0.0.1")
    assert b.take_pending(tcp, "10.0.0.4") is None
    for host in ("10.0.0.1", "10.0.0.2", "10.0.0.2", "10.0.0.3", "10.0.0.4"):
        b.release_pending(host)
    assert not b.pending  # nothing left behind per address
