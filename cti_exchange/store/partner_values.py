"""Which indicator values partners sent us, at which TLP, and when: what tells an indicator of
ours that reached us from a partner first (policy/sharing.py `RULE_LEARNED`).

A value is matched in all its spellings (object_queries.same_form: `Evil.Example.` is
`evil.example`). Every current object holding it counts, whoever created it; its senders are
the partners that delivered any of its versions (`objects.partner` and `object_sources`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cti_exchange.stix.tlp import Tlp
from cti_exchange.store.object_queries import SpellingForms, same_form


@dataclass(frozen=True)
class PartnerValue:
    """What partners sent us of one value."""

    senders: frozenset[str]  # local partner names
    first_sender: str
    first_received: str  # RFC 3339, when the first of them arrived
    least_strict: Tlp  # of the TLPs the current objects holding it carry (unmarked: AMBER)


def partner_values(
    conn: sqlite3.Connection, forms: SpellingForms, wanted: Mapping[str, Iterable[str]]
) -> dict[tuple[str, str], PartnerValue]:
    """(IOC type, canonical form) -> what partners sent of it, for each of `wanted` (values by
    IOC type) that some current object in the store holds."""
    if not holds_values(conn):
        return {}
    found: dict[tuple[str, str], PartnerValue] = {}
    for ioc_type, values in wanted.items():
        for form, holders in same_form(conn, forms, ioc_type, values).items():
            if holders:
                found[(ioc_type, form)] = _what_was_sent(conn, holders)
    return found


def holds_values(conn: sqlite3.Connection) -> bool:
    """Whether the store holds any indicator value (nothing received yet: nothing to look up)."""
    found = conn.execute("SELECT 1 FROM objects WHERE is_current = 1 AND ioc_type IS NOT NULL LIMIT 1")
    return found.fetchone() is not None


def _what_was_sent(conn: sqlite3.Connection, holders: list[tuple[str, str]]) -> PartnerValue:
    levels: list[Tlp] = []
    arrivals: dict[str, str] = {}  # partner -> first arrival
    for object_id, version in holders:
        row = conn.execute(
            "SELECT tlp FROM objects WHERE object_id = ? AND version = ?", (object_id, version)
        ).fetchone()
        try:
            levels.append(Tlp(row[0]) if row is not None and row[0] else Tlp.AMBER)
        except ValueError:
            levels.append(Tlp.RED)  # a level this version does not know: the strictest
        for partner, received_at in conn.execute(
            "SELECT partner, min(received_at) FROM (SELECT partner, received_at FROM objects "
            "WHERE object_id = ? UNION ALL SELECT partner, received_at FROM object_sources "
            "WHERE object_id = ?) GROUP BY partner",
            (object_id, object_id),
        ):
            if partner not in arrivals or received_at < arrivals[partner]:
                arrivals[partner] = received_at
    first_sender = min(arrivals, key=lambda name: (arrivals[name], name)) if arrivals else ""
    return PartnerValue(
        senders=frozenset(arrivals),
        first_sender=first_sender,
        first_received=arrivals.get(first_sender, ""),
        least_strict=min(levels),
    )
