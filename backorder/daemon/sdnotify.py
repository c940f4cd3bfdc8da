"""systemd's notify protocol, implemented directly (no dependency): one datagram per
message to the AF_UNIX socket named by ``$NOTIFY_SOCKET`` (a leading ``@`` means the
Linux abstract namespace). Without ``$NOTIFY_SOCKET`` (not under systemd, or a unit that
is not ``Type=notify``) every call does nothing.

The daemon sends ``READY=1`` once the journal is recovered and the socket listens,
``STATUS=...`` lines while it recovers, serves and drains, ``STOPPING=1`` on shutdown and
``WATCHDOG=1`` from the trio loop every half ``$WATCHDOG_USEC``: if the loop stalls, the
pings stop and systemd restarts the service.
"""

from __future__ import annotations

import os
import socket

import structlog
import trio

log = structlog.get_logger()


class Notifier:
    def __init__(self, env: dict[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.address: str | bytes | None = None
        path = env.get("NOTIFY_SOCKET", "")
        if path.startswith("@"):
            self.address = b"\0" + path[1:].encode()
        elif path.startswith("/"):
            self.address = path
        self._sock: socket.socket | None = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        # WATCHDOG_PID, when set, names the process systemd watches; ignore it for another.
        watched = not pid or pid == str(os.getpid())
        self.watchdog_s = int(usec) / 1e6 if usec.isdigit() and int(usec) > 0 and watched else None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *lines: str) -> bool:
        """Send ``KEY=value`` lines as one datagram; False (and a log line) if it failed."""
        if self.address is None:
            return False
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            self._sock.sendto("\n".join(lines).encode(), self.address)
        except OSError as exc:  # systemd gone or socket full: never fatal to the daemon
            log.warning("sd_notify_failed", error=str(exc))
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.send("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def status(self, status: str) -> bool:
        return self.send(f"STATUS={status}")

    def stopping(self, status: str = "stopping") -> bool:
        return self.send("STOPPING=1", f"STATUS={status}")

    async def watchdog(self) -> None:
        """Ping at half the watchdog interval, from the trio loop itself (so a stalled loop
        stops the pings). Returns at once when no watchdog is configured."""
        if self.watchdog_s is None or not self.enabled:
            return
        while True:
            self.send("WATCHDOG=1")
            await trio.sleep(self.watchdog_s / 2)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
