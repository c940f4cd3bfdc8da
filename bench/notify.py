"""Notification delivery rate: N backordered orders (one notice each) delivered by the real
daemon to a real SMTP server (aiosmtpd, in this process) and to the file channel.

Measured from the first order until ``stats.notifications.sent`` reaches N (orders are
pipelined first, so this is the notifier's own rate, bounded by one attempt at a time per
channel, each with a durable ``notice_attempted`` before the send and a new SMTP
connection per mail). No target is set; the figure backs docs/notifications.md.

    python bench/notify.py [--notices 1000] [--quick]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import tempfile
import time

from aiosmtpd.controller import Controller
from common import encode, ok, result_name, run_load, running, save, wait_until


class Sink:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(channel: str, n: int, extra: str) -> dict:
    config = f'[notifications.routes]\n"*" = "{channel}"\n' + extra
    with running(config) as d:
        orders = [
            encode(
                {
                    "op": "order.submit",
                    "channel": "web",
                    "external_id": f"e{i}",
                    "email": f"c{i}@x.example",
                    "lines": [{"sku": f"S{i % 50}", "qty": 1}],
                }
            )
            for i in range(n)
        ]
        t0 = time.perf_counter()
        run_load(d.sock, [orders])
        wait_until(
            lambda: ok(d.sock, {"op": "stats"})["notifications"]["sent"] >= n,
            timeout=600,
            interval=0.05,
            message=f"{n} notices were never all sent",
        )
        seconds = time.perf_counter() - t0
    return {"channel": channel, "notices": n, "seconds": round(seconds, 2), "per_second": round(n / seconds, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--notices", type=int, default=1000)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n = 200 if args.quick else args.notices
    sink = Sink()
    port = free_port()
    smtp = Controller(sink, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        email = run("email", n, f'[notifications.smtp]\nhost = "127.0.0.1"\nport = {port}\n')
        assert sink.count >= n, sink.count
    finally:
        smtp.stop()
    drop = tempfile.mkdtemp(prefix="bonotify")
    try:
        files = run("file", n, f'[notifications.file]\ndir = "{drop}"\n')
    finally:
        shutil.rmtree(drop, ignore_errors=True)
    save(
        result_name("notify", args.quick),
        {"email": email, "file": files, "email_per_s": email["per_second"], "file_per_s": files["per_second"]},
    )


if __name__ == "__main__":
    main()
