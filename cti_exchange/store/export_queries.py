"""Reading indicators for an export: each matching value once, in (type, value) order.

The same value from several partners is several objects; SQLite sorts the matching rows by
(type, value) and the duplicates come out adjacent, so they merge into one `ExportGroup` with
the strictest TLP, the highest confidence, the latest expiry (none, if one of them has none)
and every partner. Memory holds one group at a time, whatever the size of the store (SQLite's
sorter spills to temporary files past its cache).

The same value stored in other spellings (`evil.example`, `Evil.Example.`) is merged by the
export (export.py), by canonical form, which SQLite cannot compute. What it can tell with GLOB
alone is that a value is certainly in canonical form (`plain_spelling_sql`); with
`spelling_blocks`, each type's values come in two blocks, those it cannot vouch for (the few
other spellings, and every IPv6 address) first, so the export holds only that first block in
memory and meets every spelling of a value before or with its canonical one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from cti_exchange.store.triage_queries import (
    DECIDED_AGAINST,
    TLP_RANK,
    TriageFilter,
    filter_sql,
    placeholders,
)


@dataclass(slots=True)
class ExportGroup:
    """One indicator value to export, merged over every matching object that holds it."""

    ioc_type: str
    value: str
    tlp: str | None  # the strictest among its objects
    confidence: int | None  # the highest
    valid_until: str | None  # the latest
    partners: list[str]
    object_id: str  # the first-stored object (its JSON for a STIX export)
    received_at: str
    json: str | None
    plain: bool = True  # certainly in canonical form (plain_spelling_sql); only with spelling_blocks
    spellings: int = 1  # stored spellings merged into this value (export.py)
    latest: str = ""  # the latest received_at of its objects: when what they say last changed
    trimmed: bool = False  # a URL written without its fragment or user:password@ (export.py)


# Per IOC type, a test (SQL, {v} the value) true only for values that ValueForms.of leaves as
# they are, or that the export refuses as invalid anyway (whitespace, control characters,
# malformed): lower-case ASCII names without a trailing dot, lower-case hashes, an IPv4
# address without a range, an http(s) URL whose host is a lower-case ASCII name or address
# with no port or user and that has a path... A type without a test is never vouched for.
# The test may say "not sure" of a canonical value (it is then merely held in memory until its
# type ends); it must never vouch for another spelling of a valid value (a property test in
# tests/triage/test_spellings_decided_together.py holds it to that). Built from functions that
# cost one pass over the value in C (lower, instr, length): GLOB character classes cost 2 s
# over 1,000,000 values.
_ASCII = "length({v}) = length(CAST({v} AS BLOB))"
_LOWER = "{v} = lower({v})"
_NO_TRAILING_DOT = "substr({v}, -1) <> '.'"


# An http(s) URL all in lower-case ASCII, with no user, port or IPv6 host, no dot ending its
# host, no fragment (blocklists write URLs without it, export.py), and something after the
# host: its canonical form is itself. (A test on the host alone costs its substr() calls: 0.6 s
# over 170,000 URLs.)
_URL = (
    f"{_ASCII} AND {_LOWER} AND ({{v}} GLOB 'http://?*' OR {{v}} GLOB 'https://?*') "
    "AND instr(substr({v}, 7), ':') = 0 "
    + " ".join(f"AND instr({{v}}, '{c}') = 0" for c in ("@", "[", "\\", "./", ".?", "#"))
    + f" AND {_NO_TRAILING_DOT} AND (instr(substr({{v}}, 9), '/') OR instr(substr({{v}}, 9), '?'))"
)


_PLAIN = {
    **dict.fromkeys(("md5", "sha1", "sha256", "sha512"), _LOWER),
    **dict.fromkeys(("x509-md5", "x509-sha1", "x509-sha256"), f"{_LOWER} AND instr({{v}}, ':') = 0"),
    "ipv4-addr": "instr({v}, '/') = 0",
    "domain-name": f"{_LOWER} AND {_NO_TRAILING_DOT} AND {_ASCII}",
    "url": _URL,
    "email-addr": f"{_ASCII} AND {_NO_TRAILING_DOT} AND "
    "substr({v}, instr({v}, '@') + 1) = lower(substr({v}, instr({v}, '@') + 1))",
    # Written as stored (ValueCheck.canonical leaves them as they are).
    "file-name": "1",
    "cve": "1",
}


def plain_spelling_sql(ioc_type: str, value: str) -> str:
    """The SQL test of `_PLAIN` for one type, on the column or placeholder `value`."""
    return "(" + _PLAIN.get(ioc_type, "0").replace("{v}", value) + ")"


def _plain_spelling_case(value: str) -> str:
    """`plain_spelling_sql` for every type, as one CASE on the row's type."""
    whens = " ".join(f"WHEN '{t}' THEN {plain_spelling_sql(t, value)}" for t in _PLAIN)
    return f"CASE o.ioc_type {whens} ELSE 0 END"


