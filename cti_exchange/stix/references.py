"""References from one STIX object to others, and removing those to objects that are not
shared: `*_ref` and `*_refs` properties at any depth (a report's `object_refs`, an Incident
Core task's `changed_objects[*].initial_ref`), never the markings or the author."""

from __future__ import annotations

from typing import Any

# References that are never removed: markings (removing one could loosen the TLP) and the
# author (an object with a rejected author is still that author's).
KEPT_REFERENCES = frozenset({"object_marking_refs", "marking_ref", "created_by_ref"})


def references_in(value: Any) -> list[str]:
    """The ids in the `*_ref` and `*_refs` properties of `value`, at any depth (not the
    markings or the author: `KEPT_REFERENCES`)."""
    found: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
            continue
        if not isinstance(item, dict):
            continue
        for key, child in item.items():
            if key in KEPT_REFERENCES:
                continue
            if key.endswith("_ref") and isinstance(child, str):
                found.append(child)
            elif key.endswith("_refs") and isinstance(child, list):
                found += [ref for ref in child if isinstance(ref, str)]
            else:
                stack.append(child)
    return found


def drop_references(holder: dict[str, Any], gone: set[str], path: str, removed: list[str]) -> None:
    """Removes from `holder`, in place and at any depth, the references to `gone` ids, and
    appends where they were to `removed`: a `*_ref` property goes, a `*_refs` list loses those
    items (and goes when empty), a nested object in a list that is left with no reference goes
    (it was about the objects left out), and a list left empty by that goes."""
    for key in list(holder):
        child = holder[key]
        where = f"{path}.{key}" if path else key
        if key in KEPT_REFERENCES:
            continue
        if key.endswith("_ref") and isinstance(child, str):
            if child in gone:
                del holder[key]
                removed.append(where)
        elif key.endswith("_refs") and isinstance(child, list):
            remaining = [ref for ref in child if not (isinstance(ref, str) and ref in gone)]
            if len(remaining) != len(child):
                removed.append(where)
                if remaining:
                    holder[key] = remaining
                else:
                    del holder[key]
        elif isinstance(child, dict):
            drop_references(child, gone, where, removed)
        elif isinstance(child, list) and any(isinstance(item, dict | list) for item in child):
            items = _without_references_in_list(child, gone, where, removed)
            if len(items) != len(child):
                if items:
                    holder[key] = items
                else:
                    del holder[key]


def _without_references_in_list(items: list[Any], gone: set[str], path: str, removed: list[str]) -> list[Any]:
    result: list[Any] = []
    for position, item in enumerate(items):
        where = f"{path}[{position}]"
        if isinstance(item, dict):
            before = len(removed)
            drop_references(item, gone, where, removed)
            if len(removed) > before and not references_in(item):
                continue
        elif isinstance(item, list):
            item = _without_references_in_list(item, gone, where, removed)
        result.append(item)
    return result
