"""Erasing what partners sent us, on request: personal data shared by mistake (a victim's
e-mail address, a person's name in a description), which GDPR (article 17) and India's DPDP
Act (section 12) let a person have erased, or anything a partner asks us to forget.

Erasing objects removes every version of them and what the store keeps of what they said, in
one transaction: their rows, their sources, their triage notes (analysts and the store write
values into them), the relationships and sightings about them, the IDS sids (and their rules'
revs) and MISP attribute records kept for their values, the value wherever an analyst's note on
another object names it whole (replaced by `[erased]`), the signed copy
(`envelopes_in.jws_deflated`) of every envelope that carried any version, and the copy a
resolved quarantine record keeps of such an envelope. The other objects of those envelopes
stay, with their provenance (partner, signer, key, digest), but not the signed bytes that prove
it. An open quarantine record, and what we shared onwards of the value (our own sent log),
stay. The envelope records themselves stay, so the envelope is never taken again (replays are
still refused), and the audit trail stays whole: its records name object ids and counts, never
the values, and the erasure appends one more. Its records do keep analysts' notes as written,
and a hash chain cannot forget one: notes are no place for personal data (docs/TRIAGE.md).

The text-search index is dropped (the next search builds it again): a contentless FTS5 index
cannot forget one row's trigrams without its exact text, and keeps no text to read back. The
connection deletes securely (`PRAGMA secure_delete`, set by the caller outside the
transaction), so the freed pages are overwritten rather than left in the file.

Not erased but reported: objects left whose text names a value (a report's description): not
about it as a relationship is, so the analyst decides, by id. Not reached: copies outside the
store (exports already written, MISP, IDS rules loaded, backups); docs/TRIAGE.md "Erasing on
request" says what to do about each.

It sticks: the erasure leaves tombstones in its transaction (store/erasure_tombstones.py: the
erased object ids, and for each value named a keyed digest of its canonical form, never the
value), so a partner sending the object or the value again (a new version, a re-share, a
sighting of it) does not store it again, until `triage unerase` lifts them.
"""

from __future__ import annotations

import re
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
    quarantined: int  # copies in resolved quarantine records blanked
    mentioned_in: list[str]  # objects left whose text still names a value: the analyst's call


def objects_to_erase(
    conn: sqlite3.Connection,
    named: Iterable[str],
    by_value: Iterable[str],
    forms: SpellingForms,
    *,
    partner: str | None = None,
) -> list[str]:
    """The objects named by id; for one named by value, every current object holding that value
    in any spelling; with `partner`, only those that partner sent; and the relationships and
    sightings that refer to any of them. A partner asking us to forget its object names it by
    id (or gives `partner`): another partner's report of the same value stays."""
    chosen = dict.fromkeys(named)
    valued = list(dict.fromkeys(by_value))
    chosen.update(dict.fromkeys(valued))
    per_type: dict[str, list[str]] = {}
    for ioc_type, value in rows_for_objects(conn, "SELECT ioc_type, value FROM objects", valued):
        if ioc_type is not None and value is not None:
            per_type.setdefault(ioc_type, []).append(value)
    for ioc_type, values in per_type.items():
        for holders in same_form(conn, forms, ioc_type, values).values():
            chosen.update(dict.fromkeys(object_id for object_id, _ in holders))
    # An e-mail address in any case (`Victim@example.org`), as its tombstone withholds it
    # (erasure_tombstones.erasure_form): the canonical form keeps a local part's case.
    if mailboxes := sorted({value.lower() for value in per_type.get("email-addr", [])}):
        chosen.update(
            (row[0], None)
            for row in conn.execute(
                "SELECT object_id FROM objects INDEXED BY objects_current_by_value WHERE is_current = 1 "  # noqa: S608 - placeholders only
                f"AND ioc_type = 'email-addr' AND lower(value) IN ({','.join('?' * len(mailboxes))})",
                mailboxes,
            )
        )
    if partner is not None:
        ids = list(chosen)
        sent = {r[0] for r in rows_for_objects(conn, "SELECT object_id FROM objects", ids, partner=partner)}
        sent |= {
            r[0] for r in rows_for_objects(conn, "SELECT object_id FROM object_sources", ids, partner=partner)
        }
        chosen = {object_id: None for object_id in chosen if object_id in sent}
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


def sources_of(conn: sqlite3.Connection, object_ids: list[str]) -> list[str]:
    """The partners that sent any version of the objects, sorted."""
    partners = {r[0] for r in rows_for_objects(conn, "SELECT DISTINCT partner FROM objects", object_ids)}
    partners |= {
        r[0] for r in rows_for_objects(conn, "SELECT DISTINCT partner FROM object_sources", object_ids)
    }
    return sorted(partners)


