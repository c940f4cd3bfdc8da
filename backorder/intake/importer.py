"""``backorder import FILE --channel ...``: a batch file through the same governed flow as
every other delivery (``order.ingest``), with a progress bar and a summary of outcomes.

A CSV file is sent one order per delivery (the header row plus that order's rows), so each
order gets its own outcome and, if rejected, its own dead letter; an X12 file one
interchange per delivery; a JSON file of another channel is one delivery, a ``.jsonl`` /
``.ndjson`` file one delivery per line. ``busy`` replies are sent again after a pause.
"""

from __future__ import annotations

import base64
import csv
import io
import time
from collections import Counter
from pathlib import Path

from backorder.client import Client


class ImportRefused(Exception):
    """The daemon refused a delivery of the batch outright (not an outcome of the order:
    e.g. ``forbidden`` on a read-only socket, ``unknown_channel`` for a disabled channel);
    the import stops there. ``code`` and ``message`` are the daemon's."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def split(channel: str, data: bytes, name: str = "") -> list[bytes]:
    """The deliveries of a batch file."""
    if channel == "csv":
        text = data.decode("utf-8-sig")
        lines = text.splitlines(keepends=True)
        if not lines:
            return []
        header, rows = lines[0], lines[1:]
        reader = csv.reader(io.StringIO(header))
        cols = next(reader, [])
        if "order_id" not in cols:
            return [data]  # let the daemon name the problem (malformed_body)
        idx = cols.index("order_id")
        groups: dict[str, list[str]] = {}
        for row_text in _records(rows):
            fields = next(csv.reader(io.StringIO(row_text)), [])
            key = fields[idx] if idx < len(fields) else ""
            groups.setdefault(key, []).append(row_text)
        return [(header + "".join(rows)).encode() for rows in groups.values()]
    if channel in ("x12_850", "x12_855", "x12_856"):
        text = data.decode("latin-1")
        starts = [i for i in range(len(text)) if text.startswith("ISA", i) and (i == 0 or not text[i - 1].isalnum())]
        starts = [s for s in starts if s == 0 or text[s - 1] in "~\n\r" or not text[s - 1].isprintable()] or [0]
        bounds = starts + [len(text)]
        return [
            text[a:b].strip().encode("latin-1") for a, b in zip(bounds, bounds[1:], strict=False) if text[a:b].strip()
        ]
    if name.endswith((".jsonl", ".ndjson")):
        return [line for line in data.splitlines() if line.strip()]
    return [data]


def _records(rows: list[str]) -> list[str]:
    """CSV records (a quoted field may hold a line break)."""
    out, buf = [], ""
    for line in rows:
        buf += line
        if buf.count('"') % 2 == 0:
            if buf.strip():
                out.append(buf)
            buf = ""
    if buf.strip():
        out.append(buf)
    return out


def run(
    socket: str,
    path: str,
    channel: str,
    account: str | None = None,
    headers: dict | None = None,
    window: int = 200,
    progress=None,
    deliveries: list[bytes] | None = None,
) -> dict:
    """Send every delivery of ``path`` (``deliveries``: the file already split, so a
    caller that counted them does not read it twice); returns the summary of outcomes."""
    if deliveries is None:
        deliveries = split(channel, Path(path).read_bytes(), path)
    outcomes: Counter[str] = Counter()
    codes: Counter[str] = Counter()
    orders = 0
    letters: list[int] = []
    busy_retries = 0
    with Client(socket, timeout=300) as c:
        todo = list(range(len(deliveries)))
        while todo:
            batch, todo = todo[:window], todo[window:]
            reqs = []
            for i in batch:
                req = {
                    "op": "order.ingest",
                    "channel": channel,
                    "headers": headers or {},
                    "body_base64": base64.b64encode(deliveries[i]).decode(),
                }
                if account:
                    req["account"] = account
                reqs.append(req)
            again = []
            for i, rep in zip(batch, c.pipeline(reqs, window=window), strict=True):
                if not rep["ok"]:
                    if rep["error"]["code"] == "busy":
                        again.append(i)
                        continue
                    raise ImportRefused(rep["error"]["code"], rep["error"]["message"])
                res = rep["result"]
                for item in res["orders"]:
                    outcomes[item["outcome"]] += 1
                    orders += 1
                    if item["code"]:
                        codes[item["code"]] += 1
                if "letter_id" in res:
                    letters.append(res["letter_id"])
                if progress is not None:
                    progress(1)
            if again:
                busy_retries += len(again)
                time.sleep(0.2)  # the daemon is saturated: let it drain, then send those again
                todo = again + todo
    return {
        "file": path,
        "channel": channel,
        "deliveries": len(deliveries),
        "orders": orders,
        "outcomes": dict(outcomes),
        "codes": dict(codes),
        "dead_letters": letters,
        "busy_retries": busy_retries,
    }
