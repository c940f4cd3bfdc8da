"""Untrusted text made safe for the documents that carry it: spreadsheet cells (CSV
exports and purchase-order CSVs) and lines of text documents (pick lists, labels).

Order data comes from customers and sales channels, so any string in it may be built to
be read as something else: a cell starting with ``=`` is a formula to a spreadsheet, a
newline inside a SKU is a new row of a pick list.
"""

from __future__ import annotations

import re

# A spreadsheet reads a cell starting with one of these as a formula (or, for tab and CR,
# as the start of a new cell or row in some importers).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# A plain number is a value, not a formula, even with a sign: -5 stays -5.
_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")
# C0 controls, DEL, C1 controls and the Unicode line and paragraph separators: each can
# break a line (or the terminal showing it) in a text document.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def spreadsheet_cell(value: str) -> str:
    """``value`` as a CSV cell a spreadsheet shows as text: a cell that would start a
    formula gets a leading single quote (the OWASP recommendation against CSV injection)."""
    if value.startswith(_FORMULA_START) and not _NUMBER.match(value):
        return "'" + value
    return value


def one_line(value: str) -> str:
    """``value`` with every control character shown as an escape (``\\n``, ``\\x1b``), so
    it stays on its own line and cell of a text document."""
    if _CONTROL.search(value) is None:
        return value
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), value)
