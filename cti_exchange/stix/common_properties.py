"""Checks of the properties common to STIX 2.1 objects (sections 3.2, 7.2, 7.3), by name,
and of any custom `*_ref` / `*_refs` property by its suffix. Part of the structural validator
in validate.py.
"""

from __future__ import annotations

import re
from typing import Any

from cti_exchange.stix.primitives import KNOWN_IDS, UUID_PATTERN, is_id, remember_id, string_list_check
from cti_exchange.untrusted_text import escape_controls

_PROPERTY_NAME = re.compile(r"[a-z0-9_]{1,250}")


def check_common_properties(obj: dict[str, Any], label: str, problems: list[str]) -> None:
    """Appends to `problems` what is wrong with the properties any object may carry (section
    3.2 and 7): references, markings, confidence, external references, kill chain phases,
    extensions; each prefixed with `label`."""
    object_type = obj["type"]
    for key in obj.keys() - _UNCHECKED_PROPERTIES:
        if key.__class__ is not str:
            problems.append(f"{label}: property names must be strings, not {key!r:.40}")
            continue
        value = obj[key]
        check = _PROPERTY_CHECKS.get(key, _BY_SUFFIX)
        if check is _BY_SUFFIX:
            if _PROPERTY_NAME.fullmatch(key) is None:
                # Section 3.1: a-z, 0-9 and _ only. A name is shown by `triage show`, kept in
                # exports and read by other tools: an escape sequence or markup there is not data.
                problems.append(
                    f"{label}: property name '{escape_controls(key)[:60]}' is not a STIX property "
                    "name (a-z, 0-9 and _, at most 250 characters)"
                )
                continue
            if key[-4:] == "_ref":
                if (key != "object_ref" or object_type == "language-content") and not is_id(value):
                    problems.append(f"{label}: '{key}' is not a STIX identifier")
            elif key[-5:] == "_refs":
                _check_refs(key, value, label, problems)
            continue
        problem = check(value)
        if problem:
            problems.append(f"{label}: {problem}")


def _check_refs(key: str, value: Any, label: str, problems: list[str]) -> None:
    if not isinstance(value, list) or not value or not all(is_id(v) for v in value):
        problems.append(f"{label}: '{key}' must be a non-empty list of identifiers")
    elif key == "object_marking_refs" and not all(v.startswith("marking-definition--") for v in value):
        problems.append(f"{label}: 'object_marking_refs' may only hold marking ids")


def _created_by_ref(value: Any) -> str | None:
    if not is_id(value, "identity"):
        return "'created_by_ref' must be the id of an identity"
    return None


def _object_marking_refs(value: Any) -> str | None:
    if (
        value.__class__ is list
        and len(value) == 1
        and value[0].__class__ is str
        and value[0] in KNOWN_IDS
        and value[0].startswith("marking-definition--")
    ):
        return None  # the common case: one marking id seen before
    problems: list[str] = []
    _check_refs("object_marking_refs", value, "", problems)
    if not problems and len(value) == 1:
        remember_id(value[0])
    return problems[0][2:] if problems else None


def _confidence(value: Any) -> str | None:
    if value.__class__ is not int or not 0 <= value <= 100:
        return "'confidence' must be an integer from 0 to 100"
    return None


def _granular_markings(value: Any) -> str | None:
    if not isinstance(value, list) or not value:
        return "'granular_markings' must be a non-empty list"
    for marking in value:
        if not isinstance(marking, dict):
            return "each granular marking must be an object"
        selectors = marking.get("selectors")
        if not isinstance(selectors, list) or not selectors:
            return "each granular marking needs a non-empty 'selectors' list"
        has_ref, has_lang = "marking_ref" in marking, "lang" in marking
        if has_ref == has_lang:
            return "each granular marking needs exactly one of 'marking_ref' and 'lang'"
        if has_ref and not is_id(marking["marking_ref"], "marking-definition"):
            return "a granular 'marking_ref' must be a marking-definition id"
    return None


def _external_references(value: Any) -> str | None:
    if not isinstance(value, list) or not value:
        return "'external_references' must be a non-empty list"
    for reference in value:
        if not isinstance(reference, dict) or not isinstance(reference.get("source_name"), str):
            return "each external reference needs a 'source_name' string"
        if not any(k in reference for k in ("description", "url", "external_id")):
            return "each external reference needs a description, url or external_id"
    return None


def _kill_chain_phases(value: Any) -> str | None:
    if not isinstance(value, list) or not value:
        return "'kill_chain_phases' must be a non-empty list"
    for phase in value:
        if not (
            isinstance(phase, dict)
            and isinstance(phase.get("kill_chain_name"), str)
            and isinstance(phase.get("phase_name"), str)
        ):
            return "each kill chain phase needs 'kill_chain_name' and 'phase_name' strings"
    return None


def _boolean(name: str) -> Any:
    def check(value: Any) -> str | None:
        return None if isinstance(value, bool) else f"'{name}' must be true or false"

    return check


_EXTENSION_KEY = re.compile(rf"extension-definition--{UUID_PATTERN}|[a-z][a-z0-9]*(?:-[a-z0-9]+)*-ext")


def _extensions(value: Any) -> str | None:
    # Section 7.3: a key is the id of an extension-definition, or the name of one of the
    # predefined SCO extensions, which all end in "-ext".
    if not isinstance(value, dict) or not value:
        return "'extensions' must be a non-empty object"
    for key, extension in value.items():
        if not isinstance(key, str) or _EXTENSION_KEY.fullmatch(key) is None:
            shown = str(key)[:80]
            return f"extension key {shown!r} is not an extension-definition id or an '-ext' name"
        if not isinstance(extension, dict):
            return f"extension {key[:80]!r} must be an object"
    return None


def _dictionary(name: str) -> Any:
    def check(value: Any) -> str | None:
        return None if isinstance(value, dict) else f"'{name}' must be an object"

    return check


# Per property name: its check, or None for properties checked elsewhere or free. Names not
# listed are checked by suffix (`_ref`, `_refs`), so that custom references are checked too.
_BY_SUFFIX: Any = object()
_PROPERTY_CHECKS: dict[str, Any] = {
    **dict.fromkeys(
        """type spec_version id created modified name description pattern pattern_type
        pattern_version valid_from valid_until indicator_types aliases first_seen last_seen
        published is_family malware_types tool_types report_types threat_actor_types
        identity_class sectors contact_information relationship_type start_time stop_time
        value lang""".split()
    ),
    "created_by_ref": _created_by_ref,
    "object_marking_refs": _object_marking_refs,
    "confidence": _confidence,
    "labels": string_list_check("labels"),
    "granular_markings": _granular_markings,
    "external_references": _external_references,
    "kill_chain_phases": _kill_chain_phases,
    "revoked": _boolean("revoked"),
    "defanged": _boolean("defanged"),
    "extensions": _extensions,
}
_UNCHECKED_PROPERTIES = frozenset(k for k, check in _PROPERTY_CHECKS.items() if check is None)
