"""Timestamps: the one parser and the one formatter of the whole product.

Everything the daemon writes is RFC 3339 UTC with a ``Z`` (``2026-01-05T09:00:00Z``);
what it reads may be any ISO 8601 / RFC 3339 text (``Z`` or an offset; no offset is
taken as UTC, never as the local zone) or, from some sources, an RFC 2822 date. Engine
time is float seconds since the epoch. A leaf: imports nothing of the product.
"""

from __future__ import annotations

import datetime as dt
import email.utils


def parse_datetime(text: str) -> dt.datetime:
    """An RFC 3339 / ISO 8601 timestamp (or a YYYY-MM-DD date, taken as midnight) as an
    aware datetime in the offset it was given in (no offset: UTC). Raises ValueError for
    text that is not one. Not converted to UTC here: near years 1 and 9999 an offset can
    move it out of range (``format_utc`` then raises OverflowError), while its epoch
    seconds are still defined."""
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value


def parse_rfc2822(text: str) -> dt.datetime:
    """An RFC 2822 date (e-mail, HTTP) as an aware datetime; no zone is taken as UTC.
    Raises ValueError (or TypeError, OverflowError) for text that is not one."""
    value = email.utils.parsedate_to_datetime(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value


def parse_ts(text: str) -> float:
    """RFC 3339 timestamp (or YYYY-MM-DD, taken as midnight UTC) -> epoch seconds."""
    return parse_datetime(text).timestamp()


def format_utc(value: dt.datetime, micro: bool = False) -> str:
    """An aware datetime as RFC 3339 UTC with a ``Z``: to the second, or with microseconds
    (``micro``: six digits always, so that such timestamps sort as text). OverflowError
    when the conversion to UTC leaves years 1-9999."""
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds" if micro else "seconds").replace("+00:00", "Z")


def iso_ts(ts: float) -> str:
    """Engine time as an RFC 3339 UTC timestamp, to the second."""
    return format_utc(dt.datetime.fromtimestamp(ts, dt.UTC))


def iso_date(ts: float) -> str:
    """Engine time as its UTC calendar date, YYYY-MM-DD."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).date().isoformat()
