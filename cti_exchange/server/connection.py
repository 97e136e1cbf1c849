"""Opening the exchange database: the one module that knows the database is SQLite.

Everything else in `cti_exchange.server` speaks standard SQL with `?` parameters. Moving to
PostgreSQL (several server processes behind a load balancer) means replacing this module:
a psycopg connection instead of `sqlite3.connect`, `%s` placeholders, `BEGIN` plus
`SELECT ... FOR UPDATE` instead of `BEGIN IMMEDIATE`, and an identity column in place of
SQLite's AUTOINCREMENT. See docs/SERVER.md.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cti_exchange.errors import ConfigError

DB_FILENAME = "taxii.sqlite3"

# A writer holds the database lock for one POST at most (a few hundred milliseconds for
# 5,000 objects); readers never block in WAL mode. Ten seconds is ample headroom.
BUSY_TIMEOUT_MS = 10_000

# The unique, monotonically increasing sequence that orders objects sharing one date_added.
# AUTOINCREMENT (not a bare rowid) so that a deleted highest row never has its number reused.
# PostgreSQL: "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY".
IDENTITY_COLUMN = "INTEGER PRIMARY KEY AUTOINCREMENT"


def open_database(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the database at `path`, set up for durable concurrent use."""
    try:
        # isolation_level=None: the sqlite3 module must not open transactions behind our
        # back; `write_transaction` and `read_transaction` say exactly where they begin.
        conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        # WAL: readers see the last committed state and never block the writer, and a
        # crash at any instant leaves the database at its last commit.
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        # FULL: the WAL is fsynced at every commit, so a POST that has been answered is on
        # disk. NORMAL would only fsync at checkpoints and can lose the last commits on
        # power failure, which breaks "answered => durable".
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys=ON")
    except sqlite3.Error as exc:
        raise ConfigError(
            f"cannot open the TAXII server database {path}: {exc}",
            hint="check that the data directory exists and is writable by this user",
        ) from exc
    if str(mode).lower() != "wal":
        conn.close()
        raise ConfigError(
            f"the TAXII server database {path} cannot use write-ahead logging (got {mode!r})",
            hint="put the data directory on a local file system (WAL needs shared memory)",
        )
    return conn


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One atomic, durable write: committed (and fsynced) when the block ends without error.

    IMMEDIATE takes the write lock up front, so concurrent POSTs are serialised before they
    read `collections.last_date_added` and date_added stays increasing in commit order.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@contextmanager
def read_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Several SELECTs that must see one snapshot (e.g. a status and its details)."""
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        conn.execute("COMMIT")


class ThreadConnections:
    """One connection per thread: waitress serves requests from a pool of worker threads and
    an sqlite3 connection must stay on the thread that opened it. Connections live as long as
    their thread; the process exit closes them (every commit is already on disk)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()

    def get(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = open_database(self.path)
            self._local.conn = conn
        return conn
