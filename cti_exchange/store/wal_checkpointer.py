"""Checkpointing the store's write-ahead log on a second thread, off the writer's path.

In WAL mode SQLite appends each commit's pages to the `-wal` file and, by default, copies them
into the database file (a checkpoint, with its own fsync) inside the COMMIT that takes the log
past 1,000 pages. For an envelope of 10,000 indicators that copy was a third of the commit and
a tenth of storing it (docs/BENCHMARKS.md). Here the writing connection turns automatic
checkpoints off, and after each commit a thread with a connection of its own runs a PASSIVE
checkpoint, which never waits for or blocks the writer or readers, while the writer goes on
with the next envelope. SQLite does the copy without holding Python's lock, so on a machine
with two cores it runs beside the writer.

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


class WalCheckpointer:
    """Runs `PRAGMA wal_checkpoint(PASSIVE)` on its own thread after each commit it is told of."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._wanted = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.failure: str | None = None  # why the thread stopped working, if it did
        self.checkpoints = 0

    def after_commit(self) -> None:
        """Asks for a checkpoint; commits that come while one runs share the next one."""
        if self.failure is not None or self._stopping:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
            self._thread.start()
        self._wanted.set()

    def close(self) -> None:
        """Waits for a running checkpoint and stops the thread. The pages it had not copied yet
        stay in the log, where the last connection's close (or the next checkpoint) copies
        them."""
        self._stopping = True
        self._wanted.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self._path, isolation_level=None, timeout=30.0, check_same_thread=True)
        except sqlite3.Error as exc:
            self.failure = f"cannot open the store for checkpoints: {exc}"
            return
        try:
            while True:
                self._wanted.wait()
                self._wanted.clear()
                if self._stopping:
                    return
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                self.checkpoints += 1
        except sqlite3.Error as exc:
            self.failure = f"checkpoint failed: {exc}"
        finally:
            conn.close()
