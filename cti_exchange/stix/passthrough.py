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
  sharing it (objects with an author keep it);
- but an identity the input names as an author (`created_by_ref`: a partner's identity, which
  `export --format stix` writes with the partner's objects) is neither: it says who made them,
  it is that organisation's own, and it goes along with them as `seal` sends it (an identity
  carries no content of its own, policy/sharing.py). Marked with our TLP it was refused for a
  partner with a lower max TLP, and attributed to us it became our version of another agency's
  identity. Other identities (a victim a report names) are marked as any object: a
  relationship to one shares what it is about.

Each object is then validated (`validate.py`), indicator patterns with the OASIS grammar, and
the values inside pattern comparisons (`=`, and `ISSUBSET` on an address: a CIDR) and the
`value` of ipv4-addr, ipv6-addr, domain-name and url observables go through the same
guardrails as our own indicators. Objects that hold an individual's e-mail address (an
email-addr, or a pattern comparing one, also as an email-message's sender or recipient) are
withheld unless personal data is kept.

References to a rejected or withheld object are removed wherever they are (`*_ref` and
`*_refs` properties, nested ones included, such as an Incident Core task's
`changed_objects[*].initial_ref`); a nested object left with no reference at all goes with
them. An object that is not valid without them (a relationship without its `source_ref`, a
report without `object_refs`) is left out, and so, in turn, are the references to it. Marking
references and `created_by_ref` are never removed. The warnings that count objects (default
TLP, attribution, STIX 2.0 upgrades) count only the objects that are shared.

Individuals' e-mail addresses and international phone numbers in free text (a name, a
description, an identity's `contact_information`, a note, an external reference's
description) are replaced as in our own indicators' descriptions
(`guardrails.scrub_personal_data`), with a warning; with personal data kept, a warning says
they were kept.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

from cti_exchange.stix.guardrails import (
    Guardrails,
    holds_personal_data,
    is_individual_email,
    scrub_personal_data,
    url_personal_data,
)
from cti_exchange.stix.ioc_types import IocType
from cti_exchange.stix.normalise import normalise
from cti_exchange.stix.patterns import comparisons_in, validate_stix_pattern
from cti_exchange.stix.references import drop_references, references_in
from cti_exchange.stix.tlp import TLP1_MARKING_IDS, Tlp, canonical_marking_id, object_tlp, stated_tlp
from cti_exchange.stix.upgrade import upgrade_object
from cti_exchange.stix.validate import SCO_TYPES, object_category, validate_object

_OFFICIAL_TLP2 = {level.marking_id: level for level in Tlp}

# Free-text properties that may name a person's mailbox or phone (STIX 2.1: every SDO's name
# and description, an identity's contact_information, a note's abstract and content, an
# opinion's explanation). An observable's `name` (a file's, a mutex's) is a value, not text.
_FREE_TEXT = ("name", "description", "contact_information", "abstract", "content", "explanation")
_SCO_VALUES = frozenset({"name"})

