"""One stored object and the objects tied to it by its indicator value: finding it by a
reference (id, id prefix or value), its current row, every arrival of a version with the key
that signed it, the other objects holding the same value (one indicator, several sources), and
an analyst's decision recorded on all of them.

A value is one value in all its spellings (`evil.example`, `Evil.Example.`, partners store
what they wrote): decisions and `triage show` find the other spellings by canonical form
(exporters/value_forms.py), which the store does not keep (storing must stay fast, issue 7).
They read the value index's range of the value's type instead, where SQLite leaves out every
value it can tell is canonical already (export_queries.plain_spelling_sql), so Python looks at
the few others: about 0.1 s for a type of 170,000 values (docs/TRIAGE.md).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Protocol

from cti_exchange.store.export_queries import plain_spelling_sql
from cti_exchange.store.triage_queries import IOC_TYPES, OBJECT_COLUMNS, StoredObject, placeholders


class SpellingForms(Protocol):
    """The canonical form of values (exporters/value_forms.ValueForms)."""

    def of(self, ioc_type: str, value: str) -> str: ...


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


def same_form(
    conn: sqlite3.Connection, forms: SpellingForms, ioc_type: str, values: Iterable[str]
) -> dict[str, list[tuple[str, str]]]:
    """Canonical form of each of `values` -> (object_id, version) of every current object of
    `ioc_type` holding a spelling of it, first stored first: the form itself and each value as
    given through the value index, the type's other spellings through one scan of its range
    that hands Python only the values SQLite cannot vouch for."""
    wanted: dict[str, set[str]] = {}
    for value in values:
        wanted.setdefault(forms.of(ioc_type, value), set()).update((value, forms.of(ioc_type, value)))
    found: dict[str, dict[int, tuple[str, str]]] = {form: {} for form in wanted}
    for form, spellings in wanted.items():
        for spelling in spellings:
            for rowid, object_id, version in conn.execute(
                "SELECT rowid, object_id, version FROM objects INDEXED BY objects_current_by_value "
                "WHERE is_current = 1 AND ioc_type = ? AND value = ?",
                (ioc_type, spelling),
            ):
                found[form][rowid] = (object_id, version)
    others = other_spellings(conn, forms, ioc_type, found.keys())
    for rowid, form in others.items():
        row = conn.execute("SELECT object_id, version FROM objects WHERE rowid = ?", (rowid,)).fetchone()
        found[form][rowid] = (row[0], row[1])
    return {form: [holders[r] for r in sorted(holders)] for form, holders in found.items()}


def other_spellings(
    conn: sqlite3.Connection, forms: SpellingForms, ioc_type: str, wanted: Collection[str]
) -> dict[int, str]:
    """rowid -> canonical form, for the current objects of `ioc_type` whose value is a spelling
    of one of the forms `wanted` that SQLite cannot tell is canonical already (one scan of the
    type's range of the value index; Python sees only those values)."""
    others: dict[int, str] = {}
    for rowid, value in conn.execute(
        "SELECT rowid, value FROM objects INDEXED BY objects_current_by_value "  # noqa: S608 - only placeholders and fixed names; values are bound
        "WHERE is_current = 1 AND ioc_type = ? AND value IS NOT NULL "
        f"AND NOT {plain_spelling_sql(ioc_type, 'value')}",
        (ioc_type,),
    ):
        form = forms.of(ioc_type, value)
        if form in wanted:
            others[rowid] = form
    return others


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
            "AND is_current = 1 LIMIT 4",
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


class AlreadyDecided(Exception):
    """`record_decision(..., only_undecided=True)` met an object decided since it was shown."""

    def __init__(
        self, object_id: str, value: str | None, status: str, by: str | None, at: str | None
    ) -> None:
        super().__init__(f"{object_id} is {status}")
        self.object_id, self.value, self.status, self.by, self.at = object_id, value, status, by, at


@dataclass(frozen=True)
class KeptDecision:
    """An object that already held the decision asked for (and the note, if one was given):
    left as it was, so who decided it and when stay on record."""

    object_id: str
    by: str | None
    at: str | None


def record_decision(
    conn: sqlite3.Connection,
    object_ids: list[str],
    *,
    decision: str,
    analyst: str,
    at: str,
    note: str | None,
    forms: SpellingForms | None = None,
    only_undecided: bool = False,
) -> tuple[list[str], list[KeptDecision]]:
    """Sets the triage status of the objects and of every current object with the same value
    (with `forms`, in any spelling of it), inside the caller's transaction; returns every
    object id changed, and the objects that already held this decision (with no note given, or
    the same note): those are left alone, with no second `triage_log` record. With
    `only_undecided` (a review, which showed them as new), raises AlreadyDecided, changing
    nothing, if any of them has a decision already: another analyst's since, or one on another
    spelling of the value."""
    decided = [obj for object_id in object_ids if (obj := current_object(conn, object_id)) is not None]
    by_form: dict[tuple[str, str], list[tuple[str, str]]] = {}
    if forms is not None:
        per_type: dict[str, list[str]] = {}
        for obj in decided:
            if obj.ioc_type is not None and obj.value is not None:
                per_type.setdefault(obj.ioc_type, []).append(obj.value)
        for ioc_type, values in per_type.items():
            for form, found in same_form(conn, forms, ioc_type, values).items():
                by_form[(ioc_type, form)] = found
    changed: dict[str, None] = {}
    for obj in decided:
        if obj.ioc_type is None or obj.value is None:
            holders = [obj.object_id]
        elif forms is not None:
            holders = [h[0] for h in by_form[(obj.ioc_type, forms.of(obj.ioc_type, obj.value))]]
        else:
            holders = [h[0] for h in same_value(conn, obj.ioc_type, obj.value)]
        for holder in holders:
            changed.setdefault(holder)
    # What each holds now, read once: (value, status, note, by, at)
    held = {
        object_id: conn.execute(
            "SELECT value, status, status_note, status_by, status_at FROM objects "
            "WHERE object_id = ? AND is_current = 1",
            (object_id,),
        ).fetchone()
        for object_id in changed
    }
    if only_undecided:
        for object_id, row in held.items():
            if row is not None and row[1] != "new":
                raise AlreadyDecided(object_id, row[0], row[1], row[3], row[4])
    updated: list[str] = []
    kept: list[KeptDecision] = []
    for object_id, row in held.items():
        if row is not None and row[1] == decision and note in (None, row[2]):
            kept.append(KeptDecision(object_id, row[3], row[4]))
            continue
        conn.execute(
            # Another decision, or the same one with another note (which then says who wrote it).
            "UPDATE objects SET status = ?, status_by = ?, status_at = ?, status_note = ? "
            "WHERE object_id = ? AND is_current = 1",
            (decision, analyst, at, note, object_id),
        )
        conn.execute(
            "INSERT INTO triage_log (object_id, decision, analyst, decided_at, note) VALUES (?, ?, ?, ?, ?)",
            (object_id, decision, analyst, at, note),
        )
        updated.append(object_id)
    return updated, kept
