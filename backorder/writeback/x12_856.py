"""X12 856 advance ship notice for EDI trading partners (orders that came in as 850s):
one interchange per shipment (ISA/GS SH/ST 856 ... SE/GE/IEA, '*' elements, '~'
segments, '>' sub-elements, version 004010, like the site's outbound 850), written to the
account's ``writeback.dir`` for the translator or AS2 gateway to pick up. The file is
named by the notice id and written atomically (temporary file, fsync, rename): a resend
after a crash rewrites the same file, and the ISA control number (from the notice id) lets
the partner's translator drop a repeat. Hierarchy: shipment (TD5 carrier, REF CN tracking,
DTM 011 ship date), order (PRF: the partner's PO number), one item per shipped line (LIN
VP = our SKU, the vendor part number the 850 carried; SN1 quantity).

An order cancelled here is an 855 purchase order acknowledgement (GS PR) of type ``RD``
(rejected with detail): ``BAK*00*RD*<the partner's PO number>*<date>``, then per line not
shipped ``PO1`` (the partner's line number, the quantity rejected, ``VP`` our SKU) and
``ACK*IR`` (item rejected) with that quantity; ``<notice id>.855.x12``, written the same way."""

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

    def rejection(self, notice_id: str, data: dict[str, Any]) -> bytes:
        """The 855 rejecting the lines of a cancelled order."""
        site, wb = self.settings.notifications.edi, self.wb
        when = dt.datetime.fromtimestamp(parse_ts(data["date"]), dt.UTC)
        control = int("".join(ch for ch in notice_id if ch.isdigit()) or "0") % 1_000_000_000
        body = [["ST", "855", "0001"], ["BAK", "00", "RD", _text(data["external_id"]), when.strftime("%Y%m%d")]]
        for item in data["items"]:
            ref = _text(item.get("channel_line_id") or str(item["line_no"]))
            body.append(["PO1", ref, str(item["qty"]), "EA", "", "", "VP", _text(item["sku"])])
            body.append(["ACK", "IR", str(item["qty"]), "EA"])
        body.append(["CTT", str(len(data["items"]))])
        body.append(["SE", str(len(body) + 1), "0001"])
        sender = x12.Party(site.isa_qualifier, site.isa_id, site.gs_id)
        receiver = x12.Party(wb.isa_qualifier, wb.isa_id, wb.gs_id)
        return x12.interchange("PR", sender, receiver, site.usage, control, when, body)

    async def fulfillment(self, notice_id: str, data: dict[str, Any]) -> str:
        return await trio.to_thread.run_sync(self._write, notice_id, self.asn(notice_id, data), "856")

    async def fulfillment_cancel(self, notice_id: str, data: dict[str, Any]) -> str:
        return await trio.to_thread.run_sync(self._write, notice_id, self.rejection(notice_id, data), "855")

    def _write(self, notice_id: str, body: bytes, kind: str) -> str:
        folder = Path(self.wb.dir)
        folder.mkdir(mode=files.SHARED_DIR, parents=True, exist_ok=True)
        final = folder / f"{notice_id}.{kind}.x12"
        tmp = folder / f".{notice_id}.{kind}.x12.tmp"
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
