"""Opening the exchange database: the one module that knows the database is SQLite.

Everything else in `cti_exchange.server` speaks standard SQL with `?` parameters. Moving to
PostgreSQL (several server processes behind a load balancer) means replacing this module:
a psycopg connection instead of `sqlite3.connect`, `%s` placeholders, `BEGIN` plus
`SELECT ... FOR UPDATE` instead of `BEGIN IMMEDIATE`, and an identity column in place of
SQLite's AUTOINCREMENT. See docs/SERVER.md.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cti_exchange.errors import ConfigError, UsageError

DB_FILENAME = "taxii.sqlite3"

# A writer holds the database lock for the inserts of one POST at most (a few hundred
# milliseconds for 5,000 objects: objects are checked and serialised before the lock is
# taken); readers never block in WAL mode. Ten seconds is ample headroom. A writer that waited
# this long gets DatabaseBusy, which the backend answers with 503 and Retry-After.
BUSY_TIMEOUT_SECONDS = 10.0
# A waiting POST holds one of waitress's few worker threads, and our TAXII client gives up
# after 30 s by default: waiting minutes helps no one. The bound also keeps the value within
# what `PRAGMA busy_timeout` (milliseconds, a C int) takes.
MAX_BUSY_TIMEOUT_SECONDS = 600.0

# The unique, monotonically increasing sequence that orders objects sharing one date_added.
# AUTOINCREMENT (not a bare rowid) so that a deleted highest row never has its number reused.
# PostgreSQL: "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY".
IDENTITY_COLUMN = "INTEGER PRIMARY KEY AUTOINCREMENT"


class DatabaseBusy(sqlite3.OperationalError):
    """Another writer held the write lock for longer than the busy timeout. A subclass of the
    error sqlite3 raises, so callers that handle that one keep working."""


def check_busy_timeout(seconds: float) -> float:
    """`seconds` if it is a usable busy timeout (above 0, at most the maximum)."""
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_BUSY_TIMEOUT_SECONDS):
        raise UsageError(
            f"--busy-timeout {seconds:g}: give the seconds a write waits for the lock, "
            f"above 0 and at most {MAX_BUSY_TIMEOUT_SECONDS:g}",
            hint=f"the default is {BUSY_TIMEOUT_SECONDS:g}",
        )
    return seconds


def _is_busy(exc: sqlite3.Error) -> bool:
    # Extended codes (SQLITE_BUSY_SNAPSHOT, ...) carry the primary code in their low byte.
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def open_database(path: Path, *, busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> sqlite3.Connection:
    """Open (creating if needed) the database at `path`, set up for durable concurrent use.

    busy_timeout: how many seconds a write waits for the lock another writer holds.
    """
    try:
        # isolation_level=None: the sqlite3 module must not open transactions behind our
        # back; `write_transaction` and `read_transaction` say exactly where they begin.
        conn = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout)
        # WAL: readers see the last committed state and never block the writer, and a
        # crash at any instant leaves the database at its last commit.
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        # FULL: the WAL is fsynced at every commit, so a POST that has been answered is on
        # disk. NORMAL would only fsync at checkpoints and can lose the last commits on
        # power failure, which breaks "answered => durable".
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
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
    DatabaseBusy if the lock did not come within the busy timeout (nothing was written).
    """
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if _is_busy(exc):
            raise DatabaseBusy(str(exc)) from exc
        raise
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException as exc:
        # A failed COMMIT leaves the transaction open; the connection is reused by the next
        # request on this thread, which must not find it inside a transaction.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.OperationalError) and not isinstance(exc, DatabaseBusy) and _is_busy(exc):
            raise DatabaseBusy(str(exc)) from exc
        raise


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

    def __init__(self, path: Path, *, busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self._local = threading.local()

    def get(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = open_database(self.path, busy_timeout=self.busy_timeout)
            self._local.conn = conn
        return conn
