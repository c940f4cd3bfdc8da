"""X12 856 advance ship notice for EDI trading partners (orders that came in as 850s):
one interchange per shipment (ISA/GS SH/ST 856 ... SE/GE/IEA, '*' elements, '~'
segments, '>' sub-elements, version 004010, like the site's outbound 850), written to the
account's ``writeback.dir`` for the translator or AS2 gateway to pick up. The file is
named by the notice id and written atomically (temporary file, fsync, rename): a resend
after a crash rewrites the same file, and the ISA control number (from the notice id) lets
the partner's translator drop a repeat. Hierarchy: shipment (TD5 carrier, REF CN tracking,
DTM 011 ship date), order (PRF: the partner's PO number), one item per shipped line (LIN
VP = our SKU, the vendor part number the 850 carried; SN1 quantity)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import trio

from backorder.daemon import files
from backorder.documents import x12
from backorder.timeutil import parse_ts
from backorder.writeback.base import Adapter

_text = x12.text


class X12AsnChannel(Adapter):
    def asn(self, notice_id: str, data: dict[str, Any]) -> bytes:
        site = self.settings.notifications.edi
        wb = self.wb
        shipped = dt.datetime.fromtimestamp(parse_ts(data["ship_date"]), dt.UTC)
        control = int("".join(ch for ch in notice_id if ch.isdigit()) or "0") % 1_000_000_000
        date8, time4 = shipped.strftime("%Y%m%d"), shipped.strftime("%H%M")
        body = [
            ["ST", "856", "0001"],
            ["BSN", "00", _text(data["shipment_id"]), date8, time4, "0001"],
            ["HL", "1", "", "S"],
            ["TD5", "B", "2", _text(data["carrier"])],
            ["REF", "CN", _text(data["tracking"])],
            ["DTM", "011", date8],
            ["HL", "2", "1", "O"],
            ["PRF", _text(data["external_id"])],
        ]
        hl = 2
        for item in data["items"]:
            hl += 1
            body.append(["HL", str(hl), "2", "I"])
            body.append(["LIN", _text(item.get("channel_line_id") or str(item["line_no"])), "VP", _text(item["sku"])])
            body.append(["SN1", "", str(item["qty"]), "EA"])
        body.append(["CTT", str(hl)])
        body.append(["SE", str(len(body) + 1), "0001"])
        return x12.interchange(
            "SH",
            x12.Party(site.isa_qualifier, site.isa_id, site.gs_id),
            x12.Party(wb.isa_qualifier, wb.isa_id, wb.gs_id),
            site.usage,
            control,
            shipped,
            body,
        )

    async def fulfillment(self, notice_id: str, data: dict[str, Any]) -> str:
        return await trio.to_thread.run_sync(self._write, notice_id, self.asn(notice_id, data))

    def _write(self, notice_id: str, body: bytes) -> str:
        folder = Path(self.wb.dir)
        folder.mkdir(mode=files.SHARED_DIR, parents=True, exist_ok=True)
        final = folder / f"{notice_id}.856.x12"
        tmp = folder / f".{notice_id}.856.x12.tmp"
        with open(files.open_private(tmp, files.SHARED_READ), "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return f"file {final.name}"
