"""The objects of one ingestion run, each identifier once.

Indicators we author have deterministic ids, so the same value seen twice in one input (the
Conti list has `185.178.209[.]193` and `185.178.209.193`) gives the same id and is merged:
- the stricter TLP wins (sharing must honour the most restrictive marking any source gave);
- the highest confidence, the earliest valid_from and the latest valid_until are kept;
- indicator types, kill chain phases and external references are united; descriptions that
  differ are joined.

Objects passed through from STIX input keep their ids; of several versions of one object
(same id) the latest `modified` is kept (STIX 2.1 section 3.6, versioning).
"""

from __future__ import annotations

from typing import Any

from cti_exchange.stix.tlp import object_tlp

MAX_MERGED_DESCRIPTION = 4096


class ObjectCollection:
    """Objects in first-seen order, with counts of accepted objects per kind."""

    def __init__(self) -> None:
        self.objects: list[dict[str, Any]] = []
        self.kinds: list[str] = []  # the kind each object was counted as, in the same order
        self.accepted_by_type: dict[str, int] = {}
        self.duplicates_merged = 0
        self._by_id: dict[str, dict[str, Any]] = {}

    def __len__(self) -> int:
        return len(self.objects)

    def ids(self) -> set[str]:
        return set(self._by_id)

    def add_authored(self, kind: str, obj: dict[str, Any]) -> None:
        """Add an object we built; a duplicate id is merged into the first one."""
        object_id = obj["id"]
        kept = self._by_id.get(object_id)
        if kept is None:
            self._by_id[object_id] = obj
            self.objects.append(obj)
            self.kinds.append(kind)
            counts = self.accepted_by_type
            counts[kind] = counts.get(kind, 0) + 1
            return
        self.duplicates_merged += 1
        _merge(kept, obj)

    def add_passed_through(self, obj: dict[str, Any]) -> None:
        """Add an object from STIX input; of two versions the later `modified` stays."""
        object_id = obj["id"]
        kept = self._by_id.get(object_id)
        if kept is None:
            self._by_id[object_id] = obj
            self.objects.append(obj)
            self.kinds.append(obj["type"])
            counts = self.accepted_by_type
            counts[obj["type"]] = counts.get(obj["type"], 0) + 1
            return
        self.duplicates_merged += 1
        if str(obj.get("modified", "")) > str(kept.get("modified", "")):
            # Replaced in place: the list keeps its order and needs no position index.
            kept.clear()
            kept.update(obj)


def _merge(kept: dict[str, Any], other: dict[str, Any]) -> None:
    kept_tlp, other_tlp = object_tlp(kept), object_tlp(other)
    if other_tlp is not None and (kept_tlp is None or other_tlp > kept_tlp):
        kept["object_marking_refs"] = other["object_marking_refs"]
    if other.get("confidence", 0) > kept.get("confidence", 0):
        kept["confidence"] = other["confidence"]
    # Our timestamps all have the same format, so text order is time order.
    if "valid_from" in other and other["valid_from"] < kept["valid_from"]:
        kept["valid_from"] = other["valid_from"]
    if "valid_until" in other and other["valid_until"] > kept.get("valid_until", ""):
        kept["valid_until"] = other["valid_until"]
    for key in ("indicator_types", "kill_chain_phases", "external_references"):
        current = kept.get(key, [])
        new_items = [item for item in other.get(key, ()) if item not in current]
        if new_items:  # a new list: the old one may be shared with other objects
            kept[key] = [*current, *new_items]
    description = other.get("description")
    if description and description != kept.get("description"):
        current = kept.get("description")
        if not current:
            kept["description"] = description
        elif description not in current and len(current) < MAX_MERGED_DESCRIPTION:
            kept["description"] = f"{current}\n{description}"[:MAX_MERGED_DESCRIPTION]
