"""Rules of particular STIX 2.1 object types, beyond their required properties.

Indicators (section 4.7: valid_until later than valid_from), relationships and sightings
(5.1, 5.2), observed-data (4.14), malware (4.11), reports (4.16), locations (4.10), files
(6.7), marking-definitions (7.2). Each rule appends sentences to `problems`.
"""

from __future__ import annotations

import re
from typing import Any

from cti_exchange.stix.primitives import is_id, is_timestamp, later_or_equal, string_list_check
from cti_exchange.stix.tlp import Tlp, stated_tlp

_RELATIONSHIP_TYPE = re.compile(r"[a-z0-9][a-z0-9-]*")

_INDICATOR_TYPES_CHECK = string_list_check("indicator_types")


def _check_indicator(obj: dict[str, Any], label: str, problems: list[str]) -> None:
    pattern = obj.get("pattern")
    if "pattern" in obj and (not isinstance(pattern, str) or not pattern):
        problems.append(f"{label}: 'pattern' must be a non-empty string")
    if "pattern_type" in obj and not isinstance(obj["pattern_type"], str):
        problems.append(f"{label}: 'pattern_type' must be a string")
    valid_from: Any = obj.get("valid_from")
    if "valid_from" in obj and not is_timestamp(valid_from):
        problems.append(f"{label}: 'valid_from' is not a STIX timestamp")
    valid_until: Any = obj.get("valid_until")
    if valid_until is not None:
        if not is_timestamp(valid_until):
            problems.append(f"{label}: 'valid_until' is not a STIX timestamp")
        elif is_timestamp(valid_from) and (
            valid_until == valid_from or not later_or_equal(valid_until, valid_from)
        ):
            problems.append(f"{label}: 'valid_until' must be later than 'valid_from'")
    indicator_types = obj.get("indicator_types")
    if indicator_types is not None:
        problem = _INDICATOR_TYPES_CHECK(indicator_types)
        if problem:
            problems.append(f"{label}: {problem}")


def _check_time_order(first: str, last: str, inclusive: bool) -> Any:
    def check(obj: dict[str, Any], label: str, problems: list[str]) -> None:
        start, end = obj.get(first), obj.get(last)
        for name, value in ((first, start), (last, end)):
            if value is not None and not is_timestamp(value):
                problems.append(f"{label}: '{name}' is not a STIX timestamp")
        if isinstance(start, str) and isinstance(end, str) and is_timestamp(start) and (is_timestamp(end)):
            ordered = later_or_equal(end, start) and (inclusive or end != start)
            if not ordered:
                relation = "later than or equal to" if inclusive else "later than"
                problems.append(f"{label}: '{last}' must be {relation} '{first}'")

    return check


def _check_relationship(obj: dict[str, Any], label: str, problems: list[str]) -> None:
    relationship_type = obj.get("relationship_type")
    if "relationship_type" in obj and not (
        isinstance(relationship_type, str) and _RELATIONSHIP_TYPE.fullmatch(relationship_type)
    ):
        problems.append(f"{label}: 'relationship_type' must be lower-case words joined by '-'")
    _check_time_order("start_time", "stop_time", inclusive=False)(obj, label, problems)


def _check_sighting(obj: dict[str, Any], label: str, problems: list[str]) -> None:
    count = obj.get("count")
    if count is not None and (count.__class__ is not int or not 0 <= count <= 999_999_999):
        problems.append(f"{label}: 'count' must be an integer from 0 to 999,999,999")
    for key, expected in (("observed_data_refs", "observed-data"),):
        refs = obj.get(key)
        if isinstance(refs, list) and not all(is_id(r, expected) for r in refs):
            problems.append(f"{label}: '{key}' may only hold {expected} ids")
    _check_time_order("first_seen", "last_seen", inclusive=True)(obj, label, problems)


def _check_observed_data(obj: dict[str, Any], label: str, problems: list[str]) -> None:
    if "object_refs" not in obj and "objects" not in obj:
        problems.append(f"{label}: needs 'object_refs' (or the deprecated 'objects')")
    number = obj.get("number_observed")
    if "number_observed" in obj and (number.__class__ is not int or not 1 <= number <= 999_999_999):
        problems.append(f"{label}: 'number_observed' must be an integer from 1 to 999,999,999")
    _check_time_order("first_observed", "last_observed", inclusive=True)(obj, label, problems)


def _check_malware(obj: dict[str, Any], label: str, problems: list[str]) -> None:
    is_family = obj.get("is_family")
    if "is_family" in obj and not isinstance(is_family, bool):
        problems.append(f"{label}: 'is_family' must be true or false")
    if is_family is True and "name" not in obj:
        problems.append(f"{label}: a malware family needs a 'name'")


def _check_report(obj: dict[str, Any], label: str, problems: list[str]) -> None:
    if "published" in obj and not is_timestamp(obj["published"]):
        problems.append(f"{label}: 'published' is not a STIX timestamp")


def _check_location(obj: dict[str, Any], label: str, problems: list[str]) -> None:
    has_point = "latitude" in obj and "longitude" in obj
    if not ("region" in obj or "country" in obj or has_point):
        problems.append(f"{label}: needs 'region', 'country' or 'latitude' and 'longitude'")


def _check_file(obj: dict[str, Any], label: str, problems: list[str]) -> None:
    if "hashes" not in obj and "name" not in obj:
        problems.append(f"{label}: a file needs 'hashes' or 'name'")


def _check_marking_definition(obj: dict[str, Any], label: str, problems: list[str]) -> None:
    has_definition = "definition_type" in obj and "definition" in obj
    if not has_definition and not isinstance(obj.get("extensions"), dict):
        problems.append(f"{label}: needs 'definition_type' and 'definition', or 'extensions'")
    predefined = Tlp.from_marking_id(obj["id"]) if isinstance(obj.get("id"), str) else None
    if predefined is not None:
        # The TLP markings' ids are predefined (STIX 2.1 7.2.1.4, the TLP 2.0 extension): a
        # definition under one of them stating another level (or none) would be stored as the
        # current version of that id and shown by `triage show` as what the id means.
        stated = stated_tlp(obj)
        try:
            level = Tlp.parse(stated[0]) if stated is not None else None
        except ValueError:
            level = None
        # A TLP 1.0 `definition` beside the TLP 2.0 extension must agree too: readers that take
        # the other one first would read another level.
        definition = obj.get("definition")
        older = definition.get("tlp") if isinstance(definition, dict) else None
        if (
            level is predefined
            and isinstance(older, str)
            and str(obj.get("definition_type")).lower() == "tlp"
        ):
            try:
                level = Tlp.parse(older)
            except ValueError:
                level = None
            stated = (older, "1.0")
        if level is not predefined:
            says = f"states {stated[0]!r:.30}" if stated is not None else "states no TLP level"
            problems.append(
                f"{label}: this id is the predefined {predefined.label} marking, but the "
                f"definition {says}: a predefined marking cannot be redefined"
            )


TYPE_CHECKS = {
    "indicator": _check_indicator,
    "relationship": _check_relationship,
    "sighting": _check_sighting,
    "observed-data": _check_observed_data,
    "malware": _check_malware,
    "report": _check_report,
    "location": _check_location,
    "file": _check_file,
    "marking-definition": _check_marking_definition,
    "intrusion-set": _check_time_order("first_seen", "last_seen", inclusive=True),
    "campaign": _check_time_order("first_seen", "last_seen", inclusive=True),
    "threat-actor": _check_time_order("first_seen", "last_seen", inclusive=True),
    "infrastructure": _check_time_order("first_seen", "last_seen", inclusive=True),
}