def erase_objects(conn: sqlite3.Connection, object_ids: list[str], forms: SpellingForms) -> Erasure:
    """Removes every version of `object_ids` (objects_to_erase's list) and what the store
    keeps of them, inside the caller's write transaction."""
    versions = 0
    values: set[tuple[str, str]] = set()
    partners: set[str] = set()
    envelopes: set[tuple[str, str]] = set()
    for ioc_type, value, partner, envelope_id in rows_for_objects(
        conn, "SELECT ioc_type, value, partner, envelope_id FROM objects", object_ids
    ):
        versions += 1
        partners.add(partner)
        envelopes.add((envelope_id, partner))
        if ioc_type is not None and value is not None:
            values.add((ioc_type, value))
    for partner, envelope_id in rows_for_objects(
        conn, "SELECT partner, envelope_id FROM object_sources", object_ids
    ):
        partners.add(partner)
        envelopes.add((envelope_id, partner))
    for table in ("objects", "object_sources", "triage_log"):
        rows_for_objects(conn, f"DELETE FROM {table}", object_ids)  # noqa: S608 - fixed names
    signed_copies = conn.executemany(
        "UPDATE envelopes_in SET jws_deflated = x'' WHERE envelope_id = ? AND partner = ? "
        "AND length(jws_deflated) > 0",
        sorted(envelopes),
    ).rowcount
    # A held envelope released since keeps its copy in its quarantine record, encrypted to our
    # own key: readable again, so blanked too (the record and its reason stay).
    quarantined = conn.executemany(
        "UPDATE quarantine SET artifact = '' WHERE envelope_id = ? AND partner = ? "
        "AND resolved_at IS NOT NULL AND artifact != ''",
        sorted(envelopes),
    ).rowcount
    written = {(t, v) for t, v in values} | {(t, forms.of(t, v)) for t, v in values}
    # IDS rule keys are "type:value:kind" (exporters/sids.py): the range of each value. Their
    # revs go first: digests of rule texts that held the value.
    key_ranges = [(f"{t}:{v}:", f"{t}:{v};") for t, v in written]
    conn.executemany(
        "DELETE FROM ids_rule_revs WHERE sid IN "
        "(SELECT sid FROM ids_sids WHERE rule_key >= ? AND rule_key < ?)",
        key_ranges,
    )
    conn.executemany("DELETE FROM ids_sids WHERE rule_key >= ? AND rule_key < ?", key_ranges)
    # MISP attribute UUIDs are uuid5(event UUID, "type:value") (exporters/misp_export.py).
    events = [uuid.UUID(row[0]) for row in conn.execute("SELECT event_uuid FROM misp_events")]
    conn.executemany(
        "DELETE FROM misp_attributes WHERE uuid = ?",
        [(str(uuid.uuid5(event, f"{t}:{v}")),) for event in events for t, v in written],
    )
    # Analysts' notes on other objects may name the value ("same sender as ..."): redacted,
    # in any case and only where it stands as a whole (10.0.0.1 is not in "10.0.0.15").
    spelled = _whole_value({v for _, v in written})
    for table, column in (("triage_log", "note"), ("objects", "status_note")):
        changed = []
        for rowid, text in _holding(conn, table, column, written):
            redacted = spelled.sub("[erased]", text)
            if redacted != text:
                changed.append((redacted, rowid))
        conn.executemany(f"UPDATE {table} SET {column} = ? WHERE rowid = ?", changed)  # noqa: S608 - fixed names
    # Objects that name a value in their text (a report's description, a note object) are not
    # about it as a relationship is: said, for the analyst to erase by id if they must go. One
    # scan of the table per spelling (seconds on 1,000,000 objects; erasures are rare).
    mentioned = [
        object_id
        for object_id, text in dict(_holding(conn, "objects", "json", written, key="object_id")).items()
        if spelled.search(text)
    ]
    text_index.drop(conn)
    return Erasure(
        object_ids, versions, sorted(values), sorted(partners), signed_copies, quarantined, mentioned
    )


def rows_for_objects(
    conn: sqlite3.Connection,
    statement: str,
    object_ids: list[str],
    *,
    partner: str | None = None,
    more: str = "",
) -> list[Any]:
    """`statement` WHERE object_id IN each chunk of `object_ids` (and, given, partner = it)
    `more` (fixed SQL: further terms, an ORDER BY), the rows of all chunks."""
    found: list[Any] = []
    for start in range(0, len(object_ids), _CHUNK):
        chunk = object_ids[start : start + _CHUNK]
        where = f"object_id IN ({','.join('?' * len(chunk))})"
        if partner is not None:
            where += " AND partner = ?"
        found += conn.execute(
            f"{statement} WHERE {where} {more}", [*chunk, *([partner] if partner is not None else [])]
        ).fetchall()
    return found


def _whole_value(spellings: set[str]) -> re.Pattern[str]:
    """Any of `spellings`, in any case, not inside a longer name, number or address
    (10.0.0.1 is not in 10.0.0.15, bob@example.org not in alice+bob@example.org, 2001:db8::1
    not in 2001:db8::1:5, evil.example not in www.evil.example); inside a URL or after
    `mailto:` it is (the host of http://victim.example/login is the value), and so is an
    address before its port. A full stop after it ends a sentence."""
    alternatives = []
    for value in sorted(spellings, key=len, reverse=True):
        # An IPv6 address goes on with `:` and hex digits; any other value ends before `:`.
        more = r"(?!:[0-9a-f])" if ":" in value and "/" not in value else ""
        alternatives.append(re.escape(value) + more)
    return re.compile(rf"(?<![\w.\-+%])(?:{'|'.join(alternatives)})(?![\w\-])(?!\.\w)", re.IGNORECASE)


def _holding(
    conn: sqlite3.Connection, table: str, column: str, written: set[tuple[str, str]], *, key: str = "rowid"
) -> list[tuple[Any, str]]:
    """(key, text) of the rows whose `column` may hold one of the values, in one scan of the
    table: in any ASCII case (SQLite's lower() folds ASCII only), and a value with other
    letters as spelt, in lower and in upper case (`Ölaf`, `ölaf`, `ÖLAF`). Python then looks at
    these few whole."""
    folded = sorted({v.lower() for _, v in written})
    exact = sorted({form for _, v in written if not v.isascii() for form in (v, v.lower(), v.upper())})
    terms = [f"instr(lower({column}), ?) > 0" for _ in folded] + [f"instr({column}, ?) > 0" for _ in exact]
    if not terms:  # objects holding no value (a threat actor, an identity): nothing to look for
        return []
    query = f"SELECT {key}, {column} FROM {table} WHERE {' OR '.join(terms)}"  # noqa: S608 - fixed names
    return [(row[0], row[1]) for row in conn.execute(query, [*folded, *exact])]
