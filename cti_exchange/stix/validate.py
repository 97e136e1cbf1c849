"""A fast structural validator for STIX 2.1 objects and bundles.

It checks what every consumer relies on and what a malicious or broken producer could get
wrong, at a few microseconds per object (100,000 objects in well under half a second), so it
can run on every bundle cti-exchange builds or receives:

- the required common properties of each object category (SDO, SRO, SCO, marking-definition,
  language-content, extension-definition; STIX 2.1 sections 3.1-3.2, 7.1, 7.3, 8.3) and the
  required properties of each predefined type (sections 4, 5, 6);
- identifiers `type--UUID` whose type matches the object's (section 2.9), references that are
  identifiers of the expected type, timestamps in the section 2.15 form, `spec_version` "2.1";
- indicators: pattern, pattern_type, valid_from, valid_until later than valid_from (4.7);
- confidence 0-100 (3.2), marking references, granular markings, kill chain phases,
  external references.

Unknown custom object types and properties pass (custom content is allowed, section 11); a
custom type is checked as an SDO when it declares a `new-sdo` extension (the Incident Core
`impact` and `task` objects do), as an SCO for `new-sco`, as an SRO for `new-sro`.

This is not the OASIS stix2-validator, which checks much more (vocabularies, every SCO
property) at about a millisecond per object; the tests run that one on our output too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cti_exchange.stix.common_properties import check_common_properties
from cti_exchange.stix.primitives import (
    KNOWN_IDS,
    KNOWN_TIMESTAMPS,
    is_id,
    is_timestamp,
    later_or_equal,
)
from cti_exchange.stix.type_checks import TYPE_CHECKS

SDO_TYPES = frozenset(
    """attack-pattern campaign course-of-action grouping identity incident indicator
    infrastructure intrusion-set location malware malware-analysis note observed-data opinion
    report threat-actor tool vulnerability""".split()
)
SRO_TYPES = frozenset({"relationship", "sighting"})
SCO_TYPES = frozenset(
    """artifact autonomous-system directory domain-name email-addr email-message file ipv4-addr
    ipv6-addr mac-addr mutex network-traffic process software url user-account
    windows-registry-key x509-certificate""".split()
)
META_TYPES = frozenset({"marking-definition", "language-content", "extension-definition"})

_SDO_COMMON = ("type", "spec_version", "id", "created", "modified")
_SCO_COMMON = ("type", "id")
_REQUIRED: dict[str, tuple[str, ...]] = {
    "attack-pattern": ("name",),
    "campaign": ("name",),
    "course-of-action": ("name",),
    "grouping": ("context", "object_refs"),
    "identity": ("name",),
    "incident": ("name",),
    "indicator": ("pattern", "pattern_type", "valid_from"),
    "infrastructure": ("name",),
    "intrusion-set": ("name",),
    "location": (),
    "malware": ("is_family",),
    "malware-analysis": ("product",),
    "note": ("content", "object_refs"),
    "observed-data": ("first_observed", "last_observed", "number_observed"),
    "opinion": ("opinion", "object_refs"),
    "report": ("name", "published", "object_refs"),
    "threat-actor": ("name",),
    "tool": ("name",),
    "vulnerability": ("name",),
    "relationship": ("relationship_type", "source_ref", "target_ref"),
    "sighting": ("sighting_of_ref",),
    "autonomous-system": ("number",),
    "directory": ("path",),
    "domain-name": ("value",),
    "email-addr": ("value",),
    "email-message": ("is_multipart",),
    "ipv4-addr": ("value",),
    "ipv6-addr": ("value",),
    "mac-addr": ("value",),
    "mutex": ("name",),
    "network-traffic": ("protocols",),
    "software": ("name",),
    "url": ("value",),
    "marking-definition": ("type", "spec_version", "id", "created"),
    "language-content": (*_SDO_COMMON, "object_ref", "contents"),
    "extension-definition": (
        *_SDO_COMMON,
        "created_by_ref",
        "name",
        "schema",
        "version",
        "extension_types",
    ),
}
_REQUIRED_BY_TYPE: dict[str, tuple[str, ...]] = {
    **{t: _SDO_COMMON + _REQUIRED[t] for t in SDO_TYPES | SRO_TYPES},
    **{t: _SCO_COMMON + _REQUIRED.get(t, ()) for t in SCO_TYPES},
    **{t: _REQUIRED[t] for t in META_TYPES},
}

_REQUIRED_KEYS = {name: frozenset(keys) for name, keys in _REQUIRED_BY_TYPE.items()}
_SDO_KEYS = frozenset(_SDO_COMMON)
_SCO_KEYS = frozenset(_SCO_COMMON)

_TYPE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{1,248}[a-z0-9]")


def object_category(obj: Mapping[str, Any]) -> str:
    """'sdo', 'sro', 'sco', 'meta' or 'custom' for an object with a string `type`."""
    object_type = obj.get("type")
    if object_type in SDO_TYPES:
        return "sdo"
    if object_type in SCO_TYPES:
        return "sco"
    if object_type in SRO_TYPES:
        return "sro"
    if object_type in META_TYPES:
        return "meta"
    extensions = obj.get("extensions")
    if isinstance(extensions, dict):
        for extension in extensions.values():
            if isinstance(extension, dict):
                kind = extension.get("extension_type")
                if kind in ("new-sdo", "new-sco", "new-sro"):
                    return kind[4:]
    return "custom"


# The properties of the indicators cti-exchange builds. An indicator with only these goes
# through `_plain_indicator_is_valid`: the same checks as below, written out in one function
# for the common case; anything unusual falls through to the general path and its messages.
_PLAIN_INDICATOR_KEYS = frozenset(
    """type spec_version id created modified created_by_ref name description indicator_types
    pattern pattern_type pattern_version valid_from valid_until confidence
    object_marking_refs""".split()
)


def _plain_indicator_is_valid(obj: dict[str, Any]) -> bool:
    try:
        return _plain_indicator_checks(obj)
    except KeyError:  # a required property is missing: the general path says which
        return False


def _plain_indicator_checks(obj: dict[str, Any]) -> bool:
    if obj["type"] != "indicator" or obj["pattern_type"].__class__ is not str:
        return False
    created = obj["created"]
    modified = obj["modified"]
    valid_from = obj["valid_from"]
    valid_until = obj.get("valid_until")
    times = KNOWN_TIMESTAMPS
    if not (
        obj["spec_version"] == "2.1"
        and is_id(obj["id"], "indicator", remember=False)
        and created.__class__ is str
        and created in times
        and (modified is created or (modified.__class__ is str and modified in times))
        and valid_from.__class__ is str
        and valid_from in times
        and (valid_until is None or (valid_until.__class__ is str and valid_until in times))
    ):
        return False
    if modified is not created and not later_or_equal(modified, created):
        return False
    if valid_until is not None and (valid_until == valid_from or not later_or_equal(valid_until, valid_from)):
        return False
    pattern = obj["pattern"]
    confidence = obj.get("confidence")
    refs = obj.get("object_marking_refs")
    types = obj.get("indicator_types")
    creator = obj.get("created_by_ref")
    ids = KNOWN_IDS
    return (
        pattern.__class__ is str
        and pattern != ""
        and (confidence is None or (confidence.__class__ is int and 0 <= confidence <= 100))
        and (
            creator is None or (creator.__class__ is str and creator in ids and creator[:10] == "identity--")
        )
        and (
            refs is None
            or (
                refs.__class__ is list
                and len(refs) == 1
                and refs[0].__class__ is str
                and refs[0] in ids
                and refs[0][:20] == "marking-definition--"
            )
        )
        and (
            types is None
            or (
                types.__class__ is list
                and len(types) > 0
                and (
                    (len(types) == 1 and types[0].__class__ is str) or all(t.__class__ is str for t in types)
                )
            )
        )
        and (obj.get("pattern_version") is None or obj["pattern_version"].__class__ is str)
    )


def validate_object(obj: Any) -> list[str]:
    """Problems with one STIX 2.1 object, each as a sentence; an empty list means valid."""
    if not isinstance(obj, dict):
        return [f"an object must be a JSON object, not {type(obj).__name__}"]
    if (
        obj.get("type") == "indicator"
        and _PLAIN_INDICATOR_KEYS.issuperset(obj)
        and _plain_indicator_is_valid(obj)
    ):
        return []
    problems: list[str] = []
    object_type: Any = obj.get("type")
    required = _REQUIRED_KEYS.get(object_type) if object_type.__class__ is str else None
    if required is None:
        if not isinstance(object_type, str) or _TYPE_NAME.fullmatch(object_type) is None:
            return [f"'type' {object_type!r} is not a STIX type name (3-250 of a-z, 0-9, '-')"]
        category = object_category(obj)
        required = _SDO_KEYS if category in ("sdo", "sro") else _SCO_KEYS
    object_id = obj.get("id")
    label = object_id if isinstance(object_id, str) and len(object_id) < 300 else object_type
    if not obj.keys() >= required:
        missing = [name for name in _REQUIRED_BY_TYPE.get(object_type, required) if name not in obj]
        problems.append(f"{label}: missing required {_plural(sorted(missing))}")

    if object_id is not None and not is_id(object_id, object_type, remember=False):
        problems.append(f"{label}: 'id' must be '{object_type}--' followed by a UUID")
    spec_version = obj.get("spec_version")
    if spec_version is not None and spec_version != "2.1":
        problems.append(f"{label}: 'spec_version' is {spec_version!r}, not '2.1'")
    created = obj.get("created")
    if created is not None and not is_timestamp(created):
        problems.append(f"{label}: 'created' is not a STIX timestamp (YYYY-MM-DDTHH:MM:SS[.s]Z)")
    modified = obj.get("modified")
    if modified is not None and modified is not created:
        if not is_timestamp(modified):
            problems.append(f"{label}: 'modified' is not a STIX timestamp")
        elif isinstance(created, str) and is_timestamp(created) and not (later_or_equal(modified, created)):
            problems.append(f"{label}: 'modified' is earlier than 'created'")

    checker = TYPE_CHECKS.get(object_type)
    if checker is not None:
        checker(obj, label, problems)
    check_common_properties(obj, label, problems)
    return problems


def _plural(names: list[str]) -> str:
    quoted = ", ".join(f"'{name}'" for name in names)
    return f"property {quoted}" if len(names) == 1 else f"properties {quoted}"


def validate_bundle(bundle: Any) -> list[str]:
    """Problems with a STIX 2.1 bundle and each of its objects; an empty list means valid.

    Object problems are prefixed with their position, `objects[12]: ...`.
    """
    if not isinstance(bundle, dict):
        return [f"a bundle must be a JSON object, not {type(bundle).__name__}"]
    problems: list[str] = []
    if bundle.get("type") != "bundle":
        problems.append(f"'type' is {bundle.get('type')!r}, not 'bundle'")
    if not is_id(bundle.get("id"), "bundle"):
        problems.append("'id' must be 'bundle--' followed by a UUID")
    if bundle.get("spec_version") == "2.0":
        problems.append("this is a STIX 2.0 bundle (spec_version '2.0'), not STIX 2.1")
    objects = bundle.get("objects")
    if not isinstance(objects, list) or not objects:
        # Section 8 allows a bundle without objects; cti-exchange never sends an empty one.
        problems.append("'objects' must be a non-empty list")
        return problems
    for index, obj in enumerate(objects):
        for problem in validate_object(obj):
            problems.append(f"objects[{index}]: {problem}")
    return problems
