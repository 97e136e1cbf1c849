"""Checkpointing the store's write-ahead log on a second thread, off the writer's path.

In WAL mode SQLite appends each commit's pages to the `-wal` file and, by default, copies them
into the database file (a checkpoint, with its own fsync) inside the COMMIT that takes the log
past 1,000 pages. For an envelope of 10,000 indicators that copy was a third of the commit and
a tenth of storing it (docs/BENCHMARKS.md). Here the writing connection turns automatic
checkpoints off, and after each commit a thread runs a PASSIVE checkpoint, which never waits for
or blocks the writer or readers, while the writer goes on with the next envelope. SQLite does
the copy without holding Python's lock, so on a machine with two cores it runs beside the
writer.

The thread's connection is opened with the store, on the file the store opened (a symlink
followed, never created): opened later by name, it could create an empty file in place of a
store renamed meanwhile, and SQLite would then delete the live log beside it.

The log starts over from its beginning when a write begins after a checkpoint copied all of
it. A writer faster than the checkpoints would never let that happen, and the log would grow
for as long as a pull runs: so a write waits for the checkpoints asked for when the log has
grown past its limit, `log_limit_bytes` (LOG_LIMIT_BYTES unless the checkpointer is given
another). (A reader in another process holding an old snapshot, a long
export, keeps the log from starting over whatever we do, as with SQLite's own checkpoints.)

Durability does not change: a commit is durable once its pages are fsynced in the log
(synchronous=FULL), and a checkpoint only moves them into the main file. An interrupted
checkpoint is SQLite's to recover (the log is read again at the next opening). If the thread
cannot work (its connection cannot be opened, it cannot be started, a checkpoint fails), the
writer takes automatic checkpoints back (`Database.checkpoint_soon`), so the log never grows
without bound, and nobody waits for it.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

AUTOMATIC_CHECKPOINT_PAGES = 1000  # SQLite's default, restored when the thread cannot work
LOG_LIMIT_BYTES = 64 * 1024 * 1024


class WalCheckpointer:
    """Runs `PRAGMA wal_checkpoint(PASSIVE)` on its own thread after each commit it is told of."""

    def __init__(self, real: Path, *, log_limit_bytes: int = LOG_LIMIT_BYTES) -> None:
        """`real`: the store's path with symlinks resolved, where SQLite keeps the log.
        `log_limit_bytes`: past this size of log, a write waits for the checkpoints asked for."""
        self._log = real.with_name(real.name + "-wal")
        self.log_limit_bytes = log_limit_bytes
        self._state = threading.Condition()
        self._asked = 0  # checkpoints asked for
        self._done = 0  # of those, how many a finished checkpoint covered
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.failure: str | None = None  # why the thread does not work, if it does not
        self.checkpoints = 0
        self._conn: sqlite3.Connection | None = None
        try:
            # mode=rw: never creates a file. The connection is used by the thread alone.
            self._conn = sqlite3.connect(
                f"{real.as_uri()}?mode=rw", uri=True, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA synchronous=FULL")
        except sqlite3.Error as exc:
            self.failure = f"cannot open the store for checkpoints: {exc}"

    def after_commit(self) -> None:
        """Asks for a checkpoint; commits that come while one runs share the next one."""
        with self._state:
            if self.failure is not None or self._stopping:
                return
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
                try:
                    thread.start()
                except RuntimeError as exc:  # can't start new thread (process limits)
                    self.failure = f"cannot start the checkpoint thread: {exc}"
                    self._close_connection()
                    return
                self._thread = thread
            self._asked += 1
            self._state.notify_all()

    def before_write(self) -> None:
        """Before a write transaction: if the log has grown past `log_limit_bytes`, waits for
        the checkpoints asked for, so that the write starts the log over."""
        try:
            if self._log.stat().st_size <= self.log_limit_bytes:
                return
        except FileNotFoundError:
            return
        self.settle()

    def settle(self) -> None:
        """Waits for the checkpoints asked for: before a checkpoint of our own on the store's
        connection (`wal_checkpoint(TRUNCATE)`), which SQLite refuses as busy, at once, while
        this thread's PASSIVE one holds the checkpoint lock."""
        with self._state:
            while not self._state.wait_for(self._caught_up, timeout=1.0):
                pass

    def close(self) -> None:
        """Runs the checkpoints asked for and stops the thread. (SQLite's own checkpoint when
        the last connection closes skips a store renamed while open; this one does not.)"""
        with self._state:
            self._stopping = True
            self._state.notify_all()
        if self._thread is not None:
            self._thread.join()
        self._close_connection()

    def _caught_up(self) -> bool:
        alive = self._thread is not None and self._thread.is_alive()
        return self._done >= self._asked or self.failure is not None or self._stopping or not alive

    def _run(self) -> None:
        conn = self._conn  # set: the thread starts only when the connection opened
        if conn is None:
            return
        try:
            while True:
                with self._state:
                    self._state.wait_for(lambda: self._asked > self._done or self._stopping)
                    if self._asked == self._done:  # stopping, and nothing asked for is left
                        return
                    covering = self._asked
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                with self._state:
                    self.checkpoints += 1
                    self._done = covering
                    self._state.notify_all()
        except Exception as exc:  # any failure hands checkpoints back to SQLite
            with self._state:
                self.failure = f"checkpoint failed: {exc}"
                self._state.notify_all()

    def _close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
