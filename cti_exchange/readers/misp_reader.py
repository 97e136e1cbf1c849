"""MISP event JSON: a bare event, `{"Event": ...}`, or the restSearch `{"response": [...]}`.

cti-exchange maps MISP attributes itself rather than through misp-stix (see docs/INGEST.md for
the evaluation): misp-stix leaves TLP on the event's grouping only, authors objects as the MISP
organisation, pulls in the STIX 1 libraries, and failed on one of the ESET sample events.

The mapping (docs/INGEST.md has the full table):
- each attribute, top-level or inside a MISP object, becomes one candidate indicator typed
  from its MISP type: ip-src/ip-dst (and `|port`), domain, hostname, url, email-*, md5, sha1,
  sha256, sha512, filename, mutex, regkey, AS, email-subject, ssdeep, x509-fingerprint-md5
  (-sha1, -sha256), mac-address, vulnerability, yara, snort, sigma, stix2-pattern; a
  composite `filename|<hash>` gives the hash, with the file name in the description;
  `regkey|value` gives the key, with the value's data in the description; `domain|ip` gives
  both;
- `link` attributes, and `url` ones in category "External analysis" (the publisher's own
  report), are the event's references: external references on its indicators;
- TLP: the event's `tlp:*` tag (TLP 1.0 or 2.0 taxonomy), made stricter by an attribute's (or
  its object's) own tag; several tags on one level take the strictest; an unknown TLP tag
  rejects what it is on;
- skipped with a warning: attributes with `to_ids: false` (context, not for detection: they
  would raise false positives; `include_non_ids` reads them anyway), and attributes
  (`link` ones too), objects and events with distribution 0 ("your organisation only");
  deleted attributes are skipped silently;
- rejected: `to_ids` attributes of a type with no STIX indicator (text, named pipe, ...).
Galaxies, object references, sightings and the event's own description are not mapped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cti_exchange.errors import InputError
from cti_exchange.readers.file_head import named_levels
from cti_exchange.readers.interface import (
    Finding,
    Reader,
    ReadItem,
    ReadLimits,
    Rejection,
)
from cti_exchange.readers.json_input import load_json
from cti_exchange.readers.lines import unify_line_breaks
from cti_exchange.stix.candidate import IndicatorCandidate
from cti_exchange.stix.tlp import Tlp
from cti_exchange.untrusted_text import describe_value

# MISP attribute type -> our type hint.
MISP_TYPES = {
    "ip-src": "ip",
    "ip-dst": "ip",
    "ip-src|port": "ip:port",
    "ip-dst|port": "ip:port",
    "hostname|port": "hostname:port",
    "domain": "domain",
    "hostname": "domain",
    "url": "url",
    "email": "email",
    "email-src": "email",
    "email-dst": "email",
    "email-reply-to": "email",
    "md5": "md5",
    "sha1": "sha1",
    "sha256": "sha256",
    "sha512": "sha512",
    "filename": "file-name",
    "mutex": "mutex",
    "regkey": "windows-registry-key",
    "AS": "autonomous-system",
    "email-subject": "email-subject",
    "ssdeep": "ssdeep",
    "x509-fingerprint-md5": "x509-md5",
    "x509-fingerprint-sha1": "x509-sha1",
    "x509-fingerprint-sha256": "x509-sha256",
    "mac-address": "mac-addr",
    "vulnerability": "cve",
    "yara": "yara",
    "snort": "snort",
    "sigma": "sigma",
    "stix2-pattern": "stix",
}
_FILENAME_HASH = {f"filename|{h}": h for h in ("md5", "sha1", "sha256", "sha512")}
_NOT_SHARED = "0"  # MISP distribution "Your organisation only"


def _flag(value: Any) -> bool:
    """MISP writes booleans as true/false, 0/1 or "0"/"1"."""
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false")
    return bool(value)


def _tags(container: dict[str, Any]) -> list[str]:
    names = []
    for key in ("Tag", "EventTag", "AttributeTag"):
        for entry in _list(container.get(key)):
            if isinstance(entry, str):  # some exports list tags as plain names
                names.append(entry)
            elif isinstance(entry, dict):
                tag = entry.get("Tag", entry)
                if isinstance(tag, dict) and isinstance(tag.get("name"), str):
                    names.append(tag["name"])
    return names


# `tlp:red`, `TLP : Red`, `tlp:"amber+strict"`: the tlp namespace, however spaced.
_TLP_TAG = re.compile(r"^\s*tlp\s*:(.*)$", re.IGNORECASE | re.DOTALL)


# The Permissible Actions Protocol (`pap:red`, `PAP:AMBER`): what a recipient may do with it.
_PAP_TAG = re.compile(r"^\s*pap\s*:\s*\"?([a-z]+)\"?\s*$", re.IGNORECASE)


def tlp_from_tags(tags: list[str]) -> Tlp | None:
    """The strictest TLP among MISP `tlp:*` tags; ValueError for an unknown level."""
    levels = []
    for tag in tags:
        if match := _TLP_TAG.match(tag):
            levels.append(Tlp.parse(match[1].strip().strip('"').strip()))
    return Tlp.strictest(levels) if levels else None


def events_of(document: Any) -> list[Any]:
    """The events in a MISP document (bare event, {"Event": ...}, {"response": [...]}, list)."""
    if isinstance(document, dict) and isinstance(document.get("response"), list):
        items = document["response"]
    elif isinstance(document, list):
        items = document
    else:
        items = [document]
    events = []
    for item in items:
        if isinstance(item, dict) and "Event" in item:
            events.append(item["Event"])
        else:
            events.append(item)
    return events


class MispReader(Reader):
    format_name = "misp"

    def __init__(self, limits: ReadLimits | None = None, *, include_non_ids: bool = False) -> None:
        super().__init__(limits)
        # Read `to_ids: false` attributes too (publishers that never set the flag).
        self.include_non_ids = include_non_ids

    def read(self, path: Path) -> Iterator[ReadItem]:
        label = str(path)
        document = load_json(path, self.limits.max_json_bytes, label)
        events = events_of(document)
        if (
            not events
            or not all(isinstance(e, dict) for e in events)
            or not any("Attribute" in e or "Object" in e or "info" in e for e in events)
        ):
            raise InputError(f"{label} is not a MISP event", hint="check --format")
        for index, event in enumerate(events):
            yield from self._event(label, index, event)

    def _event(self, label: str, index: int, event: dict[str, Any]) -> Iterator[ReadItem]:
        event_uuid = str(event.get("uuid") or f"#{index}")
        where = f"event {event_uuid}"
        try:
            event_tlp = tlp_from_tags(_tags(event))
        except ValueError as error:
            yield Rejection(label, str(error), where=where, field="Tag", code="invalid-tlp")
            return
        pap = sorted({m.group(1).strip().upper() for tag in _tags(event) if (m := _PAP_TAG.match(tag))})
        if any(level in ("AMBER", "RED") for level in pap):
            yield Finding(
                label,
                f"the event is tagged PAP:{'/'.join(pap)} (Permissible Actions Protocol: at AMBER "
                "and RED, no blocking or other action the adversary could notice), and PAP is not "
                "carried to partners, who may block what they receive: share it only if its owner "
                "allows that",
                where=where,
                field="Tag",
                code="pap-not-carried",
            )
        if str(event.get("distribution")) == _NOT_SHARED:
            yield Finding(
                label,
                "distribution is 'your organisation only': event not shared",
                where=where,
                code="not-shareable",
            )
            return
        info = event.get("info") if isinstance(event.get("info"), str) else None
        references: list[dict[str, str]] = [
            {"source_name": "MISP", "external_id": event_uuid, "description": "MISP event"}
        ]
        attributes: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
        for key in ("Attribute", "Object"):
            if event.get(key) is not None and not isinstance(event[key], list):
                # Dropped silently, it left "nothing usable" with nothing rejected.
                yield Rejection(
                    label,
                    f"the event's {key!r} is {_json_kind(event[key])}, not a list of MISP "
                    f"{key.lower()}s: nothing in it was read; export the event again from MISP",
                    where=where,
                    field=key,
                    code="invalid-attribute",
                )
        for attribute in _list(event.get("Attribute")):
            attributes.append((attribute, None))
        for misp_object in _list(event.get("Object")):
            if not isinstance(misp_object, dict) or _flag(misp_object.get("deleted")):
                continue
            if str(misp_object.get("distribution")) == _NOT_SHARED:
                # The object's distribution bounds its attributes' (theirs is usually
                # "inherit"): none of them may leave the organisation.
                name = misp_object.get("name")
                yield Finding(
                    label,
                    "distribution is 'your organisation only': MISP object"
                    + (f" {describe_value(name, 40)}" if isinstance(name, str) else "")
                    + " not shared",
                    where=f"{where} object {misp_object.get('uuid', '?')}",
                    code="not-shareable",
                )
                continue
            for attribute in _list(misp_object.get("Attribute")):
                attributes.append((attribute, misp_object))
        for attribute, _ in attributes:
            if (
                isinstance(attribute, dict)
                and _is_reference(attribute)
                and not _flag(attribute.get("deleted"))
                and str(attribute.get("distribution")) != _NOT_SHARED
            ):
                url = attribute.get("value")
                if isinstance(url, str) and url.startswith(("http://", "https://")):
                    references.append({"source_name": "reference", "url": url})
        for attribute, misp_object in attributes:
            yield from self._attribute(label, event_uuid, event_tlp, info, references, attribute, misp_object)

    def _attribute(
        self,
        label: str,
        event_uuid: str,
        event_tlp: Tlp | None,
        info: str | None,
        references: list[dict[str, str]],
        attribute: Any,
        misp_object: dict[str, Any] | None,
    ) -> Iterator[ReadItem]:
        if not isinstance(attribute, dict):
            yield Rejection(
                label,
                "an attribute is not a JSON object",
                where=f"event {event_uuid}",
                code="invalid-attribute",
            )
            return
        where = f"event {event_uuid} attribute {attribute.get('uuid', '?')}"
        misp_type, value = attribute.get("type"), attribute.get("value")
        if not isinstance(misp_type, str) or not isinstance(value, str):
            yield Rejection(
                label,
                "attribute without a 'type' and 'value' string",
                where=where,
                code="invalid-attribute",
            )
            return
        if _flag(attribute.get("deleted")):
            return
        if str(attribute.get("distribution")) == _NOT_SHARED:
            yield Finding(
                label,
                "distribution is 'your organisation only': not shared",
                where=where,
                field=misp_type,
                code="not-shareable",
            )
            return
        if _is_reference(attribute):
            return  # read above, as a reference of the event's indicators
        if not self.include_non_ids and not _flag(attribute.get("to_ids", True)):
            yield Finding(
                label,
                "to_ids is false (context, not for detection): skipped",
                where=where,
                field=misp_type,
                value=describe_value(value),
                code="not-for-detection",
            )
            return
        try:
            own = tlp_from_tags(_tags(attribute) + (_tags(misp_object) if misp_object else []))
        except ValueError as error:
            yield Rejection(label, str(error), where=where, field="Tag", code="invalid-tlp")
            return
        levels = [level for level in (event_tlp, own) if level is not None]
        tlp = Tlp.strictest(levels).value if levels else None
        description = _description(attribute, misp_object, info)
        # A comment or the event's title naming a stricter TLP than the tags (`TLP:RED - do
        # not share`): the conversion refuses the value rather than send it weaker.
        in_text = named_levels(description) if description else set()
        named = max(in_text).value if in_text else None
        valid_from = _text(attribute.get("first_seen"))
        event_references = tuple(references)

        def candidate(text: str, hint: str, note: str | None) -> IndicatorCandidate:
            return IndicatorCandidate(
                text,
                where=where,
                field=misp_type,
                type_hint=hint,
                tlp=tlp,
                description=note,
                valid_from=valid_from,
                external_references=event_references,
                named_tlp=named,
            )

        if misp_type in _FILENAME_HASH:
            name, _, digest = value.partition("|")
            note = f"file name: {name}"
            full = f"{description}; {note}" if description else note
            yield candidate(digest, _FILENAME_HASH[misp_type], full)
        elif misp_type == "regkey|value":
            # MISP writes `key|data` (up to the first "|", as for filename|hash). The indicator
            # compares the key, as for a `regkey`; the data is kept in the description.
            key, _, data = value.partition("|")
            parts = [text for text in (description, data and f"registry value data: {data}") if text]
            yield candidate(key, "windows-registry-key", "; ".join(parts) or None)
        elif misp_type == "domain|ip":
            domain, _, address = value.partition("|")
            yield candidate(domain, "domain", description)
            yield candidate(address, "ip", description)
        elif misp_type in MISP_TYPES:
            hint = MISP_TYPES[misp_type]
            if hint == "ip:port":
                address, _, port = value.rpartition("|")
                value = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
            elif hint == "hostname:port":
                value = value.replace("|", ":", 1)
            yield candidate(value, hint, description)
        else:
            yield Rejection(
                label,
                f"MISP type {misp_type!r} has no STIX indicator mapping",
                where=where,
                field=misp_type,
                value=describe_value(value),
                code="unsupported-type",
            )


def _json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a JSON object"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "true or false"
    return "a number"


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _description(
    attribute: dict[str, Any], misp_object: dict[str, Any] | None, info: str | None
) -> str | None:
    parts = []
    if _text(attribute.get("comment")):
        parts.append(attribute["comment"].strip())
    if misp_object is not None and isinstance(misp_object.get("name"), str):
        relation = attribute.get("object_relation")
        parts.append(f"MISP object {misp_object['name']}" + (f" ({relation})" if relation else ""))
    if info:
        parts.append(f"MISP event: {info.strip()}")
    # Comments typed into MISP's web form have CRLF line breaks.
    return unify_line_breaks("; ".join(parts)) or None


def _is_reference(attribute: dict[str, Any]) -> bool:
    """A `link`, or a `url` in category "External analysis" (the publisher's own report, as
    ESET's Zebrocy event cites its blog post): a reference of the event, not an indicator."""
    kind = attribute.get("type")
    return kind == "link" or (kind == "url" and attribute.get("category") == "External analysis")
