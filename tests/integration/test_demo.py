"""``backorder demo`` end to end: a real daemon, a simulated site, a plain-text summary."""

from __future__ import annotations

import random
import re
import subprocess
import sys
from pathlib import Path

from backorder import demo
from backorder.config.settings import parse_settings


def test_demo_runs_a_site_and_reports_a_checkable_summary():
    proc = subprocess.run(
        [sys.executable, "-m", "backorder", "demo", "--duration", "6", "--skus", "30"],
        capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL,
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
    # Without --keep the temporary folder is gone.
    folder = re.search(r"folder (\S+)", proc.stdout)
    assert folder is not None
    assert not Path(folder.group(1)).exists()


def test_demo_config_is_valid_for_the_daemon():
    items = demo.make_catalog(50, 3600.0, random.Random(1))
    text = demo.config_toml(Path("/tmp/x/demo.db"), Path("/tmp/bo-x/demo.sock"), 3600.0,
                            "2026-01-05T20:00:00Z", items)
    settings = parse_settings(text)
    assert settings.daemon.clock == "simulated"
    assert settings.daemon.clock_speed == 3600.0
    assert settings.allocation.mode == "fifo"
    assert len(settings.skus) == 50
    sources = {p.source for p in settings.skus.values()}
    assert "transfer:SITE-B" in sources
    assert any(s.startswith("supplier:") for s in sources)
    assert {p.lead_time_days for p in settings.skus.values()} <= {1, 2, 3, 4, 5}
