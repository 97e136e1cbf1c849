"""Preparing objects from STIX input to be shared on: check them, keep them, mark them.

STIX input is passed through, not re-authored: objects keep their ids, their authors
(`created_by_ref`) and their content. What changes, and why:
- STIX 2.0 objects are upgraded to 2.1 (`upgrade.py`);
- TLP 1.0 marking references (the four ids STIX 2.1 section 7.2.1.4 predefines, or any
  marking-definition with `definition_type: "tlp"`) and TLP 2.0 markings minted under other ids
  are replaced by the official TLP 2.0 ids, so every consumer resolves them the same way; the
  TLP marking-definitions themselves are dropped and `build_bundle` adds the official ones. A
  TLP marking with an unknown level, or one that reuses an official id with a different level,
  is rejected;
- an object without any TLP marking gets the run's default TLP: sharing rules need one;
- an SDO or SRO without `created_by_ref` is attributed to our agency, which vouches for it by
  sharing it (objects with an author keep it).

Each object is then validated (`validate.py`), indicator patterns with the OASIS grammar, and
the values inside simple pattern comparisons go through the same guardrails as our own
indicators. Objects that hold an individual's e-mail address are withheld unless personal data
is kept; relationships and sightings that point at a withheld or rejected object go with it.
Individuals' e-mail addresses and international phone numbers in free text (a description, an
identity's `contact_information`, a note, an external reference's description) are replaced
as in our own indicators' descriptions (`guardrails.scrub_personal_data`), with a warning; with
personal data kept, a warning says they were kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from cti_exchange.stix.guardrails import Guardrails, is_individual_email, scrub_personal_data
from cti_exchange.stix.ioc_types import IocType
from cti_exchange.stix.normalise import normalise
from cti_exchange.stix.patterns import comparisons_in, validate_stix_pattern
from cti_exchange.stix.tlp import TLP1_MARKING_IDS, Tlp, canonical_marking_id, object_tlp, stated_tlp
from cti_exchange.stix.upgrade import upgrade_object
from cti_exchange.stix.validate import SCO_TYPES, object_category, validate_object

_OFFICIAL_TLP2 = {level.marking_id: level for level in Tlp}

# Free-text properties that may name a person's mailbox or phone (STIX 2.1: every SDO's
# description, an identity's contact_information, a note's abstract and content, an opinion's
# explanation).
_FREE_TEXT = ("description", "contact_information", "abstract", "content", "explanation")

# Pattern comparisons whose value we can check like one of our own indicators.
_COMPARED_TYPES = {
    ("domain-name", "value"): IocType.DOMAIN,
    ("url", "value"): IocType.URL,
    ("email-addr", "value"): IocType.EMAIL,
    ("ipv4-addr", "value"): IocType.IPV4,
    ("ipv6-addr", "value"): IocType.IPV6,
    ("network-traffic", "dst_ref.value"): IocType.IPV4,
    ("file", "hashes.MD5"): IocType.MD5,
    ("file", "hashes.SHA-1"): IocType.SHA1,
    ("file", "hashes.SHA-256"): IocType.SHA256,
    ("file", "hashes.SHA-512"): IocType.SHA512,
    ("mutex", "name"): IocType.MUTEX,
    ("windows-registry-key", "key"): IocType.WINDOWS_REGISTRY_KEY,
}


class ObjectIssueSink(Protocol):
    def __call__(
        self,
        index: int,
        object_id: str | None,
        code: str,
        field: str | None,
        reason: str,
        /,
        *,
        rejected: bool,
    ) -> None: ...


@dataclass(frozen=True)
class PassthroughSettings:
    identity_id: str
    default_tlp: Tlp
    strict: bool = False
    keep_personal_data: bool = False


class PassthroughPreparer:
    """Prepares the objects of one STIX input (see the module docstring)."""

    def __init__(self, settings: PassthroughSettings, guardrails: Guardrails, sink: ObjectIssueSink) -> None:
        self.settings = settings
        self.guardrails = guardrails
        self.sink = sink
        self.default_tlp_count = 0
        self.attributed_count = 0
        self.upgraded_count = 0

    def prepared(self, objects: list[Any], *, stix20: bool = False) -> list[dict[str, Any]]:
        """The objects to share, in input order; issues go to the sink."""
        tlp_map, defined_markings, skip = self._markings(objects)
        kept: list[tuple[int, dict[str, Any]]] = []
        dropped: set[str] = set()
        for index, obj in enumerate(objects):
            if index in skip:
                continue
            prepared = self._prepare(index, obj, stix20, tlp_map, defined_markings)
            if prepared is None:
                if isinstance(obj, dict) and isinstance(obj.get("id"), str):
                    dropped.add(obj["id"])
            else:
                kept.append((index, prepared))
        return self._without_dangling(kept, dropped)

    def _issue(self, index: int, obj: Any, code: str, field: str | None, reason: str, rejected: bool) -> None:
        object_id = obj.get("id") if isinstance(obj, dict) else None
        self.sink(
            index,
            object_id if isinstance(object_id, str) else None,
            code,
            field,
            reason,
            rejected=rejected,
        )

    def _markings(self, objects: list[Any]) -> tuple[dict[str, str], set[str], set[int]]:
        """(marking id -> official TLP 2.0 id, ids of other defined markings, indexes to drop)."""
        tlp_map = {ref: level.marking_id for ref, level in TLP1_MARKING_IDS.items()}
        defined: set[str] = set()
        skip: set[int] = set()
        for index, obj in enumerate(objects):
            if not (isinstance(obj, dict) and obj.get("type") == "marking-definition"):
                continue
            marking_id = obj.get("id")
            if not isinstance(marking_id, str):
                continue  # validation rejects it
            stated = stated_tlp(obj)
            if stated is None:
                defined.add(marking_id)
                continue
            skip.add(index)
            level_text, version = stated
            try:
                level = Tlp.parse(level_text)
            except ValueError as error:
                self._issue(index, obj, "invalid-tlp", "definition", str(error), True)
                # What refers to it is marked TLP:RED, never the default: an unreadable TLP is
                # not read as a lower one (the sharing policy does the same for `seal`).
                tlp_map[marking_id] = Tlp.RED.marking_id
                continue
            official = _OFFICIAL_TLP2.get(marking_id) or TLP1_MARKING_IDS.get(marking_id)
            if official is not None and official is not level:
                self._issue(
                    index,
                    obj,
                    "invalid-tlp",
                    "definition",
                    f"uses the id of {official.label} but says TLP {version} {level_text!r}",
                    True,
                )
                continue
            tlp_map[marking_id] = level.marking_id
        return tlp_map, defined, skip

    def _prepare(
        self,
        index: int,
        obj: Any,
        stix20: bool,
        tlp_map: dict[str, str],
        defined_markings: set[str],
    ) -> dict[str, Any] | None:
        if not isinstance(obj, dict):
            self._issue(index, obj, "invalid-object", None, "not a JSON object", True)
            return None
        if not isinstance(obj.get("type"), str):
            self._issue(index, obj, "invalid-object", "type", "no 'type' string", True)
            return None
        if (stix20 or "spec_version" not in obj) and obj.get("type") not in SCO_TYPES:
            if obj.get("spec_version", "2.0") == "2.0":
                obj = upgrade_object(obj)
                self.upgraded_count += 1
        _map_markings(obj, tlp_map)
        is_marking = obj.get("type") == "marking-definition"
        # Our own identity (a bundle `convert` made) stays as the profile has it: unmarked,
        # like every identity we send, and not attributed to itself.
        if not is_marking and obj.get("id") != self.settings.identity_id:
            self._mark_and_attribute(index, obj, defined_markings)
        self._personal_data_in_text(index, obj)
        problems = validate_object(obj)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            self._issue(index, obj, "invalid-object", None, problems[0] + more, True)
            return None
        if obj.get("type") == "indicator" and not self._indicator_ok(index, obj):
            return None
        if (
            obj.get("type") == "email-addr"
            and not self.settings.keep_personal_data
            and is_individual_email(str(obj.get("value", "")))
        ):
            self._withhold(index, obj)
            return None
        return obj

    def _personal_data_in_text(self, index: int, obj: dict[str, Any]) -> None:
        """Replaces individuals' e-mail addresses and phone numbers in free text (unless
        personal data is kept), and says so in a warning either way."""
        places: list[tuple[dict[str, Any], str]] = [(obj, field) for field in _FREE_TEXT]
        references = obj.get("external_references")
        if isinstance(references, list):
            places += [(ref, "description") for ref in references if isinstance(ref, dict)]
        found = 0
        fields: list[str] = []
        for holder, field in places:
            text = holder.get(field)
            if not isinstance(text, str):
                continue
            scrubbed, count = scrub_personal_data(text)
            if count:
                found += count
                name = field if holder is obj else f"external_references.{field}"
                fields += [] if name in fields else [name]
                if not self.settings.keep_personal_data:
                    holder[field] = scrubbed
        if found:
            done = "kept in" if self.settings.keep_personal_data else "removed from"
            self._issue(
                index,
                obj,
                "personal-data",
                ", ".join(fields),
                f"{found} e-mail address(es) or phone number(s) {done} the text",
                False,
            )

    def _mark_and_attribute(self, index: int, obj: dict[str, Any], defined_markings: set[str]) -> None:
        refs = obj.get("object_marking_refs")
        if refs is not None and not _is_string_list(refs):
            return  # malformed: validation rejects it
        if refs is None or object_tlp(obj) is None:
            refs = [*(refs or ()), self.settings.default_tlp.marking_id]
            obj["object_marking_refs"] = refs
            self.default_tlp_count += 1
        markings = list(refs)
        granular = obj.get("granular_markings")
        if isinstance(granular, list):
            markings += [g.get("marking_ref") for g in granular if isinstance(g, dict)]
        for ref in markings:
            if isinstance(ref, str) and Tlp.from_marking_id(ref) is None and ref not in defined_markings:
                self._issue(
                    index,
                    obj,
                    "unresolved-marking",
                    "object_marking_refs",
                    f"refers to {ref}, which is not defined in the input; kept as it is",
                    False,
                )
        if "created_by_ref" not in obj and object_category(obj) in ("sdo", "sro"):
            obj["created_by_ref"] = self.settings.identity_id
            self.attributed_count += 1

    def _indicator_ok(self, index: int, obj: dict[str, Any]) -> bool:
        if obj.get("pattern_type") != "stix":
            return True  # YARA, Sigma, ...: not STIX, passed through unchanged
        error = validate_stix_pattern(obj["pattern"])
        if error is not None:
            self._issue(index, obj, "invalid-pattern", "pattern", error, True)
            return False
        for object_type, path, operator, value in comparisons_in(obj["pattern"]):
            ioc_type = _COMPARED_TYPES.get((object_type, path))
            if ioc_type is None or operator != "=" or not isinstance(value, str):
                continue
            if ioc_type is IocType.IPV4 and ":" in value:
                ioc_type = IocType.IPV6
            elif object_type == "network-traffic" and any(ch.isalpha() for ch in value):
                ioc_type = IocType.DOMAIN  # dst_ref may be a domain-name (a name:port indicator)
            if "/" in value and ioc_type in (IocType.IPV4, IocType.IPV6):
                ioc_type = IocType.IPV4_CIDR if ioc_type is IocType.IPV4 else IocType.IPV6_CIDR
            if not self._comparison_ok(index, obj, ioc_type, object_type, path, value):
                return False
        return True

    def _comparison_ok(
        self,
        index: int,
        obj: dict[str, Any],
        ioc_type: IocType,
        object_type: str,
        path: str,
        value: str,
    ) -> bool:
        compared = f"{object_type}:{path} {value!r}"
        try:
            normalised = normalise(ioc_type, value)
        except ValueError as error:
            self._issue(
                index,
                obj,
                "suspect-pattern-value",
                "pattern",
                f"compares {compared}: {error}",
                False,
            )
            return True
        if (
            ioc_type is IocType.EMAIL
            and not self.settings.keep_personal_data
            and is_individual_email(normalised)
        ):
            self._withhold(index, obj)
            return False
        hit = self.guardrails.check(ioc_type, normalised)
        if hit is not None:
            rejected = self.settings.strict
            self._issue(
                index,
                obj,
                hit.code,
                "pattern",
                f"likely false positive: {compared}: {hit.message}",
                rejected,
            )
            return not rejected
        return True

    def _withhold(self, index: int, obj: dict[str, Any]) -> None:
        self._issue(
            index,
            obj,
            "personal-data",
            None,
            "holds an individual's e-mail address (personal data): withheld; "
            "use --keep-personal-data to share it",
            False,
        )

    def _without_dangling(
        self, kept: list[tuple[int, dict[str, Any]]], dropped: set[str]
    ) -> list[dict[str, Any]]:
        if not dropped:
            return [obj for _, obj in kept]
        result = []
        for index, obj in kept:
            refs = [obj.get(k) for k in ("source_ref", "target_ref", "sighting_of_ref")]
            if any(ref in dropped for ref in refs):
                self._issue(
                    index,
                    obj,
                    "dangling-reference",
                    None,
                    "refers to an object that was rejected or withheld; left out",
                    True,
                )
                continue
            for key in ("object_refs", "observed_data_refs", "where_sighted_refs"):
                values = obj.get(key)
                if isinstance(values, list) and any(v in dropped for v in values):
                    remaining = [v for v in values if v not in dropped]
                    if remaining:
                        obj[key] = remaining
                    else:
                        del obj[key]
            if validate_object(obj):
                self._issue(
                    index,
                    obj,
                    "dangling-reference",
                    None,
                    "all the objects it refers to were rejected or withheld",
                    True,
                )
                continue
            result.append(obj)
        return result


def _is_string_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _map_markings(obj: dict[str, Any], tlp_map: dict[str, str]) -> None:
    refs = obj.get("object_marking_refs")
    if isinstance(refs, list) and _is_string_list(refs):
        mapped = list(dict.fromkeys(tlp_map.get(r) or canonical_marking_id(r) for r in refs))
        if mapped != refs:
            obj["object_marking_refs"] = mapped
    granular_markings = obj.get("granular_markings")
    if not isinstance(granular_markings, list):
        return
    for granular in granular_markings:
        if isinstance(granular, dict):
            ref = granular.get("marking_ref")
            if isinstance(ref, str):
                granular["marking_ref"] = tlp_map.get(ref) or canonical_marking_id(ref)