def _export_source(f: TriageFilter) -> str:
    """Which rows an export reads: an index range when a filter names one, else the table in
    storage order. Never the value index in value order: that reads rows in random order, three
    times slower than reading them all in order and sorting (9 s against 4 s for 1,000,000)."""
    if f.since is not None:
        return "INDEXED BY objects_current_by_received"
    if len(f.partners) == 1:
        return "INDEXED BY objects_current_by_partner"
    return "NOT INDEXED"


def iter_export_groups(
    conn: sqlite3.Connection,
    f: TriageFilter,
    *,
    with_json: bool = False,
    spelling_blocks: bool = False,
    withdrawn: bool = False,
) -> Iterator[ExportGroup]:
    """Matching indicator values in (type, value) order, each once; with `spelling_blocks`,
    in (type, plain, value) order (see the module docstring). With `withdrawn`, the values
    the selection `f` no longer holds because they are decided against or revoked instead
    (`withdrawn_sql`)."""
    where, params = withdrawn_sql(f) if withdrawn else filter_sql(f)
    json_column = "o.json" if with_json else "NULL"
    plain = _plain_spelling_case("o.value") if spelling_blocks else "1"
    order = f"o.ioc_type, {plain}, o.value" if spelling_blocks else "o.ioc_type, o.value"
    cursor = conn.execute(
        "SELECT o.ioc_type, o.value, o.tlp, o.confidence, o.valid_until, o.partner, "  # noqa: S608 - only placeholders and fixed names; values are bound
        f"o.object_id, o.received_at, {json_column}, {plain} FROM objects o {_export_source(f)} "
        f"WHERE {where} AND o.ioc_type IS NOT NULL AND o.value IS NOT NULL "
        f"ORDER BY {order}, o.rowid",
        params,
    )
    group: ExportGroup | None = None
    rank = TLP_RANK.get
    while rows := cursor.fetchmany(5000):
        for (
            ioc_type,
            value,
            tlp,
            confidence,
            valid_until,
            partner,
            object_id,
            received,
            text,
            vouched,
        ) in rows:
            if group is not None and group.value == value and group.ioc_type == ioc_type:
                if tlp is not None and (group.tlp is None or rank(tlp, 0) > rank(group.tlp, 0)):
                    group.tlp = tlp
                if confidence is not None and (group.confidence or -1) < confidence:
                    group.confidence = confidence
                # None (no valid_until: valid until revoked) is the latest of all.
                if group.valid_until is not None and (valid_until is None or valid_until > group.valid_until):
                    group.valid_until = valid_until
                if partner not in group.partners:
                    group.partners.append(partner)
                if received > group.latest:
                    group.latest = received
                continue
            if group is not None:
                yield group
            group = ExportGroup(
                ioc_type,
                value,
                tlp,
                confidence,
                valid_until,
                [partner],
                object_id,
                received,
                text,
                bool(vouched),
                latest=received,
            )
    if group is not None:
        yield group


def withdrawn_sql(f: TriageFilter) -> tuple[str, list[Any]]:
    """The WHERE terms for the rows an export with filter `f` would read but for their status,
    revocation or expiry: the same choices (types, partners, TLP, confidence, time, text),
    current, and marked false-positive or rejected (those `f` does not select) or, while of a
    selected status, revoked by their source (unless `f` includes revoked objects) or expired
    (when `f` selects valid ones only, the default). A scan of the table when no filter names
    an index: MISP exports only (a few tenths of a second over 1,000,000 rows)."""
    where, params = filter_sql(replace(f, statuses=(), include_revoked=True, expired=None))
    against = tuple(s for s in DECIDED_AGAINST if s not in f.statuses)
    terms = []
    if against:
        terms.append(f"o.status IN ({placeholders(against)})")
        params += against
    gone = []
    if not f.include_revoked:
        gone.append("o.revoked = 1")
    if f.expired is False:
        gone.append("(o.valid_until IS NOT NULL AND o.valid_until < ?)")
        params.append(f.now)
    if gone:
        terms.append(f"({' OR '.join(gone)})")
        if f.statuses:
            terms[-1] = f"({terms[-1]} AND o.status IN ({placeholders(f.statuses)}))"
            params += f.statuses
    return f"{where} AND ({' OR '.join(terms) or '0'})", params


