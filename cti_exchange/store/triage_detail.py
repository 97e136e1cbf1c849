"""One object in full for `triage show`, and the sightings partners sent of what we shared.

Related objects come from relationships on either side of the object, then one hop further
(an indicator `indicates` a malware that a course of action `mitigates`): the analyst sees the
malware, threat actor, infrastructure and course of action around an indicator in one place.
Relationship and sighting lookups use the expression indexes of migration 2, so they cost the
same however many indicators the store holds.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

_RELATED_LIMIT = 50


@dataclass(frozen=True)
class StoredVersion:
    version: str  # normalised to compare as text (2026-01-10T10:00:00.000000Z)
    is_current: bool
    revoked: bool
    partner: str
    envelope_id: str
    received_at: str
    modified: str | None  # as the object says it (`modified`, else `created`): what is shown


@dataclass(frozen=True)
class RelatedObject:
    relationship_type: str
    direction: str  # "to" (this object is the source) or "from" (it is the target)
    object_id: str
    type: str | None  # None: not in the store
    name: str | None  # its name, indicator value, or a cyber-observable's value (observable_label)
    via: str | None  # the id of the object in between, for a second hop
    # The partner that sent the relationship: whoever asserts it, not necessarily the creator
    # of either end (a partner may relate another partner's indicator to a malware).
    partner: str | None = None


@dataclass(frozen=True)
class NamedObject:
    object_id: str
    revoked: bool


# What names a cyber-observable (an `ipv4-addr` an infrastructure `consists-of`, a file), in
# order: none of them is projected into the `value` column, which holds indicator values.
_OBSERVABLE_FIELDS = ("value", "name", "key", "path", "account_login", "number", "subject")
_HASH_ORDER = ("SHA-256", "SHA-512", "SHA3-256", "SHA-1", "MD5")


@dataclass(frozen=True)
class Decision:
    decision: str
    analyst: str
    decided_at: str
    note: str | None


@dataclass(frozen=True)
class ReceivedSighting:
    """A sighting a partner sent, of an object we shared with it (or of one we received)."""

    sighting_id: str
    partner: str
    received_at: str
    sighting_of_ref: str
    value: str | None
    ioc_type: str | None
    count: int | None
    first_seen: str | None
    last_seen: str | None
    description: str | None
    created_by_ref: str | None


def object_json(
    conn: sqlite3.Connection, object_id: str, version: str | None = None
) -> dict[str, Any] | None:
    if version is None:
        row = conn.execute(
            "SELECT json FROM objects WHERE object_id = ? AND is_current = 1", (object_id,)
        ).fetchone()
    else:
        row = conn.execute(
            "SELECT json FROM objects WHERE object_id = ? AND version = ?", (object_id, version)
        ).fetchone()
    return json.loads(row[0]) if row else None


def versions_of(conn: sqlite3.Connection, object_id: str) -> list[StoredVersion]:
    return [
        StoredVersion(r[0], bool(r[1]), bool(r[2]), r[3], r[4], r[5], _modified(r[6]))
        for r in conn.execute(
            "SELECT version, is_current, revoked, partner, envelope_id, received_at, json FROM objects "
            "WHERE object_id = ? ORDER BY version DESC",
            (object_id,),
        )
    ]


def _modified(text: str) -> str | None:
    """The object's own `modified` (else `created`) text. Parsed here, not by SQLite's JSON
    functions, which refuse a store edited by hand that holds a NaN."""
    obj = json.loads(text)
    if not isinstance(obj, dict):
        return None
    found = obj.get("modified") or obj.get("created")
    return found if isinstance(found, str) else None


def objects_named(conn: sqlite3.Connection, name: str, limit: int) -> list[NamedObject]:
    """Current objects whose name is exactly `name` (malware, threat actors...), first stored
    first, at most `limit`: a range of the named index, which leaves out indicators named by
    their value (found by their value)."""
    return [
        NamedObject(r[0], bool(r[1]))
        for r in conn.execute(
            "SELECT object_id, revoked FROM objects INDEXED BY objects_current_named "
            "WHERE is_current = 1 AND name IS NOT value AND name = ? ORDER BY rowid LIMIT ?",
            (name, limit),
        )
    ]


def observable_label(obj: dict[str, Any]) -> str | None:
    """What names a cyber-observable: its value (`value`, a file's `name`, a registry key...),
    else for a file without a name its strongest hash ("SHA-256:..."). Raw partner text."""
    for field in _OBSERVABLE_FIELDS:
        found = obj.get(field)
        if isinstance(found, str) and found:
            return found
        if isinstance(found, int) and not isinstance(found, bool):
            return str(found)
    hashes = obj.get("hashes")
    if isinstance(hashes, dict):
        texts = {k: v for k, v in hashes.items() if isinstance(k, str) and isinstance(v, str) and v}
        for algorithm in (*_HASH_ORDER, *sorted(texts)):
            if algorithm in texts:
                return f"{algorithm}:{texts[algorithm]}"
    return None


def _label(conn: sqlite3.Connection, object_id: str) -> tuple[str | None, str | None]:
    row = conn.execute(
        "SELECT type, COALESCE(name, value), "
        "CASE WHEN name IS NULL AND value IS NULL THEN json END "
        "FROM objects WHERE object_id = ? AND is_current = 1",
        (object_id,),
    ).fetchone()
    if row is None:
        return None, None
    kind, label, text = row
    if label is None and text is not None:
        stix = json.loads(text)
        label = observable_label(stix) if isinstance(stix, dict) else None
    return kind, label


def _relationships(conn: sqlite3.Connection, object_id: str) -> list[tuple[str, str, str, str]]:
    """(relationship_type, direction, other end, partner that sent it) of current relationships
    touching the object."""
    found = []
    for side, other, direction in (
        ("source_ref", "target_ref", "to"),
        ("target_ref", "source_ref", "from"),
    ):
        found += [
            (r[0] or "related-to", direction, r[1], r[2])
            for r in conn.execute(
                "SELECT json_extract(json, '$.relationship_type'), "  # noqa: S608 - only placeholders and fixed names; values are bound
                f"json_extract(json, '$.{other}'), partner FROM objects "
                f"WHERE type = 'relationship' AND json_extract(json, '$.{side}') = ? "
                "AND is_current = 1 AND revoked = 0 LIMIT ?",
                (object_id, _RELATED_LIMIT),
            )
        ]
    return found


def related_objects(conn: sqlite3.Connection, object_id: str) -> list[RelatedObject]:
    """Objects one relationship away, then those one more away (labelled with `via`)."""
    related: list[RelatedObject] = []
    seen = {object_id}
    first_hop = _relationships(conn, object_id)
    for kind, direction, other, partner in first_hop:
        if other in seen:
            continue
        seen.add(other)
        related.append(RelatedObject(kind, direction, other, *_label(conn, other), None, partner))
    for _, _, middle, _ in first_hop:
        for kind, direction, other, partner in _relationships(conn, middle):
            if other in seen or len(related) >= _RELATED_LIMIT:
                continue
            seen.add(other)
            related.append(RelatedObject(kind, direction, other, *_label(conn, other), middle, partner))
    return related


def decisions_of(conn: sqlite3.Connection, object_id: str) -> list[Decision]:
    return [
        Decision(*r)
        for r in conn.execute(
            "SELECT decision, analyst, decided_at, note FROM triage_log WHERE object_id = ? ORDER BY id",
            (object_id,),
        )
    ]


def _sighting(row: tuple[Any, ...]) -> ReceivedSighting:
    sighting_id, partner, received_at, text, value, ioc_type = row
    obj = json.loads(text)
    return ReceivedSighting(
        sighting_id,
        partner,
        received_at,
        obj.get("sighting_of_ref", ""),
        value,
        ioc_type,
        obj.get("count"),
        obj.get("first_seen"),
        obj.get("last_seen"),
        obj.get("description"),
        obj.get("created_by_ref"),
    )


def sightings_of(conn: sqlite3.Connection, object_id: str) -> list[ReceivedSighting]:
    """Sightings in the store whose `sighting_of_ref` is this object."""
    return [
        _sighting(r)
        for r in conn.execute(
            "SELECT s.object_id, s.partner, s.received_at, s.json, NULL, NULL FROM objects s "
            "WHERE s.type = 'sighting' AND json_extract(s.json, '$.sighting_of_ref') = ? "
            "AND s.is_current = 1 ORDER BY s.received_at",
            (object_id,),
        )
    ]


# A sighting counts only from a partner we shared the object with (`shared_with`, filled as
# each envelope is sealed): any other partner that learnt the id (a relay, one sent our
# indicator by another partner) would otherwise put its sighting among those of our partners,
# or forge one.
_SHARED_WITH_SENDER = (
    "EXISTS (SELECT 1 FROM shared_with w WHERE w.object_id = {of_ref} AND w.partner = s.partner)"
)


def sightings_of_shared(
    conn: sqlite3.Connection,
    *,
    partners: tuple[str, ...] = (),
    since: str | None = None,
    tlps: tuple[str, ...] = (),
    max_tlp: str | None = None,
    min_confidence: int | None = None,
    include_revoked: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[ReceivedSighting], int | None]:
    """Sightings received of objects we sent (`shared_objects`) to the partner that sent the
    sighting, newest first, one page. The filters are on the sighting itself: its sender,
    when it arrived, its own TLP marking and confidence, and whether its sender revoked it."""
    from cti_exchange.store.triage_queries import TLP_RANK  # the list's own ranks

    terms = ["s.type = 'sighting'", "s.is_current = 1"]
    params: list[Any] = []
    if partners:
        terms.append(f"s.partner IN ({','.join('?' * len(partners))})")
        params += partners
    if since is not None:
        terms.append("s.received_at >= ?")
        params.append(since)
    if tlps:
        terms.append(f"s.tlp IN ({','.join('?' * len(tlps))})")
        params += tlps
    if max_tlp is not None:
        allowed = [t for t, rank in TLP_RANK.items() if rank <= TLP_RANK[max_tlp]]
        terms.append(f"(s.tlp IS NULL OR s.tlp IN ({','.join('?' * len(allowed))}))")
        params += allowed
    if min_confidence is not None:
        terms.append("s.confidence >= ?")
        params.append(min_confidence)
    if not include_revoked:
        terms.append("s.revoked = 0")
    # The indicator's value as we sent it: any one of the rows for it (sent to several
    # partners, or in several envelopes, it has one row per envelope).
    of_ref = "json_extract(s.json, '$.sighting_of_ref')"
    rows = conn.execute(
        "SELECT s.object_id, s.partner, s.received_at, s.json, "  # noqa: S608 - only placeholders and fixed names; values are bound
        f"(SELECT value FROM shared_objects WHERE object_id = {of_ref}), "
        f"(SELECT ioc_type FROM shared_objects WHERE object_id = {of_ref}) "
        "FROM objects s INDEXED BY objects_sighting_of "
        f"WHERE {' AND '.join(terms)} "
        f"AND {_SHARED_WITH_SENDER.format(of_ref=of_ref)} "
        "ORDER BY s.received_at DESC, s.rowid DESC LIMIT ? OFFSET ?",
        [*params, limit + 1, offset],
    ).fetchall()
    more = len(rows) > limit
    return [_sighting(r) for r in rows[:limit]], (offset + limit if more else None)
