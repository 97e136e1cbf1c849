"""Building the STIX 2.1 objects cti-exchange authors: indicators and vulnerabilities.

Objects are plain dicts, built directly: creating `stix2.Indicator` objects costs about 400 us
each, far too slow for feeds of millions of indicators. Their validity is established by
construction, by `validate.py` at the edges, and by the OASIS validator in the tests.

Identifiers are deterministic (STIX 2.1 section 2.9 allows any UUID version; version 5 is the
name-based one): the UUID is uuidv5(INDICATOR_NAMESPACE, "<agency identity id>|<pattern>"), the
pattern being built from the normalised value. Re-importing the same value from the same agency
gives the same id, so re-sharing it is a new version of the same object (a later `modified`)
instead of a duplicate. Vulnerabilities use "<agency identity id>|vulnerability|<CVE id>".

Timestamps are formatted once per run, in the form section 2.15 requires (UTC, "Z"), with the
millisecond precision section 3.2 asks of `created` and `modified`.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from cti_exchange.stix.ioc_types import IocType
from cti_exchange.stix.patterns import pattern_for
from cti_exchange.stix.tlp import Tlp

# Fixed namespace for the ids of objects cti-exchange authors. Never change it: every
# previously shared id would stop matching its re-imports.
INDICATOR_NAMESPACE = uuid.UUID("6f1c3d0e-8a47-5b2e-9d6a-2c4e8b1f7a90")

DEFAULT_INDICATOR_TYPES = ("malicious-activity",)  # indicator-type-ov
# Used when a lifetime table lacks a key, so that a partial profile still works.
FALLBACK_LIFETIME_DAYS = 90

_YARA_NAME = re.compile(r"\brule\s+([A-Za-z_]\w*)")
_SIGMA_TITLE = re.compile(r"^title\s*:\s*(.+)$", re.MULTILINE)
_IDS_MSG = re.compile(r"\bmsg\s*:\s*\"((?:[^\"\\]|\\.){1,200})\"")
MAX_NAME_LENGTH = 200
# Looked up by the level's value: Enum hashing is a Python-level call on the per-row path.
_MARKING_IDS = {level.value: level.marking_id for level in Tlp}


def format_timestamp(moment: datetime) -> str:
    """`moment` as a STIX 2.1 timestamp, `YYYY-MM-DDTHH:MM:SS.sssZ` (section 2.15)."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def name_based_id(object_type: str, name: str) -> str:
    """`<object_type>--<uuidv5(INDICATOR_NAMESPACE, name)>`, as uuid.uuid5 computes it."""
    return _uuid5_id(object_type, INDICATOR_NAMESPACE.bytes + name.encode("utf-8"))


# RFC 4122 section 4.1.1: the variant bits 10xx turn the 17th hex digit into one of 8, 9, a, b.
_VARIANT_DIGIT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def _uuid5_id(object_type: str, data: bytes) -> str:
    # RFC 4122 section 4.3: SHA-1 of namespace + name; the 13th hex digit becomes the version
    # (5) and the 17th carries the variant. Done on the hex text: faster than on bytes.
    h = hashlib.sha1(data).hexdigest()  # noqa: S324 - UUIDv5 is SHA-1 by definition
    return f"{object_type}--{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT_DIGIT[h[16]]}{h[17:20]}-{h[20:32]}"


def indicator_id(identity_id: str, pattern: str) -> str:
    """The deterministic id of the indicator `identity_id` authors for `pattern`."""
    return name_based_id("indicator", f"{identity_id}|{pattern}")


def vulnerability_id(identity_id: str, cve_id: str) -> str:
    """The deterministic id of the vulnerability object `identity_id` authors for a CVE id."""
    return name_based_id("vulnerability", f"{identity_id}|vulnerability|{cve_id}")


def rule_name(ioc_type: IocType, rule: str) -> str | None:
    """A display name for a rule: the YARA rule name, Sigma title or Snort/Suricata msg."""
    if ioc_type is IocType.YARA:
        match = _YARA_NAME.search(rule)
    elif ioc_type is IocType.SIGMA:
        match = _SIGMA_TITLE.search(rule)
    elif ioc_type in (IocType.SNORT, IocType.SURICATA):
        match = _IDS_MSG.search(rule)
    else:
        return None
    return match.group(1).strip()[:MAX_NAME_LENGTH] if match else None


