"""How a STIX object is summarised in the `objects` table, for fast triage and export.

The full object is kept as JSON in `object_versions`; the columns here are what filters, sorts
and exports read. Simple single-comparison patterns (those cti-exchange builds) and host-and-port
patterns yield the indicator's type and value (stix/pattern_values.py); anything more complex
keeps only the pattern.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cti_exchange.stix.pattern_values import indicator_value
from cti_exchange.stix.tlp import tlp_of


def normalise_version(timestamp: str | None) -> str:
    """Fixed-width UTC timestamps compare correctly as strings (2026-11-23T10:00:00.000000Z)."""
    if not timestamp:
        return ""
    if len(timestamp) == 24 and timestamp[19] == "." and timestamp[23] == "Z":
        return timestamp[:23] + "000Z"  # the common millisecond form, without parsing
    try:
        value = timestamp[:-1] + "+00:00" if timestamp.endswith("Z") else timestamp
        moment = datetime.fromisoformat(value).astimezone(UTC)
    except ValueError:
        return timestamp
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def shown_version(version: str) -> str:
    """A stored version key (2026-11-23T10:00:00.000000Z, microseconds so that keys compare as
    text) as output gives it: a STIX timestamp with millisecond precision, as `modified` is
    written (2026-11-23T10:00:00.000Z); microseconds only where the object's own timestamp has
    them (2026-11-23T10:00:00.123456Z). Any other text as it is."""
    if len(version) == 27 and version[19] == "." and version[26] == "Z" and version.endswith("000Z"):
        return version[:23] + "Z"
    return version


# Column order of `objects` rows written by store/objects.py (after object_id and version).
PROJECTED_COLUMNS = (
    "type",
    "ioc_type",
    "value",
    "name",
    "pattern_type",
    "tlp",
    "confidence",
    "valid_from",
    "valid_until",
    "revoked",
    "created_by_ref",
)


def project(obj: dict[str, Any]) -> tuple[Any, ...]:
    """(object_id, version, *PROJECTED_COLUMNS) of one STIX object; hot path, kept lean."""
    get = obj.get
    kind = obj["type"]
    ioc_type = value = None
    if kind == "indicator":
        if get("pattern_type", "stix") == "stix":
            ioc_type, value = indicator_value(get("pattern"))
    elif kind == "vulnerability":
        ioc_type, value = "cve", get("name")
    refs = get("object_marking_refs")
    level = tlp_of(obj) if refs or get("granular_markings") else None
    name = get("name")
    confidence = get("confidence")
    return (
        obj["id"],
        normalise_version(get("modified") or get("created")),
        kind,
        ioc_type,
        value,
        name if isinstance(name, str) else None,
        get("pattern_type"),
        level.value if level else None,
        confidence if isinstance(confidence, int) and not isinstance(confidence, bool) else None,
        get("valid_from"),
        get("valid_until"),
        1 if get("revoked") is True else 0,
        get("created_by_ref"),
    )


def summary(obj: dict[str, Any]) -> tuple[Any, ...]:
    """(object_id, version, type, ioc_type, value, tlp, created): what the sent log keeps."""
    kind = obj["type"]
    ioc_type = value = None
    if kind == "indicator":
        if obj.get("pattern_type", "stix") == "stix":
            ioc_type, value = indicator_value(obj.get("pattern"))
    elif kind == "vulnerability":
        ioc_type, value = "cve", obj.get("name")
    level = tlp_of(obj)
    return (
        obj["id"],
        normalise_version(obj.get("modified") or obj.get("created")),
        kind,
        ioc_type,
        value,
        level.value if level else None,
        obj.get("created"),
    )
