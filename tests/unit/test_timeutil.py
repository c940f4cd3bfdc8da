"""The one timestamp parser and formatter (backorder.timeutil), and the intake helpers
built on it keeping their errors."""

from __future__ import annotations

import pytest

from backorder.errors import Rejected
from backorder.intake import draft
from backorder.timeutil import format_utc, iso_date, iso_ts, parse_datetime, parse_rfc2822, parse_ts


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("2026-01-05T09:00:00Z", "2026-01-05T09:00:00Z"),
        ("2026-01-05T11:00:00+02:00", "2026-01-05T09:00:00Z"),
        ("2026-01-05T09:00:00", "2026-01-05T09:00:00Z"),  # no offset: UTC, never the local zone
        ("2026-01-05", "2026-01-05T00:00:00Z"),
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"),  # four-digit years, so text sorts as time
    ],
)
def test_parse_then_format_is_rfc3339_utc(text, seconds):
    assert format_utc(parse_datetime(text)) == seconds
    assert iso_ts(parse_ts(text)) == seconds


def test_microseconds_always_six_digits():
    assert format_utc(parse_datetime("2026-01-05T09:00:00Z"), micro=True) == "2026-01-05T09:00:00.000000Z"
    assert format_utc(parse_rfc2822("Mon, 05 Jan 2026 10:00:00 +0100"), micro=True) == "2026-01-05T09:00:00.000000Z"


def test_epoch_seconds_are_defined_where_utc_text_is_not():
    # an offset that moves the time before year 1: seconds exist, RFC 3339 UTC text does not
    t = parse_datetime("0001-01-01T00:00:00+05:00")
    assert parse_ts("0001-01-01T00:00:00+05:00") == t.timestamp()
    with pytest.raises(OverflowError):
        format_utc(t)
    assert iso_date(parse_ts("2026-01-05T23:59:59Z")) == "2026-01-05"


@pytest.mark.parametrize(
    "helper, value",
    [(draft.utc, "yesterday"), (draft.utc, "0001-01-01T00:00:00+05:00"), (draft.rfc2822_utc, "not a date")],
)
def test_intake_helpers_refuse_with_the_path(helper, value):
    with pytest.raises(Rejected) as info:
        helper(value, "$.created_at")
    assert info.value.code == "invalid_date" and "$.created_at" in str(info.value)


def test_intake_version_is_none_when_unreadable():
    assert draft.version_ts("2026-01-05T10:00:00+01:00") == "2026-01-05T09:00:00.000000Z"
    assert draft.version_ts("Mon, 05 Jan 2026 10:00:00 +0100", rfc2822=True) == "2026-01-05T09:00:00.000000Z"
    assert draft.version_ts("garbage") is None and draft.version_ts(None) is None