class StixObjectBuilder:
    """Builds the objects of one run: one agency, one clock reading, one set of defaults."""

    def __init__(
        self,
        identity_id: str,
        now: datetime,
        lifetime_days: Mapping[str, int],
        default_confidence: int,
    ) -> None:
        self.identity_id = identity_id
        self.now = now.astimezone(UTC)
        self.timestamp = format_timestamp(self.now)
        self.default_confidence = default_confidence
        self._lifetimes = {key: timedelta(days=days) for key, days in lifetime_days.items()}
        # Per-type values computed once per run (the types' properties are Python calls).
        self._default_valid_until: dict[IocType, str] = {}
        self._pattern_types: dict[IocType, tuple[str, bool]] = {}
        # One list per TLP level and one default indicator_types list, shared by the objects
        # of the run: a million indicators would otherwise hold two million one-item lists
        # (about 140 MB). Nothing in cti-exchange changes them in place; callers that edit
        # objects must assign new lists, not append to these.
        self._marking_refs = {level: [marking_id] for level, marking_id in _MARKING_IDS.items()}
        self._default_types = list(DEFAULT_INDICATOR_TYPES)
        # uuid5 hashes namespace + name; the agency part of the name is the same for every
        # indicator of the run, so it is encoded once.
        self._indicator_id_prefix = INDICATOR_NAMESPACE.bytes + f"{identity_id}|".encode()

    def lifetime(self, ioc_type: IocType) -> timedelta:
        return self._lifetimes.get(ioc_type.lifetime_key) or timedelta(
            days=self._lifetime_days_fallback(ioc_type)
        )

    def _lifetime_days_fallback(self, ioc_type: IocType) -> int:
        other = self._lifetimes.get("other")
        return other.days if other else FALLBACK_LIFETIME_DAYS

    def indicator_id(self, pattern: str) -> str:
        """Same as the module-level `indicator_id` for this builder's agency, faster."""
        return _uuid5_id("indicator", self._indicator_id_prefix + pattern.encode("utf-8"))

    def default_valid_until(self, ioc_type: IocType) -> str:
        text = self._default_valid_until.get(ioc_type)
        if text is None:
            text = format_timestamp(self.now + self.lifetime(ioc_type))
            self._default_valid_until[ioc_type] = text
        return text

    def _pattern_type(self, ioc_type: IocType) -> tuple[str, bool]:
        self._pattern_types[ioc_type] = (ioc_type.pattern_type, ioc_type.is_rule)
        return self._pattern_types[ioc_type]

    def indicator_from(
        self,
        ioc_type: IocType,
        value: str,
        pattern: str,
        *,
        tlp: Tlp,
        object_id: str | None = None,
        confidence: int | None = None,
        valid_from: datetime | None = None,
        valid_until: datetime | None = None,
        description: str | None = None,
        indicator_types: list[str] | None = None,
        kill_chain_phases: list[dict[str, str]] | None = None,
        external_references: list[dict[str, str]] | None = None,
    ) -> dict[str, Any]:
        """An indicator for the normalised `value`, detected by `pattern` (from pattern_for).

        valid_until defaults to valid_from plus the type's lifetime; the caller has checked
        that an explicit valid_until is later than valid_from.
        """
        if valid_from is None:
            valid_from_text = self.timestamp
            if valid_until is None:
                valid_until_text = self.default_valid_until(ioc_type)
            else:
                valid_until_text = format_timestamp(valid_until)
        else:
            valid_from_text = format_timestamp(valid_from)
            valid_until_text = format_timestamp(
                valid_until if valid_until is not None else valid_from + self.lifetime(ioc_type)
            )
        pattern_type, is_rule = self._pattern_types.get(ioc_type) or self._pattern_type(ioc_type)
        name = rule_name(ioc_type, value) if is_rule else value[:MAX_NAME_LENGTH]
        indicator: dict[str, Any] = {
            "type": "indicator",
            "spec_version": "2.1",
            "id": object_id or self.indicator_id(pattern),
            "created": self.timestamp,
            "modified": self.timestamp,
            "created_by_ref": self.identity_id,
        }
        if name:
            indicator["name"] = name
        if description:
            indicator["description"] = description
        indicator["indicator_types"] = indicator_types or self._default_types
        indicator["pattern"] = pattern
        # No pattern_version: for STIX patterns it defaults to the object's spec_version
        # (section 4.7), and rules carry their own language version, if any, in the text.
        indicator["pattern_type"] = pattern_type
        indicator["valid_from"] = valid_from_text
        indicator["valid_until"] = valid_until_text
        if kill_chain_phases:
            indicator["kill_chain_phases"] = kill_chain_phases
        indicator["confidence"] = self.default_confidence if confidence is None else confidence
        if external_references:
            indicator["external_references"] = external_references
        indicator["object_marking_refs"] = self._marking_refs[tlp._value_]
        return indicator

    def vulnerability_from(
        self,
        cve_id: str,
        *,
        tlp: Tlp,
        confidence: int | None = None,
        description: str | None = None,
        external_references: list[dict[str, str]] | None = None,
    ) -> dict[str, Any]:
        """A vulnerability object named by the normalised `cve_id` (STIX 2.1 section 4.19)."""
        vulnerability: dict[str, Any] = {
            "type": "vulnerability",
            "spec_version": "2.1",
            "id": vulnerability_id(self.identity_id, cve_id),
            "created": self.timestamp,
            "modified": self.timestamp,
            "created_by_ref": self.identity_id,
            "name": cve_id,
        }
        if description:
            vulnerability["description"] = description
        vulnerability["confidence"] = self.default_confidence if confidence is None else confidence
        # "cve" is the source name section 2.5 reserves for CVE ids.
        vulnerability["external_references"] = [
            {"source_name": "cve", "external_id": cve_id},
            *(external_references or ()),
        ]
        vulnerability["object_marking_refs"] = self._marking_refs[tlp._value_]
        return vulnerability


def indicator_from(
    ioc_type: IocType,
    value: str,
    *,
    identity_id: str,
    now: datetime,
    tlp: Tlp,
    lifetime_days: Mapping[str, int] | None = None,
    default_confidence: int = 50,
    **properties: Any,
) -> dict[str, Any]:
    """One indicator for a normalised `value`, its pattern built by construction.

    For a single object; a run of many should keep one `StixObjectBuilder`. `properties` are
    the optional keywords of `StixObjectBuilder.indicator_from` (confidence, description, ...).
    """
    builder = StixObjectBuilder(identity_id, now, lifetime_days or {}, default_confidence)
    return builder.indicator_from(ioc_type, value, pattern_for(ioc_type, value), tlp=tlp,
                                  **properties)  # fmt: skip


def vulnerability_from(
    cve_id: str, *, identity_id: str, now: datetime, tlp: Tlp, **properties: Any
) -> dict[str, Any]:
    """One vulnerability object for a normalised CVE id (see `StixObjectBuilder`)."""
    builder = StixObjectBuilder(identity_id, now, {}, properties.pop("default_confidence", 50))
    return builder.vulnerability_from(cve_id, tlp=tlp, **properties)
