"""Erasing what partners sent us, on request: personal data shared by mistake (a victim's
e-mail address, a person's name in a description), which GDPR (article 17) and India's DPDP
Act (section 12) let a person have erased, or anything a partner asks us to forget.

Erasing objects removes every version of them and every trace of what they said from the
store, in one transaction: their rows, their sources, their triage notes (analysts and the
store write values into them), the relationships and sightings about them, the IDS sids and
MISP attribute records kept for their values, the value wherever an analyst's note on another
object names it (replaced by `[erased]`), and the signed copy (`envelopes_in.jws_deflated`)
of every envelope that carried any version. The other objects of those envelopes stay, with
their provenance (partner, signer, key, digest), but not the signed bytes that prove it. The
envelope records themselves stay, so the envelope is never taken again (replays are still
refused), and the audit trail stays whole: its records name object ids and counts, never the
values, and the erasure appends one more. Its records do keep analysts' notes as written, and
a hash chain cannot forget one: notes are no place for personal data (docs/TRIAGE.md).

The text-search index is dropped (the next search builds it again): a contentless FTS5 index
cannot forget one row's trigrams without its exact text, and keeps no text to read back. The
connection deletes securely (`PRAGMA secure_delete`, set by the caller outside the
transaction), so the freed pages are overwritten rather than left in the file.

Not erased but reported: objects left whose text names a value (a report's description): not
about it as a relationship is, so the analyst decides, by id. Not reached: copies outside the
store (exports already written, MISP, IDS rules loaded, backups), and a partner sending the
object again, which stores it again; docs/TRIAGE.md "Erasing on request" says what to do about
each.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cti_exchange.store import text_index
from cti_exchange.store.object_queries import SpellingForms, same_form

_CHUNK = 500  # ids per IN list


@dataclass(frozen=True)
class Erasure:
    object_ids: list[str]  # every object erased: those named, same-value ones, and those about them
    versions: int  # rows removed (every version of each)
    values: list[tuple[str, str]]  # (IOC type, value) of every version removed, as stored
    partners: list[str]  # who had sent them
    envelopes: int  # signed envelope copies erased (not erased before)
    mentioned_in: list[str]  # objects left whose text still names a value: the analyst's call


def objects_to_erase(conn: sqlite3.Connection, object_ids: Iterable[str], forms: SpellingForms) -> list[str]:
    """The objects named, every current object holding the same indicator value in any
    spelling, and the relationships and sightings that refer to any of them."""
    chosen = dict.fromkeys(object_ids)
    per_type: dict[str, list[str]] = {}
    for ioc_type, value in _rows(conn, "SELECT ioc_type, value FROM objects", list(chosen)):
        if ioc_type is not None and value is not None:
            per_type.setdefault(ioc_type, []).append(value)
    for ioc_type, values in per_type.items():
        for holders in same_form(conn, forms, ioc_type, values).values():
            chosen.update(dict.fromkeys(object_id for object_id, _ in holders))
    about = (
        ("relationship", "json_extract(json, '$.source_ref')"),
        ("relationship", "json_extract(json, '$.target_ref')"),
        ("sighting", "json_extract(json, '$.sighting_of_ref')"),
    )
    targets = list(chosen)
    for start in range(0, len(targets), _CHUNK):
        chunk = targets[start : start + _CHUNK]
        for object_type, reference in about:  # the expressions of the indexes (migration 2)
            query = (
                f"SELECT object_id FROM objects WHERE type = '{object_type}' "  # noqa: S608 - fixed names
                f"AND {reference} IN ({','.join('?' * len(chunk))})"
            )
            chosen.update(dict.fromkeys(row[0] for row in conn.execute(query, chunk)))
    return list(chosen)


def erase_objects(conn: sqlite3.Connection, object_ids: list[str], forms: SpellingForms) -> Erasure:
    """Removes every version of `object_ids` (objects_to_erase's list) and what the store
    keeps of them, inside the caller's write transaction."""
    versions = 0
    values: set[tuple[str, str]] = set()
    partners: set[str] = set()
    envelopes: set[tuple[str, str]] = set()
    for ioc_type, value, partner, envelope_id in _rows(
        conn, "SELECT ioc_type, value, partner, envelope_id FROM objects", object_ids
    ):
        versions += 1
        partners.add(partner)
        envelopes.add((envelope_id, partner))
        if ioc_type is not None and value is not None:
            values.add((ioc_type, value))
    for partner, envelope_id in _rows(conn, "SELECT partner, envelope_id FROM object_sources", object_ids):
        partners.add(partner)
        envelopes.add((envelope_id, partner))
    for table in ("objects", "object_sources", "triage_log"):
        _rows(conn, f"DELETE FROM {table}", object_ids)  # noqa: S608 - fixed names
    signed_copies = conn.executemany(
        "UPDATE envelopes_in SET jws_deflated = x'' WHERE envelope_id = ? AND partner = ? "
        "AND length(jws_deflated) > 0",
        sorted(envelopes),
    ).rowcount
    written = {(t, v) for t, v in values} | {(t, forms.of(t, v)) for t, v in values}
    # IDS rule keys are "type:value:kind" (exporters/sids.py): the range of each value.
    conn.executemany(
        "DELETE FROM ids_sids WHERE rule_key >= ? AND rule_key < ?",
        [(f"{t}:{v}:", f"{t}:{v};") for t, v in written],
    )
    # MISP attribute UUIDs are uuid5(event UUID, "type:value") (exporters/misp_export.py).
    events = [uuid.UUID(row[0]) for row in conn.execute("SELECT event_uuid FROM misp_events")]
    conn.executemany(
        "DELETE FROM misp_attributes WHERE uuid = ?",
        [(str(uuid.uuid5(event, f"{t}:{v}")),) for event in events for t, v in written],
    )
    # Analysts' notes on other objects may name the value ("same sender as ..."): redacted.
    for _, spelling in sorted(written):
        for table, column in (("triage_log", "note"), ("objects", "status_note")):
            conn.execute(
                f"UPDATE {table} SET {column} = replace({column}, ?1, '[erased]') "  # noqa: S608 - fixed names
                f"WHERE instr({column}, ?1) > 0",
                (spelling,),
            )
    # Objects that name a value in their text (a report's description, a note object) are not
    # about it as a relationship is: said, for the analyst to erase by id if they must go. One
    # scan of the table per spelling (seconds on 1,000,000 objects; erasures are rare).
    mentioned: dict[str, None] = {}
    for _, spelling in sorted(written):
        mentioned.update(
            dict.fromkeys(
                r[0]
                for r in conn.execute("SELECT object_id FROM objects WHERE instr(json, ?) > 0", (spelling,))
            )
        )
    text_index.drop(conn)
    return Erasure(object_ids, versions, sorted(values), sorted(partners), signed_copies, list(mentioned))


def _rows(conn: sqlite3.Connection, statement: str, object_ids: list[str]) -> list[Any]:
    """`statement` WHERE object_id IN each chunk of `object_ids`, the rows of all chunks."""
    found: list[Any] = []
    for start in range(0, len(object_ids), _CHUNK):
        chunk = object_ids[start : start + _CHUNK]
        found += conn.execute(
            f"{statement} WHERE object_id IN ({','.join('?' * len(chunk))})", chunk
        ).fetchall()
    return found
