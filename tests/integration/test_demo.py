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


def test_a_simulated_day_of_the_demo_gives_every_screen_data(tmp_path):
    """The demo headless for a simulated day after its history (the supplier-slip story),
    read the way each console screen reads it: intake sources and dead letters, notices
    delivered (email, webhook, file) and a dead one that a retry recovers, the planner's
    forecasts, the KPI tiles, and the promises on order lines."""
    import datetime as dt
    import tempfile
    import time

    from backorder.client import Client
    from backorder.timeutil import parse_datetime

    sockdir = Path(tempfile.mkdtemp(prefix="bo-", dir="/tmp"))
    site = demo.DemoSite(tmp_path, sockdir, 60, 3600.0, random.Random(7), history_days=8, scenario="supplier-slip")
    try:
        site.start()
        assert site.history is not None and site.history.planner_runs > 0
        opened = site.start_at
        with Client(str(site.socket), timeout=60) as c:
            deadline = time.monotonic() + 90
            while parse_datetime(c.call("stats")["now"]) < opened + dt.timedelta(hours=24):
                assert time.monotonic() < deadline and not site.error, site.error
                time.sleep(0.5)
            assert site.driver is not None and site.driver.feeds is not None
            feeds = site.driver.feeds.counts

            # intake screen: every feed is a source; rejections; dead letters ranked by cause
            health = c.call("sources.health")
            sources = {s["channel"]: s for s in health["sources"] if s["deliveries"]}
            assert {"shopify", "woocommerce", "amazon_sp", "x12_850", "csv"} <= set(sources), sorted(sources)
            assert any(s["bad_signatures"] for s in health["sources"] if s["channel"] == "shopify")
            assert sources["woocommerce"]["rejected_rate"] > 0
            letters = c.call("deadletters.list")
            causes = {g["cause"] for g in letters["groups"]}
            assert "malformed_body" in causes, causes
            # the unknown SKU was aliased and its group retried: those orders came in once
            assert feeds.aliases >= 1 and feeds.recovered >= 1, feeds

            # notifications screen: delivered by each channel, a dead one recovered by a retry
            notes = c.call("notifications.list", status="sent", limit=1000)["notifications"]
            assert {"email", "webhook", "file"} <= {n["channel"] for n in notes}
            assert {"backordered", "shipped"} <= {n["kind"] for n in notes}
            assert site.services.mail.accepted > 0 and site.services.hook.failed > 0
            deadline = time.monotonic() + 30  # the last poisoned notice may still be between attempts
            while not c.call("notifications.list", status="dead", limit=1000)["notifications"]:
                assert time.monotonic() < deadline, ("no dead notice", site.services.hook.poisoned)
                time.sleep(0.3)
            c.call("notifications.retry", all_dead=True)
            deadline = time.monotonic() + 30
            while site.services.hook.recovered < 1:
                assert time.monotonic() < deadline, "the retried dead notice was not delivered"
                time.sleep(0.2)
            # supplier slip: ACME's open purchase orders moved later at a known moment
            assert site.scenario.log and "slipped_requests=" in site.scenario.log[0]
            assert int(site.scenario.log[0].split("slipped_requests=")[1]) > 0, site.scenario.log
            # oldest first, the archived ones (older than hot_days) among them: read every page
            kinds: set[str] = set()
            offset = 0
            while page := c.call("notifications.list", limit=1000, offset=offset)["notifications"]:
                kinds |= {n["kind"] for n in page}
                offset += len(page)
            assert "delay" in kinds, "the slip told no waiting customer"

            # SKU screen: the planner (auto) forecasts from the history
            busiest = max(site.items, key=lambda it: it.weight)
            planner = c.call("sku.get", sku=busiest.sku)["planner"]
            assert planner["mode"] == "auto"
            assert planner["last_tuned"] is not None and planner["last_tuned"]["forecast"]["daily_mean"] > 0

            # dashboard: the tiles have figures and the fill rate meets its target
            stats = c.call("stats")
            assert stats["fulfillment_rate"] is not None and stats["fulfillment_rate"] >= 0.95, stats[
                "fulfillment_rate"
            ]
            assert stats["avg_reorder_lead_time_hours"] is not None

            # order screen: every order line carries the ship-by date it was promised
            orders = c.call("orders.list", limit=50)["orders"]
            got = [c.call("order.get", order_id=o["order_id"]) for o in orders]
            promised = [ln["promise"] for g in got for ln in g.get("lines", []) if ln.get("promise")]
            assert promised, "no order line in the demo carries a promise"
            assert all(pr["date"] and pr["from"] for pr in promised)
    finally:
        site.stop()
        import shutil

        shutil.rmtree(sockdir, ignore_errors=True)


def test_the_flash_sale_routes_the_overflow_to_the_3pl_which_ships_it_once(tmp_path):
    """The flash-sale story headless: the sale outruns the site's pickers, the daemon routes
    new orders to the demo's ShipBob (bearer token checked), which ships each by a signed
    webhook: every routed order is shipped here exactly once, with the 3PL's tracking."""
    import datetime as dt
    import tempfile
    import time

    from backorder.client import Client
    from backorder.timeutil import parse_datetime

    sockdir = Path(tempfile.mkdtemp(prefix="bo-", dir="/tmp"))
    site = demo.DemoSite(tmp_path, sockdir, 30, 3600.0, random.Random(11), scenario="flash-sale")
    fake = site.threepl
    assert fake is not None
    try:
        site.start()
        with Client(str(site.socket), timeout=60) as c:
            deadline = time.monotonic() + 90
            while parse_datetime(c.call("stats")["now"]) < site.start_at + dt.timedelta(hours=21):
                assert time.monotonic() < deadline and not site.error, site.error
                time.sleep(0.5)
            assert any(line.startswith("sale_to=") for line in site.scenario.log), site.scenario.log
            deadline = time.monotonic() + 30  # the last routed orders' webhooks come SHIP_AFTER_S later
            while (status := c.call("threepl.status"))["routed_open"]:
                assert time.monotonic() < deadline, status
                time.sleep(0.3)
            with fake.lock:
                routed = dict(fake.orders)
                creates, shipped = dict(fake.creates), dict(fake.shipped)
            assert len(routed) >= 5, (len(routed), status)
            assert status["enabled"] and status["provider"] == "shipbob"
            assert status["routed_shipped"] == len(routed), status
            assert status["webhooks"]["shipped"] == len(routed), status["webhooks"]
            assert status["webhooks"]["duplicate"] == status["webhooks"]["bad_signature"] == 0, status["webhooks"]
            assert status["inventory"]["error"] is None and status["inventory"]["polls"] > 0
            assert set(creates.values()) == {1} and set(shipped.values()) == {1}
            assert fake.refused == 0 and fake.webhook_failures == 0
            sale = set(demo.demo_scenarios.sale_skus(site.items))
            for ref, sent in routed.items():
                got = c.call("order.get", order_id=ref)
                assert got["routed_to"] == "shipbob" and got["status"] == "shipped", got
                assert len(got["shipments"]) == 1, got["shipments"]
                assert got["shipments"][0]["tracking_number"] == f"1ZDEMO{sent['id']:010d}"
                assert {p["reference_id"] for p in sent["products"]} <= sale
        # without the token the 3PL answers nothing
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", int(fake.url.rsplit(":", 1)[1]), timeout=5)
        conn.request("GET", "/inventory", headers={"Authorization": "Bearer wrong", "shipbob_channel_id": "demo-3pl"})
        assert conn.getresponse().status == 401
        conn.close()
    finally:
        site.stop()
        import shutil

        shutil.rmtree(sockdir, ignore_errors=True)
