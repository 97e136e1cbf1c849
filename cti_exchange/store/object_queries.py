"""One stored object and the objects tied to it by its indicator value: finding it by a
reference (id, id prefix or value), its current row, every arrival of a version with the key
that signed it, the other objects holding the same value (one indicator, several sources), and
an analyst's decision recorded on all of them.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from cti_exchange.store.triage_queries import IOC_TYPES, OBJECT_COLUMNS, StoredObject, placeholders


@dataclass(frozen=True)
class Source:
    """One arrival of an object version: which partner, which envelope, signed by which key."""

    object_id: str
    partner: str
    envelope_id: str
    received_at: str
    signer_kid: str | None
    signer_thumbprint: str | None
    tlp: str | None  # of the object version that arrived


def same_value(conn: sqlite3.Connection, ioc_type: str, value: str) -> list[tuple[str, str]]:
    """(object_id, version) of every current object holding this indicator value."""
    return [
        (r[0], r[1])
        for r in conn.execute(
            "SELECT object_id, version FROM objects INDEXED BY objects_current_by_value "
            "WHERE is_current = 1 AND ioc_type = ? AND value = ? ORDER BY rowid",
            (ioc_type, value),
        )
    ]


def sources_of(conn: sqlite3.Connection, object_id: str, version: str) -> list[Source]:
    """Every arrival of one object version, with the key that signed its envelope."""
    row = conn.execute(
        "SELECT tlp FROM objects WHERE object_id = ? AND version = ?", (object_id, version)
    ).fetchone()
    tlp = row[0] if row else None
    return [
        Source(object_id, partner, envelope, received, kid, thumbprint, tlp)
        for partner, envelope, received, kid, thumbprint in conn.execute(
            "SELECT s.partner, s.envelope_id, s.received_at, e.signer_kid, e.signer_thumbprint "
            "FROM (SELECT partner, envelope_id, received_at FROM objects "
            "      WHERE object_id = ? AND version = ? "
            "      UNION SELECT partner, envelope_id, received_at FROM object_sources "
            "      WHERE object_id = ? AND version = ?) s "
            "LEFT JOIN envelopes_in e ON e.envelope_id = s.envelope_id AND e.partner = s.partner "
            "ORDER BY s.received_at",
            (object_id, version, object_id, version),
        )
    ]


def value_sources(conn: sqlite3.Connection, obj: StoredObject) -> list[Source]:
    """Sources of an object and of every other current object with the same indicator value."""
    holders = (
        same_value(conn, obj.ioc_type, obj.value)
        if obj.ioc_type is not None and obj.value is not None
        else [(obj.object_id, obj.version)]
    )
    return [source for holder in holders for source in sources_of(conn, *holder)]


def current_object(conn: sqlite3.Connection, object_id: str) -> StoredObject | None:
    row = conn.execute(
        f"SELECT {OBJECT_COLUMNS} FROM objects o WHERE o.object_id = ? AND o.is_current = 1",  # noqa: S608 - only placeholders and fixed names; values are bound
        (object_id,),
    ).fetchone()
    return StoredObject(*row) if row else None


def find_objects(conn: sqlite3.Connection, reference: str) -> list[str]:
    """Object ids a reference names: a full id, a unique id prefix, or an indicator value
    (tried as a value too when no id matches: an IDN domain holds "--" as well)."""
    if "--" in reference:
        rows = conn.execute(
            "SELECT DISTINCT object_id FROM objects WHERE object_id >= ? AND object_id < ? "
            "AND is_current = 1 LIMIT 2",
            (reference, reference + "\uffff"),
        ).fetchall()
        exact = [r[0] for r in rows if r[0] == reference]
        if rows:
            return exact or [r[0] for r in rows]
    return objects_with_value(conn, reference)


def objects_with_value(conn: sqlite3.Connection, value: str) -> list[str]:
    """Ids of the current indicators (and CVEs) holding exactly `value`, of any IOC type,
    first stored first."""
    return [
        r[0]
        for r in conn.execute(
            "SELECT object_id FROM objects INDEXED BY objects_current_by_value "  # noqa: S608 - only placeholders and fixed names; values are bound
            f"WHERE is_current = 1 AND ioc_type IN ({placeholders(IOC_TYPES)}) AND value = ? "
            "ORDER BY rowid",
            (*IOC_TYPES, value),
        )
    ]


def record_decision(
    conn: sqlite3.Connection,
    object_ids: list[str],
    *,
    decision: str,
    analyst: str,
    at: str,
    note: str | None,
) -> list[str]:
    """Sets the triage status of the objects and of every current object with the same value,
    inside the caller's transaction; returns every object id changed."""
    changed: dict[str, None] = {}
    for object_id in object_ids:
        obj = current_object(conn, object_id)
        if obj is None:
            continue
        holders = (
            [h[0] for h in same_value(conn, obj.ioc_type, obj.value)]
            if obj.ioc_type is not None and obj.value is not None
            else [object_id]
        )
        for holder in holders:
            changed.setdefault(holder)
    for object_id in changed:
        conn.execute(
            # The same decision again without a note keeps the note that explains it.
            "UPDATE objects SET status = ?, status_by = ?, status_at = ?, "
            "status_note = CASE WHEN ? IS NULL AND status = ? THEN status_note ELSE ? END "
            "WHERE object_id = ? AND is_current = 1",
            (decision, analyst, at, note, decision, note, object_id),
        )
        conn.execute(
            "INSERT INTO triage_log (object_id, decision, analyst, decided_at, note) VALUES (?, ?, ?, ?, ?)",
            (object_id, decision, analyst, at, note),
        )
    return list(changed)
