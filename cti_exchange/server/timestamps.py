"""Timestamps as the TAXII server stores and compares them: fixed-width UTC strings.

A STIX timestamp may carry any number of fractional digits ("...:05Z", "...:05.1Z",
"...:05.123456Z"), so raw strings do not sort in time order. Normalised to a fixed width,
they do, which lets SQL compare and index them as plain strings on any database.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

# [0-9], not \d (which matches any Unicode digit: a year in full-width digits would be stored and
# sort after every real year), and fullmatch, not "$" (which also matches before a final
# newline). strptime below accepts full-width digits too, so this pattern is the only gate.
_STIX_TIMESTAMP = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]{1,12}))?Z")

DATE_ADDED_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_date_added(moment: datetime) -> str:
    """TAXII date_added: UTC with microsecond precision (27 characters)."""
    return moment.astimezone(UTC).strftime(DATE_ADDED_FORMAT)


def _split(text: str) -> tuple[str, str]:
    match = _STIX_TIMESTAMP.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{text!r} is not a timestamp like 2026-01-31T12:00:00.000Z")
    seconds, fraction = match.group(1), match.group(2) or ""
    datetime.strptime(seconds, "%Y-%m-%dT%H:%M:%S")  # rejects month 13, Feb 30, ...
    return seconds, fraction


def normalise_added_after(text: str) -> str:
    """An `added_after` value in date_added form.

    Extra digits beyond microseconds are dropped: every date_added is a whole number of
    microseconds, so "date_added > truncated value" selects exactly "date_added > value".
    """
    seconds, fraction = _split(text)
    return f"{seconds}.{fraction[:6].ljust(6, '0')}Z"


def version_key(text: str) -> str:
    """A STIX version timestamp (modified, created or date_added) as a sortable key.

    Padded to nanoseconds: two versions that differ only in their 7th to 9th fractional digit
    stay distinct. Digits beyond the 9th are dropped.
    """
    seconds, fraction = _split(text)
    return f"{seconds}.{fraction[:9].ljust(9, '0')}Z"


def next_date_added(now: datetime, last_date_added: str | None) -> str:
    """The date_added for a new POST into a collection whose last POST had `last_date_added`.

    Strictly later than the previous POST even if the clock stepped back: a client paging
    with added_after=<X-TAXII-Date-Added-Last> (TAXII 2.1, "Pagination") must never miss a
    later POST because it landed on the same or an earlier microsecond.
    """
    moment = now.astimezone(UTC)
    if last_date_added is not None:
        last = datetime.strptime(last_date_added, DATE_ADDED_FORMAT).replace(tzinfo=UTC)
        if moment <= last:
            moment = last + timedelta(microseconds=1)
    return format_date_added(moment)
