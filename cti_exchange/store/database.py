"""Opening the store: connection settings, migrations, transactions.

WAL lets readers (triage) work while a sync writes. synchronous=FULL makes every commit durable
before it returns, which is what "cursors move only after data is durably stored" needs: a
cursor update is committed in the same transaction as the data it covers, or after it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cti_exchange.errors import ConfigError, IntegrityError, is_storage_failure
from cti_exchange.failpoints import failpoint
from cti_exchange.store.migrations import apply_migrations
from cti_exchange.store.wal_checkpointer import AUTOMATIC_CHECKPOINT_PAGES, LOG_LIMIT_BYTES, WalCheckpointer

# Pages of a new store. Rows of indicators are about 1 KB: 16 KiB pages hold fourteen of them
# where 4 KiB pages held three, and storing 100,000 indicators wrote fewer pages, faster
# (docs/BENCHMARKS.md). A store made with other pages keeps them: SQLite cannot change the size
# of a database in WAL mode without rewriting it.
NEW_STORE_PAGE_SIZE = 16384


def _beside(real: Path, suffix: str) -> Path:
    """The store's file with `suffix` (`-wal`, `-shm`) where SQLite keeps it: beside the real
    file (`real`: the store's path, symlinks resolved)."""
    return real.with_name(real.name + suffix)


def _refuse_emptied_store(path: Path, real: Path) -> None:
    """SQLite takes an empty file for a new database. A store that exists but is empty was
    truncated: opening it would silently start over, without the replay protection, cursors,
    channel state and audit trail it held."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return  # a new store
    wal = _beside(real, "-wal")
    if size == 0 and not (wal.exists() and wal.stat().st_size > 0):
        raise IntegrityError(
            f"the store {path} is an empty file: it was truncated, and starting a new store in "
            "its place would lose the replay protection, cursors and audit trail it held",
            hint="restore it from a backup; to start over knowingly, remove the empty file",
        )


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
        target = _beside(real, suffix)
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


class Database:
    def __init__(self, path: Path) -> None:
        self.path = path
        real = Path(os.path.realpath(path))  # where SQLite keeps the store and its log
        _refuse_emptied_store(path, real)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a transaction is exactly
            # what `transaction()` encloses.
            self.conn = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        except sqlite3.DatabaseError as exc:
            raise self._cannot_open(exc) from None
        try:
            self._set_up(real)
        except BaseException as exc:
            # Closed now, not when the error is gone: a caller keeping it (a log, --debug)
            # would hold the store open, and the checkpoint thread's connection, for as long.
            with contextlib.suppress(Exception):
                if (checkpointer := getattr(self, "checkpointer", None)) is not None:
                    checkpointer.close()
            self.conn.close()
            if isinstance(exc, sqlite3.DatabaseError):
                raise self._cannot_open(exc) from None
            raise

    def _cannot_open(self, exc: sqlite3.DatabaseError) -> ConfigError:
        return ConfigError(
            f"cannot open the store {self.path}: {exc}",
            hint="free space (or fix the device) and run the command again"
            if is_storage_failure(exc)
            else "check the path in config.toml [store] and that the file is a cti-exchange store",
        )

    def _set_up(self, real: Path) -> None:
        """Settings, migrations and the checkpoint thread of the open connection."""
        self.conn.execute(f"PRAGMA page_size={NEW_STORE_PAGE_SIZE}")  # a new store only
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("PRAGMA busy_timeout=30000")
        # STIX ids are random UUIDs, so inserts land all over the primary-key b-tree; a
        # 64 MiB page cache (default 2 MiB) keeps a 100,000-object envelope in memory.
        self.conn.execute("PRAGMA cache_size=-65536")
        self.schema_version = apply_migrations(self.conn)
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
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        failpoint("commit-before")
        self.conn.execute("COMMIT")
        failpoint("commit-after")
        self.checkpoint_soon()

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
