"""Traffic Light Protocol 2.0 as STIX 2.1 marking definitions.

The ids and objects are the official OASIS ones (cti-stix-common-objects,
extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d). TLP 1.0 names and the TLP 1.0
marking ids that STIX 2.1 section 7.2.1.4 predefines are mapped onto TLP 2.0, with WHITE
becoming CLEAR as FIRST's TLP 2.0 text says.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any

TLP2_EXTENSION_ID = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
TLP2_CREATED = "2022-10-01T00:00:00.000Z"


class Tlp(Enum):
    """A TLP 2.0 level. Comparison follows strictness: CLEAR < GREEN < AMBER < AMBER+STRICT < RED."""

    CLEAR = "clear"
    GREEN = "green"
    AMBER = "amber"
    AMBER_STRICT = "amber+strict"
    RED = "red"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def label(self) -> str:
        """As TLP 2.0 writes it, e.g. 'TLP:AMBER+STRICT'."""
        return "TLP:" + self.value.upper()

    @property
    def marking_id(self) -> str:
        return _MARKING_IDS[self]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Tlp):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Tlp):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Tlp):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Tlp):
            return NotImplemented
        return self.rank >= other.rank

    @classmethod
    def parse(cls, text: str) -> Tlp:
        """Accepts 'amber', 'TLP:AMBER', 'tlp:amber+strict', 'AMBER STRICT', TLP 1.0 'white'.

        Raises ValueError for anything else: unknown TLP values are rejected, never guessed.
        """
        key = " ".join(str(text).strip().lower().replace("_", " ").split())
        if key.startswith("tlp:"):
            key = key[4:].strip()
        elif key.startswith("tlp "):
            key = key[4:].strip()
        key = key.replace(" + ", "+").replace(" ", "+")
        try:
            return _NAMES[key]
        except KeyError:
            raise ValueError(
                f"unknown TLP value {text!r} (use clear, green, amber, amber+strict or red)"
            ) from None

    @classmethod
    def from_marking_id(cls, marking_id: str) -> Tlp | None:
        return _level(marking_id)

    @classmethod
    def strictest(cls, levels: list[Tlp]) -> Tlp:
        return max(levels, key=lambda level: level.rank)


_RANK = {Tlp.CLEAR: 0, Tlp.GREEN: 1, Tlp.AMBER: 2, Tlp.AMBER_STRICT: 3, Tlp.RED: 4}

_MARKING_IDS = {
    Tlp.CLEAR: "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    Tlp.GREEN: "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    Tlp.AMBER: "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    Tlp.AMBER_STRICT: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    Tlp.RED: "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}

# TLP 1.0 marking definitions predefined by STIX 2.1 (section 7.2.1.4), mapped to TLP 2.0.
TLP1_MARKING_IDS = {
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": Tlp.CLEAR,  # WHITE
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": Tlp.GREEN,
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": Tlp.AMBER,
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": Tlp.RED,
}

_BY_MARKING_ID = {mid: level for level, mid in _MARKING_IDS.items()} | TLP1_MARKING_IDS

_NAMES = {
    "clear": Tlp.CLEAR,
    "white": Tlp.CLEAR,
    "green": Tlp.GREEN,
    "amber": Tlp.AMBER,
    "amber+strict": Tlp.AMBER_STRICT,
    "red": Tlp.RED,
}


def marking_definition(level: Tlp) -> dict[str, Any]:
    """The official OASIS TLP 2.0 marking-definition object for `level` (a fresh dict)."""
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": level.marking_id,
        "created": TLP2_CREATED,
        "name": level.label,
        "extensions": {
            TLP2_EXTENSION_ID: {
                "extension_type": "property-extension",
                "tlp_2_0": level.value,
            }
        },
    }


def _level(ref: Any, inline: Mapping[str, Tlp] | None = None) -> Tlp | None:
    if not isinstance(ref, str):
        return None
    level = _BY_MARKING_ID.get(ref)
    if level is None:
        # UUIDs compare case-insensitively (RFC 9562): an upper-case TLP id is still that TLP.
        level = _BY_MARKING_ID.get(ref.lower())
        if level is None and inline is not None:
            level = inline.get(ref)
    return level


def _strictest(refs: Iterable[Any], inline: Mapping[str, Tlp] | None) -> Tlp | None:
    best: Tlp | None = None
    for ref in refs:
        level = _level(ref, inline)
        if level is not None and (best is None or _RANK[level] > _RANK[best]):
            best = level
    return best


def canonical_marking_id(ref: str) -> str:
    """A TLP marking id written in another case, as STIX writes it (lower case); others as is."""
    if ref in _BY_MARKING_ID:
        return ref
    lowered = ref.lower()
    return lowered if lowered in _BY_MARKING_ID else ref


def object_tlp(obj: dict[str, Any]) -> Tlp | None:
    """The strictest TLP among an object's object_marking_refs alone (its object-level marking),
    or None if it has none."""
    refs = obj.get("object_marking_refs")
    if not refs or not isinstance(refs, list):
        return None
    return _level(refs[0]) if len(refs) == 1 else _strictest(refs, None)


def tlp_of(obj: dict[str, Any], inline: Mapping[str, Tlp] | None = None) -> Tlp | None:
    """The strictest TLP anywhere on an object: its object_marking_refs and the marking_ref of
    each granular marking (a TLP:RED field makes the object TLP:RED to share, store and export).
    `inline` maps other marking-definition ids that state a TLP (tlp_markings_defined_in).
    None if no TLP is found."""
    if not obj.get("granular_markings") and inline is None:  # the common case, on the hot path
        return object_tlp(obj)
    return _strictest(marking_refs(obj), inline)


def marking_refs(obj: dict[str, Any]) -> list[Any]:
    """Every marking ref on an object: object_marking_refs, then each granular marking_ref."""
    refs = obj.get("object_marking_refs")
    found = list(refs) if isinstance(refs, list) else []
    granular = obj.get("granular_markings")
    if isinstance(granular, list):
        found += [g.get("marking_ref") for g in granular if isinstance(g, dict)]
    return found


def stated_tlp(marking: dict[str, Any]) -> tuple[str, str] | None:
    """(level text, "1.0" or "2.0") when a marking-definition states a TLP level: the TLP 2.0
    extension's `tlp_2_0`, or a TLP 1.0 `definition_type` of tlp (in any case)."""
    extensions = marking.get("extensions")
    if isinstance(extensions, dict):
        extension = extensions.get(TLP2_EXTENSION_ID)
        if isinstance(extension, dict) and "tlp_2_0" in extension:
            return str(extension["tlp_2_0"]), "2.0"
    definition_type = marking.get("definition_type")
    if isinstance(definition_type, str) and definition_type.lower() == "tlp":
        definition = marking.get("definition")
        level = definition.get("tlp") if isinstance(definition, dict) else None
        return str(level), "1.0"
    return None


