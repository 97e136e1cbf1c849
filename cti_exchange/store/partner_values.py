"""Which indicator values partners sent us, at which TLP, and when: what tells an indicator of
ours that reached us from a partner first (policy/sharing.py `RULE_LEARNED`).

A value is matched in all its spellings (`Evil.Example.` is `evil.example`, as
object_queries.same_form matches them). Every current object holding it counts, whoever created
it; its senders are the partner that delivered its current version first (`objects.partner`)
and every other arrival of any version (`object_sources`). A push may hold 100,000 values: they
are looked up in a few joins through a temporary table, not one query each (docs/BENCHMARKS.md,
stop 25).
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from cti_exchange.stix.tlp import Tlp
from cti_exchange.store.object_queries import SpellingForms, other_spellings


@dataclass(frozen=True)
class PartnerValue:
    """What partners sent us of one value."""

    senders: frozenset[str]  # local partner names
    first_sender: str
    first_received: str  # RFC 3339, when the first of them arrived
    least_strict: Tlp  # of the TLPs the current objects holding it carry (unmarked: AMBER)


def holds_values(conn: sqlite3.Connection) -> bool:
    """Whether the store holds any indicator value (nothing received yet: nothing to look up)."""
    found = conn.execute("SELECT 1 FROM objects WHERE is_current = 1 AND ioc_type IS NOT NULL LIMIT 1")
    return found.fetchone() is not None


def partner_values(
    conn: sqlite3.Connection, forms: SpellingForms, wanted: Mapping[str, Collection[str]]
) -> dict[tuple[str, str], PartnerValue]:
    """(IOC type, canonical form) -> what partners sent of it, for each of `wanted` (canonical
    forms, `forms.of`, by IOC type) that some current object in the store holds. A caller with
    many values asks `holds_values` first: for a store that received none, nothing to read."""
    holders: dict[str, tuple[tuple[str, str], str | None]] = {}  # object_id -> ((type, form), tlp)
    # object_id -> partner -> first arrival: the current version's row says who delivered it
    # first, `object_sources` every other arrival of any version.
    arrivals: dict[str, dict[str, str]] = defaultdict(dict)
    rows = ((ioc_type, form) for ioc_type, found in wanted.items() for form in found)
    with _temporary(conn, "wanted_forms", "ioc_type TEXT, value TEXT", rows) as table:
        for ioc_type, value, object_id, tlp, partner, received_at in conn.execute(
            f"SELECT w.ioc_type, w.value, o.object_id, o.tlp, o.partner, o.received_at "  # noqa: S608 - a fixed name
            f"FROM temp.{table} w JOIN objects o INDEXED BY objects_current_by_value "
            "ON o.is_current = 1 AND o.ioc_type = w.ioc_type AND o.value = w.value"
        ):
            holders[object_id] = ((ioc_type, value), tlp)
            arrivals[object_id][partner] = received_at
    for ioc_type, found in wanted.items():
        for rowid, form in other_spellings(conn, forms, ioc_type, found).items():
            row = conn.execute(
                "SELECT object_id, tlp, partner, received_at FROM objects WHERE rowid = ?", (rowid,)
            ).fetchone()
            holders[row[0]] = ((ioc_type, form), row[1])
            arrivals[row[0]][row[2]] = row[3]
    if not holders:
        return {}
    with _temporary(conn, "holder_ids", "object_id TEXT", ((i,) for i in holders)) as table:
        for object_id, partner, received_at in conn.execute(
            f"SELECT h.object_id, s.partner, min(s.received_at) FROM temp.{table} h "  # noqa: S608 - a fixed name
            "JOIN object_sources s ON s.object_id = h.object_id GROUP BY h.object_id, s.partner"
        ):
            known = arrivals[object_id].get(partner)
            if known is None or received_at < known:
                arrivals[object_id][partner] = received_at
    by_value: dict[tuple[str, str], list[str]] = defaultdict(list)
    for object_id, (key, _) in holders.items():
        by_value[key].append(object_id)
    return {key: _what_was_sent(object_ids, holders, arrivals) for key, object_ids in by_value.items()}


def _what_was_sent(
    object_ids: list[str],
    holders: Mapping[str, tuple[tuple[str, str], str | None]],
    arrivals: Mapping[str, dict[str, str]],
) -> PartnerValue:
    levels: list[Tlp] = []
    first: dict[str, str] = {}  # partner -> first arrival of any of these objects
    for object_id in object_ids:
        tlp = holders[object_id][1]
        try:
            levels.append(Tlp(tlp) if tlp else Tlp.AMBER)
        except ValueError:
            levels.append(Tlp.RED)  # a level this version does not know: the strictest
        for partner, received_at in arrivals.get(object_id, {}).items():
            if partner not in first or received_at < first[partner]:
                first[partner] = received_at
    first_sender = min(first, key=lambda name: (first[name], name)) if first else ""
    return PartnerValue(
        senders=frozenset(first),
        first_sender=first_sender,
        first_received=first.get(first_sender, ""),
        least_strict=min(levels),
    )


@contextmanager
def _temporary(
    conn: sqlite3.Connection, name: str, columns: str, rows: Iterable[tuple[str, ...]]
) -> Iterator[str]:
    """A temporary table `name` holding `rows`, dropped on the way out (it is the connection's
    own: nothing is written to the store)."""
    conn.execute("PRAGMA temp_store = MEMORY")  # never on disk: this connection's own scratch
    conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {name} ({columns})")
    try:
        conn.execute(f"DELETE FROM temp.{name}")  # noqa: S608 - a fixed name
        marks = ", ".join("?" * (columns.count(",") + 1))
        conn.executemany(f"INSERT INTO temp.{name} VALUES ({marks})", rows)  # noqa: S608 - a fixed name
        yield name
    finally:
        conn.execute(f"DROP TABLE IF EXISTS temp.{name}")
