"""``backorder demo`` end to end: a real daemon, a simulated site, a plain-text summary."""

from __future__ import annotations

import random
import re
import subprocess
import sys
from pathlib import Path

from backorder import demo, demo_feeds
from backorder.config.settings import parse_settings


def test_demo_runs_a_site_and_reports_a_checkable_summary():
    proc = subprocess.run(
        [sys.executable, "-m", "backorder", "demo", "--duration", "6", "--skus", "30"],
        capture_output=True,
        text=True,
        timeout=90,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    # Not a terminal: plain summary lines instead of the live view.
    assert any(line.startswith("[") and " orders=" in line for line in lines), proc.stdout
    final = [line for line in lines if line.startswith("demo finished: ")]
    assert len(final) == 1, proc.stdout
    fields = dict(re.findall(r"(\w+)=(\S*)", final[0]))
    assert int(fields["orders"]) > 0
    assert int(fields["shipped"]) > 0
    assert int(fields["backordered_lines"]) >= 0
    assert int(fields["reorders"]) > 0
    assert fields["errors"] == "0", proc.stdout
    # Orders came in over the intake listener, signed, from the shops' own payloads.
    intake = [line for line in lines if line.startswith("  intake deliveries=")]
    assert len(intake) == 1, proc.stdout
    got = dict(re.findall(r"(\w+)=(\S*)", intake[0]))
    deliveries = dict(kv.split(":") for kv in got["deliveries"].split(","))
    assert int(deliveries["shopify"]) > 0 and int(deliveries["woocommerce"]) > 0, intake[0]
    outcomes = dict(kv.split(":") for kv in got["outcomes"].split(","))
    assert int(outcomes["accepted"]) > 0, intake[0]
    # Notices were delivered: mails to the demo's SMTP sink, files to its outbox.
    notices = [line for line in lines if line.startswith("  notices ")]
    assert len(notices) == 1, proc.stdout
    sent = dict(re.findall(r"(\w+)=(\S*)", notices[0]))
    assert int(sent["mail"]) > 0 and int(sent["files"]) > 0, notices[0]
    # Without --keep the temporary folder is gone.
    folder = re.search(r"folder (\S+)", proc.stdout)
    assert folder is not None
    assert not Path(folder.group(1)).exists()


def test_demo_config_is_valid_for_the_daemon():
    items = demo.make_catalog(50, 3600.0, random.Random(1))
    secret_files = {ch: Path(f"/tmp/x/secret-{ch}") for ch in demo_feeds.SECRET_CHANNELS}
    text = demo.config_toml(
        Path("/tmp/x/demo.db"), Path("/tmp/bo-x/demo.sock"), 3600.0, "2026-01-05T20:00:00Z", items, secret_files
    )
    settings = parse_settings(text)
    assert settings.intake.listen == "127.0.0.1:0"
    assert settings.channels["shopify"].secret_file == "/tmp/x/secret-shopify"
    assert all(settings.channels[ch].known_skus_only for ch in demo_feeds.SECRET_CHANNELS)
    assert settings.daemon.clock == "simulated"
    assert settings.daemon.clock_speed == 3600.0
    assert settings.allocation.mode == "fifo"
    assert len(settings.skus) == 50
    sources = {p.source for p in settings.skus.values()}
    assert "transfer:SITE-B" in sources
    assert any(s.startswith("supplier:") for s in sources)
    assert {p.lead_time_days for p in settings.skus.values()} <= {1, 2, 3, 4, 5}


def test_demo_on_a_terminal_opens_the_console_and_stops_the_site_when_it_quits():
    """``make demo`` on a terminal: the console in front, the site behind; the console
    ends after --duration like a ``q``, and the site stops and reports."""
    import fcntl
    import os
    import pty
    import select
    import struct
    import termios
    import time

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "backorder", "demo", "--duration", "6", "--skus", "30"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        close_fds=True,
        env={**os.environ, "TERM": "xterm-256color"},
    )
    os.close(slave)
    out = bytearray()
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child side closed
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        rc = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    text = out.decode(errors="replace")
    assert rc == 0, text[-3000:]
    assert "\x1b[?1049h" in text  # the console took the terminal (alternate screen)...
    assert "backorder demo" in text and "BO lines" in text  # ...and drew the dashboard
    final = [line for line in text.splitlines() if line.startswith("demo finished: ")]
    assert len(final) == 1, text[-3000:]
    fields = dict(re.findall(r"(\w+)=(\S*)", final[0]))
    assert int(fields["orders"]) > 0
    assert fields["errors"] == "0"
