"""File channel: one JSON document per notice in ``notifications.file.dir``, named by the
notice id and written atomically (temporary file, fsync, rename), so another system
picking up ``*.json`` never sees half a notice and a retry rewrites the same file.

The directory is 0750 and each notice 0640 (``backorder.daemon.files``): a pickup system
in the service user's group reads them; nobody but the service user can write or forge one."""

from __future__ import annotations

import os
from pathlib import Path

import trio

from backorder.actors.events import NoticeQueued
from backorder.config.settings import FileDropSettings
from backorder.daemon import files
from backorder.notify.channels import payload
from backorder.notify.render import Rendered


class FileDropChannel:
    name = "file"

    def __init__(self, cfg: FileDropSettings) -> None:
        self.dir = Path(cfg.dir)

    async def send(self, n: NoticeQueued, r: Rendered) -> str:
        return await trio.to_thread.run_sync(self._write, n.notice_id, payload(n, r))

    def _write(self, notice_id: str, body: bytes) -> str:
        self.dir.mkdir(mode=files.SHARED_DIR, parents=True, exist_ok=True)
        files.restrict(self.dir, files.SHARED_DIR)  # no group write: nobody else adds notices
        final = self.dir / f"{notice_id}.json"
        tmp = self.dir / f".{notice_id}.json.tmp"
        with open(files.open_private(tmp, files.SHARED_READ), "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)  # the rename itself is durable
        finally:
            os.close(fd)
        return f"file {final.name}"
