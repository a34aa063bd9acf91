"""Report ranges the database stores and every reader can read back.

PostgreSQL's timestamptz reaches from 4713 BC to 294276 AD, but a value must also come back
out: Python's datetime (and so psycopg) holds years 1 to 9999 only, in the session's zone.
`0001-01-01T00:00:00+14:00` is year 0 in UTC and `9999-12-31T23:59:59-14:00` is year 10000:
both were stored, and from then on every read of the tenant's report list failed. Ranges are
kept two days inside Python's limits, so any zone (UTC-12 to UTC+14) reads them back.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EARLIEST = datetime(1, 1, 3, tzinfo=UTC)
LATEST = datetime(9999, 12, 29, tzinfo=UTC)
# The same bounds in SQL, for reads that must never fail on a row stored before the check.
EARLIEST_SQL = "'0001-01-03 00:00:00+00'::timestamptz"
LATEST_SQL = "'9999-12-29 00:00:00+00'::timestamptz"
DEFAULT_MAX_SPAN_DAYS = 366


def bound_problem(value: datetime) -> str | None:
    """Why a timestamp cannot be a report bound, or None. Aware datetimes compare without
    converting, so this never overflows."""
    if value.tzinfo is None:
        return "needs a time zone"
    if value < EARLIEST or value > LATEST:
        return (
            f"{value.isoformat()} is outside the range reports can hold "
            f"({EARLIEST.date()} to {LATEST.date()} UTC)"
        )
    return None


def span_problem(start: datetime, end: datetime, max_span_days: int) -> str | None:
    if end <= start:
        return "must be after range_from"
    if end - start > timedelta(days=max_span_days):
        return f"range longer than {max_span_days} days (the limit is [api] report_max_span_days)"
    return None


def preset_start(end: datetime, span: timedelta) -> datetime | None:
    """end - span, or None when that falls before year 1 (a preset ending in year 1)."""
    try:
        start = end - span
    except OverflowError:
        return None
    return start if start >= EARLIEST else None


def readable(column: str) -> str:
    """A SELECT expression of a timestamptz column that is NULL where reading it back would
    fail, so one stored extreme never breaks a whole list."""
    return f"CASE WHEN {column} BETWEEN {EARLIEST_SQL} AND {LATEST_SQL} THEN {column} END"
