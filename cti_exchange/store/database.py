"""Opening the store: connection settings, migrations, transactions.

WAL lets readers (triage) work while a sync writes. synchronous=FULL makes every commit durable
before it returns, which is what "cursors move only after data is durably stored" needs: a
cursor update is committed in the same transaction as the data it covers, or after it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from cti_exchange.errors import ConfigError, is_storage_failure
from cti_exchange.failpoints import failpoint
from cti_exchange.store.migrations import apply_migrations
from cti_exchange.store.store_file import (
    beside,
    is_locked,
    record_store_exists,
    refuse_lost_store,
    refuse_read_only,
    store_locked,
    why_not_writable,
)
from cti_exchange.store.wal_checkpointer import AUTOMATIC_CHECKPOINT_PAGES, LOG_LIMIT_BYTES, WalCheckpointer

# Pages of a new store. Rows of indicators are about 1 KB: 16 KiB pages hold fourteen of them
# where 4 KiB pages held three, and storing 100,000 indicators wrote fewer pages, faster
# (docs/BENCHMARKS.md). A store made with other pages keeps them: SQLite cannot change the size
# of a database in WAL mode without rewriting it.
NEW_STORE_PAGE_SIZE = 16384

# How long a command waits for another process holding the store (an sqlite3 shell, a backup
# taking an exclusive lock, an export, a sync) unless config.toml says otherwise
# (`operations.store_wait_seconds`), and after how long it says it is waiting.
BUSY_TIMEOUT_SECONDS = 30.0
QUIET_WAIT_SECONDS = 1.0


class StoreNotPrivate(ConfigError):
    """The store's file is another user's, or others can read it and we cannot change that."""


def _keep_private(real: Path) -> None:
    """Partner intelligence, TLP:RED included, the replay state and the audit trail: for us
    alone, 0600. Checked at every opening, not only when the store is made: a first run
    interrupted before it set the mode left the store as the umask made it, for good. (Not
    created 0600 beforehand: an empty file left by an interrupted first run would then be
    refused as a truncated store.) A file of another user (who can read and change it), or one
    others can read that we cannot make private, is refused, as key files are."""
    me = os.geteuid()
    for suffix in ("", "-wal", "-shm"):
        target = beside(real, suffix)
        try:
            info = target.stat()
        except FileNotFoundError:
            continue
        if info.st_uid not in (me, 0):
            raise StoreNotPrivate(
                f"the store {target} belongs to user {info.st_uid}, who can read and change it",
                hint=f"use a store of your own: `chown {me} {target}` and `chmod 600 {target}`",
            )
        if info.st_mode & 0o077 and info.st_uid == me:
            with contextlib.suppress(PermissionError):
                os.chmod(target, 0o600)
                continue
        if info.st_mode & 0o077:
            raise StoreNotPrivate(
                f"the store {target} is readable by group or others (mode {info.st_mode & 0o777:04o})",
                hint=f"run `chmod 600 {target}` as its owner, and check who else could have read it",
            )


class UnreadableStore(ConfigError):
    """SQLite could not open the file as a store: not a database, or damaged."""


class Database:
    def __init__(
        self,
        path: Path,
        *,
        existed_marker: Path | None = None,
        waiting: Callable[[str], None] | None = None,
        wait_seconds: float = BUSY_TIMEOUT_SECONDS,
    ) -> None:
        """`existed_marker`: the file in the profile home recording that its store exists
        (store_file.py); a store missing while it is there is refused, not made anew. `waiting`:
        told once when another process holds the store and the opening has to wait.
        `wait_seconds`: how long (config.toml `operations.store_wait_seconds`)."""
        self.path = path
        self._waiting = waiting
        self.wait_seconds = wait_seconds
        real = Path(os.path.realpath(path))  # where SQLite keeps the store and its log
        refuse_lost_store(path, real, existed_marker)
        refuse_read_only(path, real)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a transaction is exactly
            # what `transaction()` encloses.
            self.conn = sqlite3.connect(path, isolation_level=None, timeout=QUIET_WAIT_SECONDS)
        except sqlite3.DatabaseError as exc:
            raise self._cannot_open(exc, real) from None
        try:
            self._set_up(real)
        except BaseException as exc:
            # Closed now, not when the error is gone: a caller keeping it (a log, --debug)
            # would hold the store open, and the checkpoint thread's connection, for as long.
            with contextlib.suppress(Exception):
                if (checkpointer := getattr(self, "checkpointer", None)) is not None:
                    checkpointer.close()
            self.conn.close()
            if is_locked(exc):
                raise store_locked(path, self.wait_seconds) from None
            if isinstance(exc, sqlite3.DatabaseError):
                raise self._cannot_open(exc, real) from None
            raise
        record_store_exists(existed_marker)

    def _cannot_open(self, exc: sqlite3.DatabaseError, real: Path) -> ConfigError:
        if is_storage_failure(exc):
            return ConfigError(
                f"cannot open the store {self.path}: {exc}",
                hint="free space (or fix the device) and run the command again",
            )
        not_writable = why_not_writable(self.path, real)
        if not_writable is not None:
            return not_writable
        return UnreadableStore(
            f"cannot open the store {self.path}: {exc}",
            hint="check the path in config.toml [store] and that the file is a cti-exchange store",
        )

    def _patiently(self, statement: str, waiting_for: str) -> None:
        """Runs `statement`, waiting (at most `wait_seconds`) for another process that
        holds the store, and saying so (`waiting`, on a terminal) once the wait is longer than
        a moment. Past the wait, the documented exit 5 (LockHeldError), not SQLite's error."""
        self.conn.execute(f"PRAGMA busy_timeout={int(QUIET_WAIT_SECONDS * 1000)}")
        try:
            try:
                self.conn.execute(statement).fetchall()
                return
            except sqlite3.OperationalError as exc:
                if not is_locked(exc):
                    raise
            if self._waiting is not None:
                self._waiting(
                    f"the store {self.path} is {waiting_for} by another process: waiting for it "
                    f"(at most {self.wait_seconds:.0f} s)"
                )
            remaining = self.wait_seconds - QUIET_WAIT_SECONDS
            self.conn.execute(f"PRAGMA busy_timeout={int(remaining * 1000)}")
            try:
                self.conn.execute(statement).fetchall()
            except sqlite3.OperationalError as exc:
                if is_locked(exc):
                    raise store_locked(self.path, self.wait_seconds) from None
                raise
        finally:
            self.conn.execute(f"PRAGMA busy_timeout={int(self.wait_seconds * 1000)}")

    def _set_up(self, real: Path) -> None:
        """Settings, migrations and the checkpoint thread of the open connection."""
        self.conn.execute(f"PRAGMA page_size={NEW_STORE_PAGE_SIZE}")  # a new store only
        # A process holding the store locked (an sqlite3 shell, a backup) makes even this wait.
        self._patiently("SELECT count(*) FROM sqlite_master", "locked")
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        # STIX ids are random UUIDs, so inserts land all over the primary-key b-tree; a
        # 64 MiB page cache (default 2 MiB) keeps a 100,000-object envelope in memory.
        self.conn.execute("PRAGMA cache_size=-65536")
        self.schema_version = apply_migrations(self.conn, store_name=f"the store {self.path}")
        # From here on, checkpoints run on a thread of their own after each commit
        # (wal_checkpointer.py); a migration above had SQLite's own, and so does a store
        # the thread cannot open (read-only).
        self.checkpointer = WalCheckpointer(real)
        self._automatic_checkpoints = self.checkpointer.failure is not None
        if not self._automatic_checkpoints:
            self.conn.execute("PRAGMA wal_autocheckpoint=0")
            # A log that started over is cut back to this size: its size then says how
            # much it holds (WalCheckpointer.before_write).
            self.conn.execute(f"PRAGMA journal_size_limit={LOG_LIMIT_BYTES}")
        _keep_private(real)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of work: all of it is committed, or none of it."""
        self.before_write()
        self._begin_write()
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        failpoint("commit-before")
        self.conn.execute("COMMIT")
        failpoint("commit-after")
        self.checkpoint_soon()

    def _begin_write(self) -> None:
        """BEGIN IMMEDIATE, waiting for another process writing the store (an IDS export, a
        sync): reads go on in WAL mode, so the opening did not wait for it."""
        self._patiently("BEGIN IMMEDIATE", "being written")

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A consistent read of the store that holds no write lock: in WAL mode writers (a
        cron sync, an analyst's decision) go on while it runs, and it sees none of their
        commits. Read only: a write in it fails (`query_only`), rather than being rolled back
        unseen at its end."""
        self.conn.execute("PRAGMA query_only = ON")
        try:
            self.conn.execute("BEGIN DEFERRED")
            try:
                yield self.conn
            finally:
                self.conn.execute("ROLLBACK")
        finally:
            self.conn.execute("PRAGMA query_only = OFF")

    def before_write(self) -> None:
        """Before a write transaction: waits for the checkpoint thread if the log has grown
        past its limit (wal_checkpointer.py). `transaction()` calls it; code that begins its
        own write transactions (the text index build) calls it before each."""
        self.checkpointer.before_write()

    def checkpoint_soon(self) -> None:
        """After a commit: the checkpoint thread copies its pages into the database file.
        `transaction()` calls it; code that commits on the connection itself (the text index
        build) calls it after each commit."""
        self.checkpointer.after_commit()
        if self.checkpointer.failure is not None and not self._automatic_checkpoints:
            # The thread cannot work: SQLite checkpoints in our commits again, so the log does
            # not grow without bound.
            self.conn.execute(f"PRAGMA wal_autocheckpoint={AUTOMATIC_CHECKPOINT_PAGES}")
            self._automatic_checkpoints = True

    def close(self) -> None:
        try:
            self.checkpointer.close()
        finally:
            self.conn.close()

    def integrity_check(self) -> str:
        row = self.conn.execute("PRAGMA integrity_check").fetchone()
        return str(row[0])
