"""Combine lab reports of the same site run in parts (``backorder.lab.report.combine``):
the full benchmark's seeds made on different days, or a later seed added to a stored
report. Every run keeps its record (its code digest among them); the summary, the
comparisons and the per-seed table are computed again over all the seeds.

    python bench/lab_combine.py OUT_DIR REPORT.json [REPORT.json ...] [--drop POLICY,...]

Writes OUT_DIR/report.json and OUT_DIR/report.md. ``--drop`` leaves out policies that
are not part of the static sweep (e.g. a "planner-fifo before" only some seeds have).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from backorder.lab.report import combine, markdown


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("reports", type=Path, nargs="+")
    ap.add_argument("--drop", default="", help="policies to leave out, comma-separated")
    args = ap.parse_args()
    drop = frozenset(n for n in args.drop.split(",") if n)
    try:
        report = combine([json.loads(p.read_text()) for p in args.reports], drop=drop)
    except ValueError as exc:
        raise SystemExit(f"lab_combine: {exc}") from None
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "report.md").write_text(markdown(report))
    print(f"{args.out / 'report.md'}: seeds {', '.join(map(str, report['seeds']))}; {', '.join(report['policies'])}")


if __name__ == "__main__":
    main()