# Pattern comparisons whose value we can check like one of our own indicators. List indexes
# in paths are written `[*]` (`to_refs[0].value` is checked as `to_refs[*].value`).
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
    # An integer literal reads as its digits (`[autonomous-system:number = 64496]`).
    ("autonomous-system", "number"): IocType.AUTONOMOUS_SYSTEM,
    ("email-message", "subject"): IocType.EMAIL_SUBJECT,
    ("file", "hashes.SSDEEP"): IocType.SSDEEP,
    ("x509-certificate", "hashes.MD5"): IocType.X509_MD5,
    ("x509-certificate", "hashes.SHA-1"): IocType.X509_SHA1,
    ("x509-certificate", "hashes.SHA-256"): IocType.X509_SHA256,
    ("mac-addr", "value"): IocType.MAC_ADDR,
    # An e-mail's sender and recipients (STIX 2.1 section 6.5: email-addr references).
    **{
        ("email-message", path): IocType.EMAIL
        for path in (
            "from_ref.value",
            "sender_ref.value",
            "to_refs[*].value",
            "cc_refs[*].value",
            "bcc_refs[*].value",
        )
    },
}
_ADDRESS_TYPES = (IocType.IPV4, IocType.IPV6)
_COMPARES_A_CREDENTIAL = "compares a user account's credential (a password)"
_SUBJECT_NAMES_SOMEONE = "compares an e-mail subject holding an individual's e-mail address or phone number"
# An e-mail address inside a LIKE or MATCHES literal.
_ADDRESS_IN_TEXT = re.compile(r"[A-Za-z0-9._+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_ESCAPED = re.compile(r"\\(.)")


def _unescaped(literal: str) -> str:
    """A LIKE or MATCHES literal with its escapes read as what they escape (`john\\.doe`)."""
    return _ESCAPED.sub(r"\1", literal)


def _kind_of(object_type: str, ioc_type: IocType, value: str) -> IocType:
    """What `value` compared on a path of `ioc_type` is: an IPv6 address when it holds a
    colon, a network when a slash, and a domain for a network-traffic `dst_ref` holding
    letters (a name:port indicator)."""
    if ioc_type is IocType.IPV4 and ":" in value:
        ioc_type = IocType.IPV6
    elif object_type == "network-traffic" and any(ch.isalpha() for ch in value):
        ioc_type = IocType.DOMAIN
    if "/" in value and ioc_type in _ADDRESS_TYPES:
        return IocType.IPV4_CIDR if ioc_type is IocType.IPV4 else IocType.IPV6_CIDR
    return ioc_type


# Observables whose `value` is checked like one of our own indicators.
_OBSERVED_TYPES = {
    "ipv4-addr": IocType.IPV4,
    "ipv6-addr": IocType.IPV6,
    "domain-name": IocType.DOMAIN,
    "url": IocType.URL,
    "mac-addr": IocType.MAC_ADDR,
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
        # Of the objects shared (rejected and withheld ones are not counted).
        self.default_tlp_count = 0
        self.attributed_count = 0
        self.upgraded_count = 0
        # Input indexes of the objects these edits were made to.
        self._defaulted: set[int] = set()
        self._attributed: set[int] = set()
        self._upgraded: set[int] = set()

    def prepared(self, objects: list[Any], *, stix20: bool = False) -> list[dict[str, Any]]:
        """The objects to share, in input order; issues go to the sink."""
        tlp_map, defined_markings, skip = self._markings(objects)
        authors = {
            obj["created_by_ref"]
            for obj in objects
            if isinstance(obj, dict) and isinstance(obj.get("created_by_ref"), str)
        }
        kept: list[tuple[int, dict[str, Any]]] = []
        dropped: set[str] = set()
        for index, obj in enumerate(objects):
            if index in skip:
                continue
            prepared = self._prepare(index, obj, stix20, tlp_map, defined_markings, authors)
            if prepared is None:
                if isinstance(obj, dict) and isinstance(obj.get("id"), str):
                    dropped.add(obj["id"])
            else:
                kept.append((index, prepared))
        shared = self._without_dangling(kept, dropped)
        indexes = {index for index, _ in shared}
        self.default_tlp_count += len(self._defaulted & indexes)
        self.attributed_count += len(self._attributed & indexes)
        self.upgraded_count += len(self._upgraded & indexes)
        return [obj for _, obj in shared]

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
        authors: set[str],
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
                self._upgraded.add(index)
        _map_markings(obj, tlp_map)
        is_marking = obj.get("type") == "marking-definition"
        # Our own identity (a bundle `convert` made) stays as the profile has it: unmarked,
        # like every identity we send, and not attributed to itself; so does the identity of
        # any author the input names (see the module docstring).
        author = obj.get("type") == "identity" and isinstance(obj.get("id"), str) and obj["id"] in authors
        if not (is_marking or author) and obj.get("id") != self.settings.identity_id:
            self._mark_and_attribute(index, obj, defined_markings)
        personal_data = self._personal_data_in_text(obj)
        kept = self._checked(index, obj)
        if kept is not None and personal_data is not None:
            # Said only of objects that are kept: a rejected one shares nothing.
            self._issue(index, obj, "personal-data", personal_data[0], personal_data[1], False)
        return kept

    def _checked(self, index: int, obj: dict[str, Any]) -> dict[str, Any] | None:
        """The object if it is valid and its values pass the checks; None (with the issue
        recorded) otherwise."""
        problems = validate_object(obj)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            self._issue(index, obj, "invalid-object", None, _unlabelled(obj, problems[0]) + more, True)
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
        if obj.get("type") == "user-account" and "credential" in obj and not self.settings.keep_personal_data:
            # An account's password, the victim's as often as an attacker's.
            self._withhold(index, obj, "holds an account's credential")
            return None
        observed = _OBSERVED_TYPES.get(obj["type"])
        value = obj.get("value")
        if observed is not None and isinstance(value, str):
            if "/" in value and observed in _ADDRESS_TYPES:
                observed = IocType.IPV4_CIDR if observed is IocType.IPV4 else IocType.IPV6_CIDR
            if not self._value_ok(index, obj, observed, "value", f"value {value!r}", value):
                return None
        return obj

    def _personal_data_in_text(self, obj: dict[str, Any]) -> tuple[str, str] | None:
        """Replaces individuals' e-mail addresses and phone numbers in free text (unless
        personal data is kept); (fields, message) of the warning that says so either way, or
        None when there were none."""
        skipped = _SCO_VALUES if object_category(obj) == "sco" else frozenset()
        # (where the text is, its key or index there, the field's name in the warning)
        places: list[tuple[Any, Any, str]] = [(obj, f, f) for f in _FREE_TEXT if f not in skipped]
        # Custom properties (`x_victim_email`) and labels are free text too, to whoever reads them.
        places += [
            (obj, key, key) for key, text in obj.items() if key.startswith("x_") and isinstance(text, str)
        ]
        labels = obj.get("labels")
        if isinstance(labels, list):
            places += [(labels, i, "labels") for i in range(len(labels))]
        references = obj.get("external_references")
        if isinstance(references, list):
            places += [
                (ref, "description", "external_references.description")
                for ref in references
                if isinstance(ref, dict)
            ]
        found = 0
        fields: list[str] = []
        for holder, key, name in places:
            text = holder[key] if isinstance(holder, list) else holder.get(key)
            if not isinstance(text, str):
                continue
            scrubbed, count = scrub_personal_data(text)
            if count:
                found += count
                fields += [] if name in fields else [name]
                if not self.settings.keep_personal_data:
                    holder[key] = scrubbed
        if not found:
            return None
        done = "kept in" if self.settings.keep_personal_data else "removed from"
        return (
            ", ".join(fields),
            f"{found} item(s) of personal data (e-mail, phone, id, IBAN) {done} the text",
        )

    def _mark_and_attribute(self, index: int, obj: dict[str, Any], defined_markings: set[str]) -> None:
        refs = obj.get("object_marking_refs")
        if refs is not None and not _is_string_list(refs):
            return  # malformed: validation rejects it
        if refs is None or object_tlp(obj) is None:
            refs = [*(refs or ()), self.settings.default_tlp.marking_id]
            obj["object_marking_refs"] = refs
            self._defaulted.add(index)
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
                    f"refers to {ref}, which is not defined in the input; kept as it is, and counted as "
                    "TLP:RED when shared (a partner cannot read it): include its definition or remove "
                    "the reference",
                    False,
                )
        if "created_by_ref" not in obj and object_category(obj) in ("sdo", "sro"):
            obj["created_by_ref"] = self.settings.identity_id
            self._attributed.add(index)

    def _indicator_ok(self, index: int, obj: dict[str, Any]) -> bool:
        if obj.get("pattern_type") != "stix":
            return True  # YARA, Sigma, ...: not STIX, passed through unchanged
        error = validate_stix_pattern(obj["pattern"])
        if error is not None:
            self._issue(index, obj, "invalid-pattern", "pattern", error, True)
            return False
        for object_type, dotted, operator, compared_value in comparisons_in(obj["pattern"]):
            path = _indexes_as_star(dotted)
            if (object_type, path) == ("user-account", "credential") and not self.settings.keep_personal_data:
                self._withhold(index, obj, _COMPARES_A_CREDENTIAL)
                return False
            ioc_type = _COMPARED_TYPES.get((object_type, path))
            if ioc_type is None:
                continue
            if operator == "IN" and isinstance(compared_value, tuple):
                # Each member of a set is looked for as `=` would look for it.
                for member in compared_value:
                    compared = f"compares {object_type}:{path} IN (... {member!r} ...)"
                    kind = _kind_of(object_type, ioc_type, member)
                    if not self._value_ok(index, obj, kind, "pattern", compared, member):
                        return False
                continue
            if not isinstance(compared_value, str):
                continue
            value = compared_value
            matching = operator in ("LIKE", "MATCHES")
            if matching and ioc_type is IocType.EMAIL and self._names_individual(value):
                # `LIKE 'john.smith@gmail.com'` compares one person's address as `=` does.
                self._withhold(index, obj)
                return False
            if matching and ioc_type is IocType.EMAIL_SUBJECT and self._subject_names_someone(value):
                # `LIKE '%john.doe@gmail.com%'`: the subject is shared as `=` would share it.
                self._withhold(index, obj, _SUBJECT_NAMES_SOMEONE)
                return False
            # `=` compares a value; ISSUBSET an address with a network (STIX 2.1 section 9.5),
            # the form `pattern_for` writes a CIDR in; IN a set of values (above). Other
            # operators (NOT =, MATCHES, LIKE, ...) do not name a value a sensor would look for.
            if operator != "=" and not (operator == "ISSUBSET" and ioc_type in _ADDRESS_TYPES):
                continue
            ioc_type = _kind_of(object_type, ioc_type, value)
            compared = f"compares {object_type}:{path} {operator} {value!r}"
            if not self._value_ok(index, obj, ioc_type, "pattern", compared, value):
                return False
        return True

    def _value_ok(
        self,
        index: int,
        obj: dict[str, Any],
        ioc_type: IocType,
        field: str,
        compared: str,
        value: str,
    ) -> bool:
        """Checks one value of `obj` (a pattern comparison, an observable's value) like one of
        our own indicators; False when `obj` is rejected or withheld for it."""
        try:
            normalised = normalise(ioc_type, value)
        except ValueError as error:
            # A value that can never match (`'domain autuo.xicp.net'`): a warning, a rejection
            # with --strict, as the other likely false positives (docs/INGEST.md).
            code = "suspect-pattern-value" if field == "pattern" else "suspect-value"
            rejected = self.settings.strict
            self._issue(index, obj, code, field, f"{compared}: {error}", rejected)
            return not rejected
        if (
            ioc_type is IocType.EMAIL
            and not self.settings.keep_personal_data
            and is_individual_email(normalised)
        ):
            self._withhold(index, obj)
            return False
        if (
            ioc_type is IocType.EMAIL_SUBJECT
            and not self.settings.keep_personal_data
            and holds_personal_data(normalised)
        ):
            # Compared as written: it cannot be scrubbed as free text is without changing it.
            self._withhold(index, obj, _SUBJECT_NAMES_SOMEONE)
            return False
        if (
            ioc_type is IocType.URL
            and not self.settings.keep_personal_data
            and (why := url_personal_data(normalised))
        ):
            self._withhold(index, obj, f"compares {why}")
            return False
        hit = self.guardrails.check(ioc_type, normalised)
        if hit is not None:
            rejected = self.settings.strict
            self._issue(
                index,
                obj,
                hit.code,
                field,
                f"likely false positive: {compared}: {hit.message}",
                rejected,
            )
            return not rejected
        return True

    def _names_individual(self, text: str) -> bool:
        """Whether a LIKE or MATCHES literal spells out an individual's address (regular
        expression escapes such as `\\.` read as the character they escape)."""
        if self.settings.keep_personal_data:
            return False
        return any(is_individual_email(found) for found in _ADDRESS_IN_TEXT.findall(_unescaped(text)))

    def _subject_names_someone(self, text: str) -> bool:
        """Whether a LIKE or MATCHES literal on a subject spells out an individual's address
        or a phone number, as `=` on it is judged (escapes read as what they escape)."""
        if self.settings.keep_personal_data:
            return False
        return holds_personal_data(_unescaped(text))

    def _withhold(
        self, index: int, obj: dict[str, Any], what: str = "holds an individual's e-mail address"
    ) -> None:
        self._issue(
            index,
            obj,
            "personal-data",
            None,
            f"{what} (personal data): withheld; use --keep-personal-data to share it",
            False,
        )

    def _without_dangling(
        self, kept: list[tuple[int, dict[str, Any]]], dropped: set[str]
    ) -> list[tuple[int, dict[str, Any]]]:
        """`kept` without its references to `dropped` objects, and without the objects that
        are not valid without them (see the module docstring); issues go to the sink."""
        alive = Counter(obj.get("id") for _, obj in kept)
        # An id of which another version is kept still resolves.
        gone = {object_id for object_id in dropped if not alive[object_id]}
        if not gone:
            return kept
        referrers: dict[str, list[int]] = {}
        for position, (_, obj) in enumerate(kept):
            for ref in set(references_in(obj)):
                referrers.setdefault(ref, []).append(position)
        removed: dict[int, list[str]] = {}
        left_out: dict[int, str] = {}
        newly_gone = set(gone)
        while newly_gone:
            # Each round visits the objects that refer to what the last round took away.
            positions = sorted({p for ref in newly_gone for p in referrers.get(ref, ())} - left_out.keys())
            newly_gone = set()
            for position in positions:
                _, obj = kept[position]
                paths = removed.setdefault(position, [])
                try:
                    drop_references(obj, gone, "", paths)
                except RecursionError:  # JSON nested about as deep as the reader accepts
                    problems = ["nested too deeply to remove the references"]
                else:
                    problems = validate_object(obj)
                if not problems:
                    continue
                left_out[position] = _unlabelled(obj, problems[0])
                object_id = obj.get("id")
                alive[object_id] -= 1
                if isinstance(object_id, str) and not alive[object_id]:
                    gone.add(object_id)
                    newly_gone.add(object_id)
        for position, paths in sorted(removed.items()):
            index, obj = kept[position]
            where = f" ({', '.join(dict.fromkeys(paths))})" if paths else ""
            if position in left_out:
                self._issue(
                    index,
                    obj,
                    "dangling-reference",
                    None,
                    f"refers to objects that were rejected or withheld{where}; without those "
                    f"references it is not valid ({left_out[position]}): left out",
                    True,
                )
            else:
                self._issue(
                    index,
                    obj,
                    "dangling-reference",
                    None,
                    f"referred to objects that were rejected or withheld: reference(s) removed{where}",
                    False,
                )
        return [pair for position, pair in enumerate(kept) if position not in left_out]


@cache
def _star_text() -> str:
    """How `comparisons_in` writes the `[*]` of a path (stix2patterns' index marker)."""
    from stix2patterns.inspector import INDEX_STAR

    return str(INDEX_STAR)


_LIST_INDEX = re.compile(r"\.[0-9]+(?=\.|\Z)")


def _indexes_as_star(dotted: str) -> str:
    """`to_refs.0.value` and `to_refs.<*>.value` (as `comparisons_in` writes list indexes) as
    `to_refs[*].value`."""
    if "." not in dotted:
        return dotted
    return _LIST_INDEX.sub("[*]", dotted.replace("." + _star_text(), "[*]"))


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


def _unlabelled(obj: dict[str, Any], problem: str) -> str:
    """`problem` without the object id that `validate_object` puts first: the issue's location
    (`objects[0] impact--...`) names the object already."""
    object_id = obj.get("id")
    if isinstance(object_id, str) and object_id and problem.startswith(f"{object_id}: "):
        return problem[len(object_id) + 2 :]
    return problem
