"""STIX 2.1 data types checked fast: identifiers (section 2.9) and timestamps (section 2.15).

Objects built in one run share their timestamps and references, so valid strings are
remembered in a small bounded cache and most checks become a dict lookup.
"""

from __future__ import annotations

import re
from typing import Any

UUID_PATTERN = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}"
_ID = re.compile(rf"([a-z0-9][a-z0-9-]*[a-z0-9])--{UUID_PATTERN}")
_TIMESTAMP = re.compile(
    r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])T(?:[01]\d|2[0-3]):[0-5]\d:(?:[0-5]\d|60)"
    r"(?:\.\d{1,9})?Z"
)

# Valid strings seen recently, one cache per kind (an identifier is not a timestamp). Objects
# built in one run share their timestamps and references, so most checks become a dict
# lookup. Bounded: a cache is cleared when full.
KNOWN_TIMESTAMPS: dict[str, bool] = {}
KNOWN_IDS: dict[str, bool] = {}
CACHE_LIMIT = 4096


def is_timestamp(value: Any) -> bool:
    if value.__class__ is str and value in KNOWN_TIMESTAMPS:
        return True
    if not isinstance(value, str) or _TIMESTAMP.fullmatch(value) is None:
        return False
    _remember(KNOWN_TIMESTAMPS, value)
    return True


def is_id(value: Any, expected_type: str | None = None, *, remember: bool = True) -> bool:
    """A STIX identifier (of `expected_type`). References are remembered when valid (many
    objects share them); an object's own id is unique, so it is not (`remember=False`)."""
    if value.__class__ is not str:
        return False
    if value not in KNOWN_IDS:
        if _ID.fullmatch(value) is None:
            return False
        if remember:
            _remember(KNOWN_IDS, value)
    return expected_type is None or value.startswith(expected_type + "--")


def remember_id(value: str) -> None:
    """Record `value` as a valid identifier (the caller has checked it)."""
    _remember(KNOWN_IDS, value)


def _remember(cache: dict[str, bool], value: str) -> None:
    if len(cache) >= CACHE_LIMIT:
        cache.clear()
    cache[value] = True


def _timestamp_key(value: str) -> str:
    # RFC 3339 UTC timestamps sort as text once the fraction has a fixed width.
    head, _, fraction = value[:-1].partition(".")
    return f"{head}.{fraction.ljust(9, '0')}"


def later_or_equal(later: str, earlier: str) -> bool:
    if len(later) == len(earlier):
        return later >= earlier
    return _timestamp_key(later) >= _timestamp_key(earlier)


def string_list_check(name: str) -> Any:
    def check(value: Any) -> str | None:
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            return f"'{name}' must be a non-empty list of strings"
        return None

    return check
