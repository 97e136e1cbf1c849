"""Triage queries over the local store: filters to SQL, sorting, paging.

Only current versions (`is_current = 1`) are listed, so every query can drive one of the
partial indexes, and the first page comes from an index range scan that stops after `limit`
rows, however many objects the store holds. Which index drives a query is chosen here
(`INDEXED BY`), not left to the planner, which has no statistics on a fresh store and may
otherwise pick an index that matches a filter but forces a sort of every match.

De-duplication: the same indicator value from several partners is several objects (each
agency mints its own id). A list shows one line per value among the matching rows (the first
one stored), and the sources of every object holding that value (export_queries.py writes
each value once).

Paging: received order (the default) pages by keyset, `(received_at, rowid)` of the last row,
so a page costs the same at any depth and a pull in between neither skips nor repeats the lines
whose objects it leaves alone (a value's line moves when the pull revokes or updates the holder
it was listed at: docs/TRIAGE.md, "Sorting and paging"); other orders page by offset.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from cti_exchange.store import text_index

# The `ioc_type` values store/projection.py writes.
IOC_TYPES = (
    "ipv4-addr",
    "ipv6-addr",
    "domain-name",
    "ipv4-port",
    "ipv6-port",
    "domain-port",
    "url",
    "email-addr",
    "file-name",
    "mutex",
    "windows-registry-key",
    "autonomous-system",
    "email-subject",
    "ssdeep",
    "x509-md5",
    "x509-sha1",
    "x509-sha256",
    "mac-addr",
    "md5",
    "sha1",
    "sha256",
    "sha512",
    "cve",
)
# Plumbing, not intelligence to triage: listed only when asked for by type.
NOT_TRIAGED = (
    "identity",
    "marking-definition",
    "relationship",
    "sighting",
    "extension-definition",
    "language-content",
)
ORDERED_SCAN_BUDGET = 0.02  # seconds
STATUSES = ("new", "accepted", "rejected", "false-positive")
# Decisions against a value: exports leave it out in every spelling, `sight` warns about it.
DECIDED_AGAINST = ("false-positive", "rejected")
TLP_RANK = {"clear": 0, "green": 1, "amber": 2, "amber+strict": 3, "red": 4}
# Sort key -> (SQL expression, default descending). NULLS LAST keeps blanks out of the top.
SORTS = {
    "received": ("o.received_at", True),
    "confidence": ("o.confidence", True),
    "value": ("COALESCE(o.value, o.name)", False),
    "valid-until": ("o.valid_until", False),
    "partner": ("o.partner", False),
    "status": ("o.status", False),
}
OBJECT_COLUMNS = (
    "o.rowid, o.object_id, o.version, o.type, o.ioc_type, o.value, o.name, o.tlp, o.confidence, "
    "o.valid_from, o.valid_until, o.revoked, o.created_by_ref, o.envelope_id, o.partner, "
    "o.received_at, o.status, o.status_by, o.status_at, o.status_note"
)


@dataclass(frozen=True)
class TriageFilter:
    """What to list or export. Empty tuples and None mean "any"."""

    partners: tuple[str, ...] = ()
    types: tuple[str, ...] = ()  # IOC types (IOC_TYPES) or STIX object types
    tlps: tuple[str, ...] = ()  # Tlp values: "amber", "amber+strict", ...
    max_tlp: str | None = None  # unmarked objects pass
    min_confidence: int | None = None
    since: str | None = None  # received at or after (STIX timestamp)
    statuses: tuple[str, ...] = ()
    text: str | None = None  # case-insensitive substring of the value or the name
    expired: bool | None = None  # True: only expired (valid_until < now); False: only valid
    include_revoked: bool = False
    now: str = ""  # STIX timestamp that `expired` compares with
    # And of this IOC type (`types` may name STIX types): one file of an export into a directory.
    ioc_type: str | None = None


@dataclass(frozen=True)
class StoredObject:
    """One current object as the triage list shows it."""

    rowid: int
    object_id: str
    version: str
    type: str
    ioc_type: str | None
    value: str | None
    name: str | None
    tlp: str | None
    confidence: int | None
    valid_from: str | None
    valid_until: str | None
    revoked: int
    created_by_ref: str | None
    envelope_id: str
    partner: str
    received_at: str
    status: str
    status_by: str | None
    status_at: str | None
    status_note: str | None


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def placeholders(values: tuple[Any, ...]) -> str:
    return ",".join("?" * len(values))


def filter_sql(f: TriageFilter, alias: str = "o", *, seek_partners: bool = True) -> tuple[str, list[Any]]:
    """The WHERE terms (joined by AND) for `f` on table alias `alias`, and their parameters.
    `seek_partners=False` leaves out a term that only serves an index seek (in a correlated
    subquery, SQLite would read `object_sources` for it at each outer row)."""
    a = alias
    terms = [f"{a}.is_current = 1"]
    params: list[Any] = []
    ioc = tuple(t for t in f.types if t in IOC_TYPES)
    stix = tuple(t for t in f.types if t not in IOC_TYPES)
    if ioc and stix:
        terms.append(f"({a}.ioc_type IN ({placeholders(ioc)}) OR {a}.type IN ({placeholders(stix)}))")
        params += [*ioc, *stix]
    elif ioc:
        terms.append(f"{a}.ioc_type IN ({placeholders(ioc)})")
        params += ioc
    elif stix:
        terms.append(f"{a}.type IN ({placeholders(stix)})")
        params += stix
    else:
        terms.append(f"{a}.type NOT IN ({placeholders(NOT_TRIAGED)})")
        params += NOT_TRIAGED
    if f.ioc_type is not None:
        terms.append(f"{a}.ioc_type = ?")
        params.append(f.ioc_type)
    if f.partners:
        # Sent by: the first sender (the row) or a partner that sent the same version again
        # (`object_sources`, one primary-key seek), as the line's `partners` name them. The
        # second term, implied by the first, lets a partner index seek: the partners named,
        # and the first senders of what they sent again (read from `object_sources` once;
        # CROSS JOIN keeps it the outer loop, which the planner has no statistics to choose).
        named = placeholders(f.partners)
        terms.append(
            f"({a}.partner IN ({named}) OR EXISTS (SELECT 1 FROM object_sources {a}_src "  # noqa: S608 - placeholders and fixed names only
            f"WHERE {a}_src.object_id = {a}.object_id AND {a}_src.version = {a}.version "
            f"AND {a}_src.partner IN ({named})))"
        )
        params += [*f.partners, *f.partners]
        if seek_partners:
            terms.append(
                f"{a}.partner IN (SELECT {a}_first.partner FROM object_sources {a}_again "  # noqa: S608 - placeholders and fixed names only
                f"CROSS JOIN objects {a}_first ON {a}_first.object_id = {a}_again.object_id "
                f"AND {a}_first.version = {a}_again.version WHERE {a}_again.partner IN ({named}) "
                f"AND {a}_first.is_current = 1{' UNION SELECT ?' * len(f.partners)})"
            )
            params += [*f.partners, *f.partners]
    for column, values in (
        (f"{a}.status", f.statuses),
        (f"{a}.tlp", f.tlps),
    ):
        if values:
            terms.append(f"{column} IN ({placeholders(values)})")
            params += values
    if f.max_tlp is not None:
        allowed = tuple(t for t, rank in TLP_RANK.items() if rank <= TLP_RANK[f.max_tlp])
        terms.append(f"({a}.tlp IS NULL OR {a}.tlp IN ({placeholders(allowed)}))")
        params += allowed
    if f.min_confidence is not None:
        terms.append(f"{a}.confidence >= ?")
        params.append(f.min_confidence)
    if f.since is not None:
        terms.append(f"{a}.received_at >= ?")
        params.append(f.since)
    if f.text:
        terms.append(f"({a}.value LIKE ? ESCAPE '\\' OR {a}.name LIKE ? ESCAPE '\\')")
        params += [_like_pattern(f.text)] * 2
    if f.expired is True:
        terms.append(f"({a}.valid_until IS NOT NULL AND {a}.valid_until < ?)")
        params.append(f.now)
    elif f.expired is False:
        terms.append(f"({a}.valid_until IS NULL OR {a}.valid_until >= ?)")
        params.append(f.now)
    if not f.include_revoked:
        terms.append(f"{a}.revoked = 0")
    return " AND ".join(terms), params


def _first_of_value(f: TriageFilter) -> tuple[str, list[Any]]:
    """Keeps one line per indicator value: the first-stored matching object holding it."""
    where, params = filter_sql(f, "d", seek_partners=False)
    return (
        "(o.ioc_type IS NULL OR NOT EXISTS (SELECT 1 FROM objects d INDEXED BY "  # noqa: S608 - only placeholders and fixed names; values are bound
        "objects_current_by_value WHERE d.ioc_type = o.ioc_type AND d.value = o.value "
        f"AND d.rowid < o.rowid AND {where}))",
        params,
    )


# STIX types whose rows projection.py may give an `ioc_type` (a vulnerability is a `cve`):
# the index of other types, which holds only rows without one, cannot list them.
_MAY_CARRY_IOC = frozenset({"indicator", "vulnerability"})


def _driving_index(f: TriageFilter) -> tuple[str, str, list[Any]]:
    """(index, extra WHERE term, its parameters) for a query in received order."""
    if len(f.partners) == 1:
        # The index holds first senders: the page seeks its partner's range, and the objects
        # the partner sent again after another (relays, few) are merged in (`_with_relayed`).
        return "objects_current_by_partner", "o.partner = ?", [f.partners[0]]
    if len(f.statuses) == 1:
        return "objects_current_by_status", "", []
    if f.types and not any(t in IOC_TYPES or t in _MAY_CARRY_IOC for t in f.types):
        return "objects_current_other_by_type", "o.ioc_type IS NULL", []
    return "objects_current_by_received", "", []


@dataclass(frozen=True)
class PageRequest:
    sort: str = "received"
    descending: bool | None = None  # None: the sort's natural direction
    limit: int = 50
    after: tuple[str, int] | None = None  # keyset position, received order only
    offset: int = 0  # other orders
    # How long an ordered scan may run before a rare filter's fallback plan takes over.
    scan_budget: float = ORDERED_SCAN_BUDGET
    text_index: bool = True  # False: text search scans, as without an index (benchmarks)


def _ioc_types_searched(types: tuple[str, ...]) -> tuple[str, ...] | None:
    """The IOC types whose value-index ranges the text-search fallback reads for a `--type`
    filter; None: every one. The STIX type `indicator` (or no type filter) holds indicators of
    every IOC type. No range is skipped for what its values look like: partners' values are
    stored as they spelled them (`fe80::1%eth0`, `203.0.113.7 (c2)`), so no alphabet is sure."""
    if not types or "indicator" in types:
        return None
    # The `cve` value of a vulnerability is its name, any text ("Log4Shell"), and is not in
    # the named index (name = value): its small range is always read.
    return (*dict.fromkeys(t for t in types if t in IOC_TYPES), *(() if "cve" in types else ("cve",)))


def _fallback(f: TriageFilter) -> tuple[str, str, list[Any]] | None:
    """(index, extra WHERE term, its parameters) reading a small superset of the matches, for
    filters an ordered scan may have to read the whole store for: rare text, rare types."""
    if f.text:
        pattern = _like_pattern(f.text)
        kinds = _ioc_types_searched(f.types)
        in_kinds = "ioc_type IS NOT NULL" if kinds is None else f"ioc_type IN ({placeholders(kinds)})"
        return (
            "NOT INDEXED",
            "o.rowid IN (SELECT rowid FROM objects INDEXED BY objects_current_by_value "  # noqa: S608 - placeholders only
            f"WHERE is_current = 1 AND {in_kinds} "
            "AND value LIKE ? ESCAPE '\\' UNION SELECT rowid FROM objects "
            "INDEXED BY objects_current_named WHERE is_current = 1 AND name IS NOT value "
            "AND name LIKE ? ESCAPE '\\')",
            [*(kinds or ()), pattern, pattern],
        )
    if f.types and all(t in IOC_TYPES for t in f.types):
        return "INDEXED BY objects_current_by_value", "", []
    return None


@dataclass(frozen=True)
class _IndexedText:
    term: str  # `o.rowid IN (...)`: the rows that may hold the text
    params: list[Any]
    few: bool  # at most text_index.FEW_CANDIDATES: fetch them rather than scan in order


def _indexed_text(conn: sqlite3.Connection, f: TriageFilter, use_index: bool = True) -> _IndexedText | None:
    """The text-search index's candidates for `f.text`, when the index can serve it (built,
    nearly current, and the text long enough). The LIKE terms of filter_sql still decide."""
    if not use_index or f.text is None or not text_index.usable(f.text):
        return None
    through = text_index.serving(conn)
    if through is None:
        return None
    like = _like_pattern(f.text)
    sql, params = text_index.candidates_sql(f.text, through, like)
    few = text_index.few_candidates(conn, f.text, through, like)
    if few is None:
        return None
    return _IndexedText(f"o.rowid IN ({sql})", params, few)


class _Budget:
    """Interrupts a query that runs past `seconds` (SQLite progress handler)."""

    def __init__(self, conn: sqlite3.Connection, seconds: float) -> None:
        self.conn, self.deadline = conn, time.perf_counter() + seconds

    def __enter__(self) -> None:
        self.conn.set_progress_handler(lambda: int(time.perf_counter() > self.deadline), 2000)

    def __exit__(self, *exc: object) -> None:
        self.conn.set_progress_handler(None, 0)


def _received_page(
    conn: sqlite3.Connection, f: TriageFilter, page: PageRequest, descending: bool
) -> tuple[list[StoredObject], tuple[str, int] | None]:
    where, params = filter_sql(f)
    unique, unique_params = _first_of_value(f)
    order = "DESC" if descending else "ASC"
    terms, all_params = [where, unique], params + unique_params
    if page.after is not None:
        # The redundant first term lets the index range scan start at the position.
        compare = "<" if descending else ">"
        terms.append(f"o.received_at {compare}= ? AND (o.received_at {compare} ? OR o.rowid {compare} ?)")
        all_params += [page.after[0], page.after[0], page.after[1]]
    tail = f"ORDER BY o.received_at {order}, o.rowid {order} LIMIT ?"
    index, extra, extra_params = _driving_index(f)
    ordered = (
        f"SELECT {OBJECT_COLUMNS} FROM objects o INDEXED BY {index} "  # noqa: S608 - only placeholders and fixed names; values are bound
        f"WHERE {' AND '.join(terms + ([extra] if extra else []))} {tail}"
    )
    indexed = _indexed_text(conn, f, page.text_index)
    if indexed is not None and indexed.few:
        # Rare text: its few candidates come from the index, sorted here.
        sql = (
            f"SELECT {OBJECT_COLUMNS} FROM objects o NOT INDEXED "  # noqa: S608 - only placeholders and fixed names; values are bound
            f"WHERE {' AND '.join([*terms, indexed.term])} {tail}"
        )
        found = conn.execute(sql, [*all_params, *indexed.params, page.limit + 1]).fetchall()
        return _page_of(found, page.limit)
    fallback = _fallback(f)
    try:
        # Matches that are common fill a page after a short ordered scan; rare ones would
        # have it read every row, so past the budget the fallback plan takes over.
        with _Budget(conn, page.scan_budget) if fallback else nullcontext():
            found = conn.execute(ordered, [*all_params, *extra_params, page.limit + 1]).fetchall()
        if extra_params:
            found = _with_relayed(conn, found, terms, all_params, f.partners[0], tail, page.limit, descending)
    except sqlite3.OperationalError as exc:
        if fallback is None or "interrupt" not in str(exc):
            raise
        chosen, term, term_params = fallback
        sql = (
            f"SELECT {OBJECT_COLUMNS} FROM objects o {chosen} "  # noqa: S608 - only placeholders and fixed names; values are bound
            f"WHERE {' AND '.join(terms + ([term] if term else []))} {tail}"
        )
        found = conn.execute(sql, [*all_params, *term_params, page.limit + 1]).fetchall()
    return _page_of(found, page.limit)


# The rowids of the current objects a partner (both parameters) sent again after another
# partner sent them first: `object_sources` read by its partner index (migration 18).
RELAYED_ROWIDS = (
    "SELECT r.rowid FROM object_sources s CROSS JOIN objects r ON r.object_id = s.object_id "
    "AND r.version = s.version WHERE s.partner = ? AND r.is_current = 1 AND r.partner <> ?"
)


def _with_relayed(
    conn: sqlite3.Connection,
    found: list[Any],
    terms: list[str],
    params: list[Any],
    partner: str,
    tail: str,
    limit: int,
    descending: bool,
) -> list[Any]:
    """`found` (a page of `partner`'s own rows) merged with the matching rows another partner
    sent first and `partner` sent again, in received order, read from `object_sources` by its
    partner index (migration 18)."""
    relayed = conn.execute(
        f"SELECT {OBJECT_COLUMNS} FROM objects o WHERE o.rowid IN ({RELAYED_ROWIDS}) "  # noqa: S608 - only placeholders and fixed names; values are bound
        f"AND {' AND '.join(terms)} {tail}",
        [partner, partner, *params, limit + 1],
    ).fetchall()
    if not relayed:
        return found
    # received_at and rowid are the 16th and 1st columns (OBJECT_COLUMNS).
    merged = sorted([*found, *relayed], key=lambda r: (r[15], r[0]), reverse=descending)
    return merged[: limit + 1]


def _page_of(found: list[Any], limit: int) -> tuple[list[StoredObject], tuple[str, int] | None]:
    rows = [StoredObject(*r) for r in found]
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, ((rows[-1].received_at, rows[-1].rowid) if more and rows else None)


def list_page(
    conn: sqlite3.Connection, f: TriageFilter, page: PageRequest
) -> tuple[list[StoredObject], tuple[str, int] | int | None]:
    """One page of matching objects and where the next page starts (None: no more)."""
    expression, natural_desc = SORTS[page.sort]
    descending = natural_desc if page.descending is None else page.descending
    if page.sort == "received":
        return _received_page(conn, f, page, descending)
    where, params = filter_sql(f)
    if (indexed := _indexed_text(conn, f, page.text_index)) is not None and indexed.few:
        where, params = f"{where} AND {indexed.term}", [*params, *indexed.params]
    unique, unique_params = _first_of_value(f)
    order = "DESC" if descending else "ASC"
    sql = (
        f"SELECT {OBJECT_COLUMNS} FROM objects o WHERE {where} AND {unique} "  # noqa: S608 - only placeholders and fixed names; values are bound
        f"ORDER BY {expression} {order} NULLS LAST, o.rowid {order} LIMIT ? OFFSET ?"
    )
    rows = [
        StoredObject(*r) for r in conn.execute(sql, [*params, *unique_params, page.limit + 1, page.offset])
    ]
    more = len(rows) > page.limit
    return rows[: page.limit], (page.offset + page.limit if more else None)


def count_matching(conn: sqlite3.Connection, f: TriageFilter) -> int:
    """How many lines the whole list has: a full pass over the matches, so only when asked."""
    where, params = filter_sql(f)
    if (indexed := _indexed_text(conn, f)) is not None and indexed.few:
        where, params = f"{where} AND {indexed.term}", [*params, *indexed.params]
    unique, unique_params = _first_of_value(f)
    row = conn.execute(
        f"SELECT count(*) FROM objects o WHERE {where} AND {unique}",  # noqa: S608 - placeholders only
        [*params, *unique_params],
    ).fetchone()
    return int(row[0])
