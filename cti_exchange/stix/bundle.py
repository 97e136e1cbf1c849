"""STIX 2.1 bundles: assembling what cti-exchange shares, and writing it out as JSON.

`build_bundle` adds the agency identity (the object every `created_by_ref` points to) and the
official TLP 2.0 marking-definitions the objects reference, so a consumer never meets an
unresolved reference for them. A bundle never has an empty `objects` list: STIX 2.1 section 8
lets one omit `objects` but not leave it empty, and sharing nothing is an input error.

Serialisation is compact UTF-8 JSON with non-ASCII characters unescaped (what
`json.dumps(bundle, ensure_ascii=False, separators=(",", ":"))` writes, floats aside, which
orjson writes in their shortest form). It is done in chunks straight into a byte buffer (or a
file), so a bundle of a million indicators never exists twice in memory as text.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterable
from typing import IO, Any

from cti_exchange.errors import InputError
from cti_exchange.stix.tlp import TLP1_MARKING_IDS, Tlp, marking_definition, marking_refs
from cti_exchange.stix.validate import validate_bundle

try:  # orjson encodes about eight times faster; the standard library is the fallback
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency
    orjson = None  # type: ignore[assignment]

_CHUNK = 2000  # objects per encoder call: large enough to keep the C encoder busy
# No circular-reference bookkeeping (a dict per container, measurably slower): STIX objects
# parsed from JSON or built here cannot hold cycles, and a cycle would end in RecursionError.
_stdlib_encode = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False
).encode


def _encode(value: Any) -> bytes:
    """Compact UTF-8 JSON. orjson refuses what the standard library may still write
    (integers beyond 64 bits in passed-through custom properties): those take the slow path."""
    if orjson is not None:
        try:
            return orjson.dumps(value)
        except (orjson.JSONEncodeError, TypeError):
            pass
    return _stdlib_encode(value).encode("utf-8")


def referenced_tlp_levels(objects: Iterable[dict[str, Any]]) -> set[Tlp]:
    """The TLP 2.0 levels named by the objects' object and granular marking references."""
    refs_seen: set[Any] = set()
    add = refs_seen.add
    for obj in objects:
        if obj.__class__ is not dict:
            continue  # malformed: left to the validator
        refs = obj.get("object_marking_refs")
        if refs.__class__ is list:  # malformed values are left to the validator
            if len(refs) == 1 and refs[0].__class__ is str:  # the common case
                add(refs[0])
            else:
                refs_seen.update(r for r in refs if isinstance(r, str))
        granular_markings = obj.get("granular_markings")
        if granular_markings.__class__ is list:
            for granular in granular_markings:
                if isinstance(granular, dict) and isinstance(granular.get("marking_ref"), str):
                    add(granular["marking_ref"])
    levels = {Tlp.from_marking_id(ref) for ref in refs_seen if isinstance(ref, str)}
    return {level for level in levels if level is not None}


# What travels along with the content objects that refer to it.
_DEFINITION_TYPES = ("marking-definition", "identity")
# The TLP definitions build_bundle supplies itself (TLP 2.0, and the TLP 1.0 ids it replaces).
_TLP_IDS = frozenset({level.marking_id for level in Tlp} | set(TLP1_MARKING_IDS))


def content_objects(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a partner learns from: everything but the marking-definitions and identities that
    travel with it (a file of those alone has nothing to share)."""
    return [o for o in objects if o.get("type") not in _DEFINITION_TYPES]


def travelling_definitions(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The marking-definitions and identities among `objects`, by id: what goes along with the
    content objects that refer to them (`travelling_with`). TLP definitions and our own
    identity among them are replaced by `build_bundle`."""
    return {
        o["id"]: o
        for o in objects
        if o.get("type") in _DEFINITION_TYPES
        and isinstance(o.get("id"), str)
        and o["id"] not in _TLP_IDS  # build_bundle adds those it needs
    }


def travelling_with(part: list[dict[str, Any]], pool: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The definitions of `pool` that the objects of `part` refer to (`object_marking_refs`,
    a granular marking's `marking_ref`, `created_by_ref`), and those these refer to in turn:
    a custom or statement marking sent without its definition is an unknown restriction to
    the partner (TLP:RED, docs/TRIAGE.md), and the creator's identity says who made it."""
    if not pool:
        return []
    found: dict[str, dict[str, Any]] = {}
    todo = list(part)
    while todo:
        obj = todo.pop()
        for ref in [obj.get("created_by_ref"), *marking_refs(obj)]:
            if isinstance(ref, str) and ref in pool and ref not in found:
                found[ref] = pool[ref]
                todo.append(pool[ref])
    return list(found.values())


def build_bundle(
    objects: list[dict[str, Any]], identity: dict[str, Any], *, validate: bool = True
) -> dict[str, Any]:
    """A bundle of `objects` plus `identity` and the TLP 2.0 marking-definitions they use.

    Objects are not copied. TLP marking-definitions already in `objects` (official TLP 2.0
    ones, or TLP 1.0 ones) are replaced by the official TLP 2.0 definitions; an object with the
    identity's id is replaced by `identity`. Raises InputError when there is nothing to share,
    and ValueError when the result is not valid STIX 2.1 (a bug: inputs are validated before).
    """
    identity_id = identity.get("id")
    kept = [obj for obj in objects if not _replaced(obj, identity_id)]
    if not kept:
        raise InputError(
            "nothing to share: the bundle would have no objects",
            hint="check the rejections reported for the input",
        )
    markings = [marking_definition(level) for level in sorted(referenced_tlp_levels(kept))]
    bundle = {
        "type": "bundle",
        "id": f"bundle--{uuid.uuid4()}",
        "objects": [identity, *markings, *kept],
    }
    if validate:
        problems = validate_bundle(bundle)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise ValueError(f"the bundle is not valid STIX 2.1: {problems[0]}{more}")
    return bundle


def _replaced(obj: Any, identity_id: Any) -> bool:
    """True for what build_bundle supplies itself: our identity and the TLP definitions."""
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
        return False  # left in, for the validator to report
    if obj["id"] == identity_id:
        return True
    return obj.get("type") == "marking-definition" and obj["id"] in _TLP_IDS


def write_bundle(bundle: dict[str, Any], stream: IO[bytes]) -> int:
    """Write `bundle` to a binary stream as compact UTF-8 JSON; returns the bytes written."""
    objects = bundle.get("objects", [])
    head = {key: value for key, value in bundle.items() if key != "objects"}
    opening = _encode(head)[:-1] + (b"," if head else b"") + b'"objects":['
    written = stream.write(opening)
    for start in range(0, len(objects), _CHUNK):
        chunk = _encode(objects[start : start + _CHUNK])
        # Drop the chunk's own brackets; join chunks with a comma.
        body = memoryview(chunk)[1:-1]
        if start:
            written += stream.write(b",")
        written += stream.write(body)
    written += stream.write(b"]}")
    return written


def serialise_bundle(bundle: dict[str, Any]) -> bytes:
    """`bundle` as compact UTF-8 JSON bytes (non-ASCII characters are not escaped)."""
    buffer = io.BytesIO()
    write_bundle(bundle, buffer)
    # BytesIO.getvalue() hands over its buffer without a copy when nothing else refers to it.
    return buffer.getvalue()
