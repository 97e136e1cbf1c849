"""Time in the formats STIX 2.1 and JOSE use. Everything is UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta


def utc_now() -> datetime:
    return datetime.now(UTC)


def stix_timestamp(moment: datetime) -> str:
    """STIX 2.1 timestamp with millisecond precision, e.g. 2026-11-23T10:00:00.000Z (section 3.2)."""
    moment = moment.astimezone(UTC)
    # %Y does not pad years before 1000 on every platform; STIX needs four digits.
    return f"{moment.year:04d}" + moment.strftime("-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_timestamp(text: str) -> datetime:
    """Parses an RFC 3339 timestamp ('Z' or offset, any fraction); naive input is taken as UTC.
    ValueError if it is not one, or cannot be moved to UTC (0001-01-01T00:00+05:00)."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{text!r} is out of the calendar's range once in UTC") from None


_AGE = re.compile(r"^(\d+)\s*([mhdw])$")
# unit letter -> timedelta keyword
_AGE_UNITS = dict(zip("mhdw", ("minutes", "hours", "days", "weeks"), strict=True))


def time_ago(text: str, now: datetime) -> datetime | None:
    """`now` minus an age written as on the command line (30m, 24h, 7d, 2w); None if `text`
    is not an age; ValueError if the age reaches before the calendar's first year."""
    match = _AGE.match(text.strip().lower())
    if match is None:
        return None
    try:
        return now - timedelta(**{_AGE_UNITS[match[2]]: int(match[1])})
    except OverflowError:
        raise ValueError(f"{text!r} reaches back before year 1") from None
