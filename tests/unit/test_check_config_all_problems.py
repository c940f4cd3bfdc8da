"""`backorder check-config` prints every problem of a file, one per line with its key path,
and `backorder serve` refuses the same file with the same lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from backorder.config.settings import ConfigError, parse_settings

ROOT = Path(__file__).resolve().parents[2]

BAD = """
[daemon]
grace_s = -1

[limits]
line_bytes = 5

[access]
write_groups = ["no-such-group-here"]
default_role = "admin"

[tcp]
port = 7000
certfile = "cert.pem"

[skus.A]
reorder_point = 5
order_up_to = 1
"""


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "backorder", *args], capture_output=True, text=True, timeout=60, cwd=ROOT, check=False
    )


def test_check_config_lists_every_problem_with_its_key(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(BAD)
    done = _run("check-config", str(path))
    assert done.returncode == 78  # EX_CONFIG: the unit's RestartPreventExitStatus
    lines = done.stderr.strip().splitlines()
    for key in ("daemon.grace_s", "limits.line_bytes", "access.default_role"):
        assert sum(key in ln for ln in lines) == 1, (key, done.stderr)
    # the cross-field checks of a file that decodes
    fixed = (
        BAD.replace("grace_s = -1", "grace_s = 1")
        .replace("line_bytes = 5", "line_bytes = 4096")
        .replace('default_role = "admin"', 'default_role = "read"')
    )
    path.write_text(fixed)
    done = _run("check-config", str(path))
    lines = done.stderr.strip().splitlines()
    for key in ("access.write_groups", "tcp.certfile", "tcp.clients", "skus.A"):
        assert sum(key in ln for ln in lines) == 1, (key, done.stderr)
    # serve refuses the same file with the same lines, before touching any database
    served = _run("serve", "--config", str(path), "--db", str(tmp_path / "x.db"), "--socket", str(tmp_path / "s"))
    assert served.returncode == 78
    assert served.stderr == done.stderr
    assert not (tmp_path / "x.db").exists()


def test_a_bad_named_table_is_reported_once():
    # the first msgspec error and the per-table re-check both name `[skus.A1]`; one line only
    try:
        parse_settings("[skus.A1]\nreorder_point = -5\n")
    except ConfigError as exc:
        problems = str(exc).removeprefix("config: ").split("; ")
    else:
        raise AssertionError("a negative reorder_point was accepted")
    assert problems == ["Expected `int` >= 0 - at `skus.A1.reorder_point`"]


def test_connection_budgets_are_checked():
    for bad, key in (
        ("[tcp]\nmax_pending = 4\nmax_pending_per_host = 5\n", "tcp.max_pending_per_host"),
        ("[tcp]\nmax_connections = 0\n", "tcp.max_connections"),
        ("[limits]\nwrite_reserve = -1\n", "limits.write_reserve"),
    ):
        try:
            parse_settings(bad)
        except ConfigError as exc:
            assert key in str(exc), (bad, str(exc))
        else:
            raise AssertionError(f"accepted: {bad!r}")
    # a reserve as large as the budget is allowed: the read role keeps one connection (server.Budgets)
    assert parse_settings("[daemon]\nmax_connections = 4\n[limits]\nwrite_reserve = 16\n").limits.write_reserve == 16


WEBHOOK_NOTICES = """
[notifications.routes]
"*" = "webhook"
[notifications.webhook]
url = "http://127.0.0.1:9/hook"
"""


def test_webhook_notices_without_a_signing_secret_are_refused(tmp_path):
    path = tmp_path / "hook.toml"
    path.write_text(WEBHOOK_NOTICES)
    done = _run("check-config", str(path))
    assert done.returncode == 78
    (problem,) = [ln for ln in done.stderr.splitlines() if "notifications.webhook.secret_env" in ln]
    assert "unsigned" in problem
    # a source delivering by webhook needs it as well
    path.write_text('[sources.ACME]\ndeliver = "webhook"\n')
    assert _run("check-config", str(path)).returncode == 78
    # named, the file is fine; the variable itself is checked by the daemon at start
    path.write_text(WEBHOOK_NOTICES + 'secret_env = "BO_TEST_UNSET_HOOK_SECRET"\n')
    assert _run("check-config", str(path)).returncode == 0
    served = _run("serve", "--config", str(path), "--db", str(tmp_path / "x.db"), "--socket", str(tmp_path / "s"))
    assert served.returncode == 78
    assert "BO_TEST_UNSET_HOOK_SECRET" in served.stderr and "not set or empty" in served.stderr
    assert not (tmp_path / "x.db").exists()


def test_listeners_off_loopback_without_tls_are_warned_about(tmp_path):
    path = tmp_path / "exposed.toml"
    token = 'token_sha256 = "' + "0" * 64 + '"\n'
    path.write_text(
        '[tcp]\nhost = "0.0.0.0"\nport = 7000\n[tcp.clients.erp]\n'
        + token
        + '[metrics]\nhost = "192.0.2.10"\nport = 9100\n[intake]\nlisten = "0.0.0.0:8080"\n'
    )
    done = _run("check-config", str(path))
    assert done.returncode == 0, done.stderr  # warnings, not errors
    warnings = [ln for ln in done.stderr.splitlines() if ln.startswith("backorder: warning: ")]
    assert [w.split()[2] for w in warnings] == ["tcp.host:", "intake.listen:", "metrics.host:"]
    assert "TLS" in warnings[0] and "proxy" in warnings[1] and "127.0.0.1" in warnings[2]
    assert done.stdout.strip() == f"{path}: ok (3 warning(s))"
    # loopback everywhere: nothing to say
    path.write_text(
        '[tcp]\nhost = "::1"\nport = 7000\n[tcp.clients.erp]\n'
        + token
        + '[metrics]\nhost = "127.0.0.1"\nport = 9100\n[intake]\nlisten = "localhost:8080"\n'
    )
    done = _run("check-config", str(path))
    assert (done.returncode, done.stderr, done.stdout.strip()) == (0, "", f"{path}: ok")


def test_a_supplier_address_must_be_one_address(tmp_path):
    path = tmp_path / "src.toml"
    path.write_text('[sources.ACME]\nemail = "orders@acme.example, boss@acme.example"\n')
    done = _run("check-config", str(path))
    assert done.returncode == 78
    assert "sources.ACME.email: " in done.stderr and "not one e-mail address" in done.stderr
    path.write_text('[sources.ACME]\nemail = "orders@acme.example"\n')
    assert _run("check-config", str(path)).returncode == 0


def test_a_stepped_clock_needs_its_start_and_check_config_says_so(tmp_path):
    path = tmp_path / "stepped.toml"
    path.write_text('[daemon]\nclock = "stepped"\n')
    done = _run("check-config", str(path))
    assert done.returncode == 78
    assert "daemon.clock_start: required" in done.stderr
    path.write_text('[daemon]\nclock = "stepped"\nclock_start = "not a time"\n')
    assert "daemon.clock_start" in _run("check-config", str(path)).stderr
    path.write_text('[daemon]\nclock = "stepped"\nclock_start = "2026-01-05T09:00:00Z"\n')
    assert _run("check-config", str(path)).returncode == 0
