"""Checkpointing the store's write-ahead log on a second thread, off the writer's path.

In WAL mode SQLite appends each commit's pages to the `-wal` file and, by default, copies them
into the database file (a checkpoint, with its own fsync) inside the COMMIT that takes the log
past 1,000 pages. For an envelope of 10,000 indicators that copy was a third of the commit and
a tenth of storing it (docs/BENCHMARKS.md). Here the writing connection turns automatic
checkpoints off, and after each commit a thread with a connection of its own runs a PASSIVE
checkpoint, which never waits for or blocks the writer or readers, while the writer goes on
with the next envelope. SQLite does the copy without holding Python's lock, so on a machine
with two cores it runs beside the writer.

The log starts over from its beginning when a write begins after a checkpoint copied all of
it. A writer faster than the checkpoints would never let that happen, and the log would grow
for as long as a pull runs: so a write waits for the running checkpoint when the log has
grown past LOG_LIMIT_BYTES.

Durability does not change: a commit is durable once its pages are fsynced in the log
(synchronous=FULL), and a checkpoint only moves them into the main file. An interrupted
checkpoint is SQLite's to recover (the log is read again at the next opening). If the thread
cannot work (its connection fails), the writer takes automatic checkpoints back, so the log
never grows without bound.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

AUTOMATIC_CHECKPOINT_PAGES = 1000  # SQLite's default, restored when the thread cannot work
LOG_LIMIT_BYTES = 64 * 1024 * 1024


class WalCheckpointer:
    """Runs `PRAGMA wal_checkpoint(PASSIVE)` on its own thread after each commit it is told of."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._log = path.with_name(path.name + "-wal")
        self._state = threading.Condition()
        self._asked = 0  # checkpoints asked for
        self._done = 0  # of those, how many a finished checkpoint covered
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.failure: str | None = None  # why the thread stopped working, if it did
        self.checkpoints = 0

    def after_commit(self) -> None:
        """Asks for a checkpoint; commits that come while one runs share the next one."""
        with self._state:
            if self.failure is not None or self._stopping:
                return
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
                self._thread.start()
            self._asked += 1
            self._state.notify_all()

    def before_write(self) -> None:
        """Before a write transaction: if the log has grown past LOG_LIMIT_BYTES, waits for
        the checkpoints asked for, so that the write starts the log over."""
        try:
            if self._log.stat().st_size <= LOG_LIMIT_BYTES:
                return
        except FileNotFoundError:
            return
        with self._state:
            self._state.wait_for(self._caught_up)

    def close(self) -> None:
        """Waits for a running checkpoint and stops the thread. The pages it had not copied yet
        stay in the log, where the last connection's close (or the next checkpoint) copies
        them."""
        with self._state:
            self._stopping = True
            self._state.notify_all()
        if self._thread is not None:
            self._thread.join()

    def _caught_up(self) -> bool:
        return self._done >= self._asked or self.failure is not None or self._stopping

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self._path, isolation_level=None, timeout=30.0)
        except sqlite3.Error as exc:
            self._stop_working(f"cannot open the store for checkpoints: {exc}")
            return
        try:
            while True:
                with self._state:
                    self._state.wait_for(lambda: self._asked > self._done or self._stopping)
                    if self._stopping:
                        return
                    covering = self._asked
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                with self._state:
                    self.checkpoints += 1
                    self._done = covering
                    self._state.notify_all()
        except sqlite3.Error as exc:
            self._stop_working(f"checkpoint failed: {exc}")
        finally:
            conn.close()

    def _stop_working(self, why: str) -> None:
        with self._state:
            self.failure = why
            self._state.notify_all()
