"""The text-search index: the trigrams of every current value and name (SQLite FTS5), kept
beside the objects table and brought up to date after storing, not during it.

Why deferred: indexing a row's trigrams costs about 9 us, a third of what storing the row
costs, and storing has a rate to hold (issue 7). So storing never touches this index. It
catches up with the rows stored since (`rowid` above `indexed_through`) when a search needs
it, and at the end of each pull (and so each `sync`) once it exists; an agency that never
searches never pays for it.

A search never misses a row: it reads the index for the rows up to `indexed_through` and scans
the rows stored after them (a short tail: a search first indexes a tail longer than
`TAIL_SCAN_ROWS`). The index only proposes candidates: a trigram phrase matches every value
that holds the text, folding case more widely than LIKE does (Unicode, not ASCII alone), and
the caller's LIKE terms decide. Versions demoted since they were indexed stay in the index and
fail the caller's `is_current = 1`; a version stored as not current never becomes current, so
only current rows are indexed. Objects rows are deleted only by migration 12 (stored receipts,
once) and by an erasure (store/erasure.py), each of which drops the index, and the store is
never vacuumed, so a rowid names the same row for as long as the index lives; a version
whose content the creator's copy replaces (store/objects.py) moves to a new rowid, leaving its
old entry matching nothing.

Built lazily, not by a migration: a SQLite without FTS5 or its trigram tokenizer (before
3.34) keeps a working store, and a search there scans as it always did.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

MIN_TEXT = 3  # characters: a trigram index cannot serve shorter text
TAIL_SCAN_ROWS = 20_000  # rows stored after the index a search scans rather than index first
# Index hits a search fetches directly instead of scanning in received order until a page
# fills. Each CLI run starts with an empty page cache: on 1,000,000 stored, fetching 20,000
# candidates (0.27 s for the whole command) beat the ordered scan of the same text (0.35 s).
FEW_CANDIDATES = 20_000
CHUNK_ROWS = 50_000  # rows indexed per transaction (about 0.5 s)
# Pause between chunks: longer than SQLite's longest busy-handler sleep (100 ms), so a writer
# waiting for the store (a sync, an analyst's decision) gets in after one chunk instead of
# after the whole build.
YIELD_SECONDS = 0.12

_CREATE = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS search_text USING "
    "fts5(value, name, content='', tokenize='trigram', detail=full)",
    "CREATE TABLE IF NOT EXISTS search_text_state "
    "(id INTEGER PRIMARY KEY CHECK (id = 1), indexed_through INTEGER NOT NULL)",
    "INSERT OR IGNORE INTO search_text_state (id, indexed_through) VALUES (1, 0)",
)


class WriteHooks(Protocol):
    """What the build calls around each chunk's transaction: the store's `Database`."""

    def before_write(self) -> None: ...

    def checkpoint_soon(self) -> None: ...


class _NoHooks:
    def before_write(self) -> None:
        pass

    def checkpoint_soon(self) -> None:
        pass


NO_HOOKS: WriteHooks = _NoHooks()


def indexed_through(conn: sqlite3.Connection) -> int | None:
    """The last objects rowid the index covers; None when there is no index (yet)."""
    try:
        row = conn.execute("SELECT indexed_through FROM search_text_state WHERE id = 1").fetchone()
    except sqlite3.OperationalError:  # no such table: never built
        return None
    return int(row[0]) if row else None


def _last_rowid(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT coalesce(max(rowid), 0) FROM objects").fetchone()[0])


def behind(conn: sqlite3.Connection) -> int:
    """How many stored rows the index does not cover (all of them when there is none)."""
    return _last_rowid(conn) - (indexed_through(conn) or 0)


def catch_up(
    conn: sqlite3.Connection,
    *,
    create: bool = True,
    hooks: WriteHooks = NO_HOOKS,
    chunk_rows: int = CHUNK_ROWS,
) -> int:
    """Indexes the rows stored since the last catch-up, `chunk_rows` per transaction, and
    returns how many rowids it covered. `create=False` only keeps an existing index current. Raises
    sqlite3.OperationalError when this SQLite has no FTS5 trigram tokenizer or the store is
    locked or read-only; each committed chunk stays. `hooks` run around each chunk's
    transaction (the store's checkpoint thread, store/wal_checkpointer.py)."""
    covered = 0
    while True:
        if covered:
            time.sleep(YIELD_SECONDS)  # a waiting writer's turn
        hooks.before_write()
        conn.execute("BEGIN IMMEDIATE")
        try:
            start = indexed_through(conn)
            if start is None:
                if not create:
                    conn.execute("ROLLBACK")
                    return covered
                for statement in _CREATE:
                    conn.execute(statement)
                start = 0
            last = _last_rowid(conn)
            end = min(last, start + chunk_rows)
            if end <= start:
                conn.execute("COMMIT")
                return covered
            conn.execute(
                "INSERT INTO search_text (rowid, value, name) "
                "SELECT rowid, value, CASE WHEN name IS NOT value THEN name END FROM objects "
                "WHERE rowid > ? AND rowid <= ? AND is_current = 1 "
                "AND (value IS NOT NULL OR name IS NOT NULL)",
                (start, end),
            )
            conn.execute("UPDATE search_text_state SET indexed_through = ? WHERE id = 1", (end,))
            conn.execute("COMMIT")
            hooks.checkpoint_soon()
        except BaseException:
            if conn.in_transaction:  # SQLite may have rolled back already (disk full)
                conn.execute("ROLLBACK")
            raise
        covered += end - start
        if end == last:  # current as of this chunk: no pause, no empty transaction after it
            return covered


def drop(conn: sqlite3.Connection) -> None:
    """Forgets the index (the next search builds it again). For a migration that changes
    `objects.value` or `objects.name` in place, which the index would otherwise not see. A
    SQLite without FTS5 cannot drop the table itself: without its state row it is not used,
    and a SQLite with FTS5 builds it again (`IF NOT EXISTS` keeps the old table, whose rows
    then only widen the candidates the LIKE terms decide on)."""
    conn.execute("DROP TABLE IF EXISTS search_text_state")
    try:
        conn.execute("DROP TABLE IF EXISTS search_text")
    except sqlite3.OperationalError:  # no such module: fts5
        pass


def can_build(conn: sqlite3.Connection) -> bool:
    """Whether this SQLite has FTS5 and its trigram tokenizer (3.34 and later)."""
    if sqlite3.sqlite_version_info < (3, 34, 0):
        return False
    options = {row[0] for row in conn.execute("PRAGMA compile_options")}
    return "ENABLE_FTS5" in options


@contextmanager
def _waiting_at_most(conn: sqlite3.Connection, wait_ms: int) -> Iterator[None]:
    previous = conn.execute("PRAGMA busy_timeout").fetchone()[0]
    conn.execute(f"PRAGMA busy_timeout={int(wait_ms)}")
    try:
        yield
    finally:
        conn.execute(f"PRAGMA busy_timeout={int(previous)}")


def keep_current(
    conn: sqlite3.Connection, *, wait_ms: int = 1000, hooks: WriteHooks = NO_HOOKS
) -> str | None:
    """After storing: indexes the new rows if there is an index, waiting `wait_ms` at most for
    the store. None when done; else why not (a later search or pull indexes what is left)."""
    try:
        with _waiting_at_most(conn, wait_ms):
            catch_up(conn, create=False, hooks=hooks)
    except sqlite3.OperationalError as exc:
        return str(exc)
    return None


def serving(conn: sqlite3.Connection) -> int | None:
    """`indexed_through` when the index can serve a search (its tail is short), else None."""
    through = indexed_through(conn)
    return through if through is not None and _last_rowid(conn) - through <= TAIL_SCAN_ROWS else None


def prepare_for_search(
    conn: sqlite3.Connection,
    *,
    wait_ms: int = 1000,
    hooks: WriteHooks = NO_HOOKS,
    chunk_rows: int = CHUNK_ROWS,
) -> bool:
    """Before a search: indexes the rows it would otherwise scan when they are many. Waits
    `wait_ms` at most for a writer (a sync) to finish; if the store stays busy, is read-only,
    or this SQLite cannot build the index, the search scans instead. True when the index
    serves the search. `chunk_rows`: as for `catch_up`."""
    if serving(conn) is not None:
        return True
    try:
        with _waiting_at_most(conn, wait_ms):
            catch_up(conn, hooks=hooks, chunk_rows=chunk_rows)
    except sqlite3.OperationalError:
        pass  # checked below: whatever was indexed before or committed here still serves
    return serving(conn) is not None


def _phrase(text: str) -> str:
    """An FTS5 phrase matching `text` literally (trigram tokenizer: as a substring)."""
    return '"' + text.replace('"', '""') + '"'


def candidates_sql(text: str, through: int, like: str) -> tuple[str, list[Any]]:
    """A subquery of the rowids that may hold `text`: index hits up to `through`, and the
    rows stored after it whose value or name is LIKE `like` (the caller's pattern)."""
    return (
        "SELECT rowid FROM search_text WHERE search_text MATCH ? UNION ALL "
        "SELECT rowid FROM objects WHERE rowid > ? AND (value LIKE ? ESCAPE '\\' OR name LIKE ? ESCAPE '\\')",
        [_phrase(text), through, like, like],
    )


def few_candidates(conn: sqlite3.Connection, text: str, through: int, like: str) -> bool | None:
    """Whether the index and the tail propose at most FEW_CANDIDATES rows for `text`; None
    when this SQLite cannot read the index (built by one with FTS5 trigram, opened by one
    without): the search then scans, as without an index."""
    sql, params = candidates_sql(text, through, like)
    try:
        row = conn.execute(
            f"SELECT count(*) FROM ({sql} LIMIT ?)",  # noqa: S608 - fixed SQL, values bound
            [*params, FEW_CANDIDATES + 1],
        ).fetchone()
    except sqlite3.OperationalError:  # no such module: fts5 / no such tokenizer: trigram
        return None
    return int(row[0]) <= FEW_CANDIDATES


def usable(text: str | None) -> bool:
    """Whether the index can serve a search for `text`: three characters at least, and no NUL
    (which ends an FTS5 phrase; the scan takes it)."""
    return text is not None and len(text) >= MIN_TEXT and "\x00" not in text