def holds_tlp(conn: sqlite3.Connection, f: TriageFilter, tlp: str) -> bool:
    """Whether an export with filter `f` reads a value marked `tlp` (read on the refusal
    path only: without a filter that names an index, a scan)."""
    where, params = filter_sql(f)
    row = conn.execute(
        f"SELECT 1 FROM objects o WHERE {where} AND o.ioc_type IS NOT NULL "  # noqa: S608 - only placeholders and fixed names; values are bound
        "AND o.value IS NOT NULL AND o.tlp = ? LIMIT 1",
        [*params, tlp],
    ).fetchone()
    return row is not None


def in_selection(conn: sqlite3.Connection, f: TriageFilter, ioc_type: str, value: str) -> bool:
    """Whether an export with filter `f` reads this exact value (an index seek on the value)."""
    where, params = filter_sql(f)
    row = conn.execute(
        f"SELECT 1 FROM objects o WHERE {where} AND o.ioc_type = ? AND o.value = ? LIMIT 1",  # noqa: S608 - only placeholders and fixed names; values are bound
        [*params, ioc_type, value],
    ).fetchone()
    return row is not None


# What MISP holds of each attribute we exported (exporters/misp_export.py): a digest of what the
# attribute says (all but its timestamp) and the timestamp written with it, so that the next
# export of the same content writes the same timestamp (MISP skips it) and a change a later one
# (MISP takes it). One row per MISP event: when this store first exported it, the floor for an
# attribute it has no row for (earlier releases wrote the export's moment on every attribute).
# Migration 15; docs/TRIAGE.md "MISP events exported again".


class MispStamps:
    """Attribute timestamps for one MISP event, kept in the store (misp_events, misp_attributes)."""

    def __init__(self, conn: sqlite3.Connection, event_uuid: str, now: int) -> None:
        self.conn = conn
        row = conn.execute(
            "SELECT first_exported FROM misp_events WHERE event_uuid = ?", (event_uuid,)
        ).fetchone()
        if row is None:
            conn.execute(
                "INSERT INTO misp_events (event_uuid, first_exported) VALUES (?, ?)", (event_uuid, now)
            )
        self.first: int = now if row is None else row[0]

    def written(self, attribute_uuid: str) -> bool:
        """Whether MISP may hold this attribute of the event: an export by this store wrote it
        (as kept here). Of an event exported before these records were kept (by an earlier
        release) nothing is known: its values are not withdrawn, since writing one never
        exported, even as deleted, would put a value decided against into MISP."""
        found = self.conn.execute("SELECT 1 FROM misp_attributes WHERE uuid = ?", (attribute_uuid,))
        return found.fetchone() is not None

    def stamps(self, attributes: list[tuple[str, bytes, Callable[[], int]]]) -> list[int]:
        """The timestamps of attributes (UUID, digest of what it says, the latest time its
        objects were received): the one written last while an attribute says the same; else
        the later of that time and a second after the one written last (MISP takes an
        attribute only when its timestamp is later), or, never written, the event's first
        export with records. One query per batch of up to 500."""
        found: dict[str, tuple[bytes, int]] = {}
        for start in range(0, len(attributes), 500):
            chunk = [attribute_uuid for attribute_uuid, _, _ in attributes[start : start + 500]]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT uuid, digest, timestamp FROM misp_attributes WHERE uuid IN ({marks})"  # noqa: S608 - placeholders only
            found.update((row[0], (row[1], row[2])) for row in self.conn.execute(query, chunk))
        result, changed = [], []
        for attribute_uuid, digest, changed_at in attributes:
            row = found.get(attribute_uuid)
            if row is not None and row[0] == digest:
                result.append(int(row[1]))
                continue
            stamp = max(changed_at(), self.first if row is None else row[1] + 1)
            changed.append((attribute_uuid, digest, stamp))
            result.append(stamp)
        self.conn.executemany(
            "INSERT OR REPLACE INTO misp_attributes (uuid, digest, timestamp) VALUES (?, ?, ?)", changed
        )
        return result
