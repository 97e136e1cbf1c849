"""Time in the formats STIX 2.1 and JOSE use. Everything is UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def stix_timestamp(moment: datetime) -> str:
    """STIX 2.1 timestamp with millisecond precision, e.g. 2026-11-23T10:00:00.000Z (section 3.2)."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_timestamp(text: str) -> datetime:
    """Parses an RFC 3339 timestamp ('Z' or offset, any fraction); naive input is taken as UTC."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