def tlp_markings_defined_in(objects: Iterable[dict[str, Any]]) -> dict[str, Tlp]:
    """Marking-definitions among `objects` that state a TLP level under an id of their own.
    A level that does not parse counts as TLP:RED: an unknown TLP is never read as a lower one."""
    return {mid: level for mid, level in marking_levels(objects).items() if level is not None}


def marking_levels(objects: Iterable[dict[str, Any]]) -> dict[str, Tlp | None]:
    """Every marking-definition among `objects` by id: the TLP it states (TLP:RED if the level
    does not parse), or None for a marking that states no TLP (a statement, a copyright)."""
    found: dict[str, Tlp | None] = {}
    for obj in objects:
        if not isinstance(obj, dict) or obj.get("type") != "marking-definition":
            continue
        if not isinstance(obj.get("id"), str):
            continue
        stated = stated_tlp(obj)
        try:
            found[obj["id"]] = statement_tlp(obj) if stated is None else Tlp.parse(stated[0])
        except ValueError:
            found[obj["id"]] = Tlp.RED
    return found


# "TLP:RED", "TLP: AMBER+STRICT - do not forward", "tlp amber": what a person reads as a TLP.
_TLP_STATEMENT = re.compile(r"\s*TLP\s*[:\-]?\s*(AMBER\s*\+\s*STRICT|RED|AMBER|GREEN|CLEAR|WHITE)\b", re.I)


def statement_tlp(marking: dict[str, Any]) -> Tlp | None:
    """A statement marking that reads as a TLP of AMBER or stricter ("TLP:RED - no further
    disclosure"): some tools write TLP that way, and a person reading it would honour it, so
    the sharing policy and the store do too. A milder one is left as a statement: it must not
    loosen what the default or a refusal of unmarked content would do."""
    if str(marking.get("definition_type", "")).lower() != "statement":
        return None
    definition = marking.get("definition")
    text = definition.get("statement") if isinstance(definition, dict) else None
    match = _TLP_STATEMENT.match(text) if isinstance(text, str) else None
    if match is None:
        return None
    level = Tlp.parse(match[1])
    return level if level >= Tlp.AMBER else None


def refs_beyond_tlp(obj: dict[str, Any]) -> list[str]:
    """The marking refs of an object (object-level and granular) that are not predefined TLP
    ids: custom markings whose meaning only their marking-definition tells. Fast for the usual
    object with one TLP ref and no granular markings."""
    refs = obj.get("object_marking_refs")
    if not obj.get("granular_markings") and (
        not refs or (isinstance(refs, list) and len(refs) == 1 and refs[0] in _BY_MARKING_ID)
    ):
        return []
    return [
        r for r in marking_refs(obj) if isinstance(r, str) and canonical_marking_id(r) not in _BY_MARKING_ID
    ]
