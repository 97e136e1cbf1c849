"""The store's write-ahead log is checkpointed on a thread of its own after each commit
(store/wal_checkpointer.py), on real SQLite files: committed pages reach the database file
while the store stays open, the log does not grow without bound, a thread that cannot work
hands checkpoints back to SQLite (and nobody waits for it), a store renamed or reached through a
symlink keeps a bounded log, a write waits for the checkpoints once the log is past its
limit, and a writer killed at any moment loses no commit."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from cti_exchange.store.objects import write_objects
from cti_exchange.store.store import Store
from cti_exchange.store.wal_checkpointer import AUTOMATIC_CHECKPOINT_PAGES
from tests.store.test_objects import indicator

ROWS = 2_000  # about 2 MB of pages a commit


def _commit_indicators(store: Store, batch: int) -> None:
    with store.db.transaction() as conn:
        write_objects(
            conn,
            [
                indicator(
                    f"indicator--{batch:08d}-0000-4000-8000-{n:012d}",
                    "2026-01-01T00:00:00.000Z",
                    f"198.51.{batch % 250}.{n % 250}",
                )
                for n in range(ROWS)
            ],
            envelope_id=f"envelope--{batch:08d}-0000-4000-8000-000000000000",
            partner="cert-fr",
            received_at="2026-11-23T10:00:00.000Z",
        )


def _within(seconds: float, condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _checkpointed_at_least(store: Store, count: int) -> bool:
    return store.db.checkpointer.checkpoints >= count


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def test_commits_reach_the_database_file_while_the_store_stays_open(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    wal = tmp_path / "store.sqlite-wal"
    with Store(path) as store:
        _commit_indicators(store, 0)
        # The commit left its pages in the log; the thread copies them into the file.
        assert _within(10, lambda: _size(path) > ROWS * 500), (_size(path), _size(wal))
        one_commit = _size(wal)
        for batch in range(1, 10):
            _commit_indicators(store, batch)
            assert _within(10, partial(_checkpointed_at_least, store, batch + 1))
        # Ten commits, and the log was reused: it holds about one commit's pages, not ten.
        assert _size(wal) < 3 * one_commit
        assert _size(path) > 10 * ROWS * 500
        assert store.db.conn.execute("SELECT count(*) FROM objects").fetchone()[0] == 10 * ROWS
    assert store.db.checkpointer.failure is None


def test_a_write_waits_for_the_checkpoints_once_the_log_is_past_its_limit(tmp_path: Path) -> None:
    """A writer faster than the checkpoints would otherwise never let the log start over:
    past the log limit (LOG_LIMIT_BYTES; here 0, so always) a write begins only once the
    checkpoints asked for are done, and the log is reused rather than grown."""
    path = tmp_path / "store.sqlite"
    with Store(path) as store:
        store.db.checkpointer.log_limit_bytes = 0  # the store's own checkpointer
        _commit_indicators(store, 0)
        one_commit = _size(tmp_path / "store.sqlite-wal")
        for batch in range(1, 8):
            _commit_indicators(store, batch)  # begins after the previous commit's checkpoint
            assert store.db.checkpointer.checkpoints >= batch
        assert _size(tmp_path / "store.sqlite-wal") < 2 * one_commit
        assert store.db.checkpointer.failure is None


def test_a_thread_that_cannot_start_hands_checkpoints_back_to_the_commits(tmp_path: Path) -> None:
    """Threads cannot be started (here: a stack no machine can give; in production, process
    limits): the commit that asked for one still succeeds, SQLite checkpoints inside commits
    again, a write past the log limit does not wait for a thread that never ran, and closing
    works."""
    path = tmp_path / "store.sqlite"
    previous = threading.stack_size()
    with Store(path) as store:
        threading.stack_size(1 << 40)
        try:
            _commit_indicators(store, 0)
        finally:
            threading.stack_size(previous)
        assert "cannot start the checkpoint thread" in str(store.db.checkpointer.failure)
        pages = store.db.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        assert pages == AUTOMATIC_CHECKPOINT_PAGES
        for batch in range(1, 12):  # past 1,000 pages of log: SQLite checkpoints in a commit
            _commit_indicators(store, batch)
        assert _size(path) > 5 * ROWS * 500
    with Store(path) as store:
        assert store.db.conn.execute("SELECT count(*) FROM objects").fetchone()[0] == 12 * ROWS


def test_a_store_renamed_while_open_keeps_its_log(tmp_path: Path) -> None:
    """The thread's connection is opened with the store: opened later by name, it created an
    empty file where the store had been, and SQLite deleted the live log beside it."""
    path = tmp_path / "store.sqlite"
    with Store(path) as store:
        path.rename(tmp_path / "moved.sqlite")
        for batch in range(3):
            _commit_indicators(store, batch)
        assert _within(10, partial(_checkpointed_at_least, store, 1))
        assert store.db.checkpointer.failure is None
    assert not path.exists()  # no empty store left in its place
    with Store(tmp_path / "moved.sqlite") as store:
        assert store.db.conn.execute("SELECT count(*) FROM objects").fetchone()[0] == 3 * ROWS


def test_the_log_limit_holds_for_a_store_reached_through_a_symlink(tmp_path: Path) -> None:
    """SQLite keeps the log beside the real file; the limit (here 0) is checked there, not
    beside the link (where no log ever is)."""
    (tmp_path / "disk").mkdir()
    real = tmp_path / "disk" / "store.sqlite"
    with Store(real):
        pass
    link = tmp_path / "store.sqlite"
    link.symlink_to(real)
    with Store(link) as store:
        store.db.checkpointer.log_limit_bytes = 0
        _commit_indicators(store, 0)
        one_commit = _size(tmp_path / "disk" / "store.sqlite-wal")
        for batch in range(1, 8):
            _commit_indicators(store, batch)
        assert _size(tmp_path / "disk" / "store.sqlite-wal") < 2 * one_commit
        assert not (tmp_path / "store.sqlite-wal").exists()


_WRITER = """
import sys
from cti_exchange.store.store import Store
from tests.store.test_wal_checkpointer import _commit_indicators
first = int(sys.argv[2])
with Store(__import__("pathlib").Path(sys.argv[1])) as store:
    for batch in range(first, first + 40):
        _commit_indicators(store, batch)
        print(batch, flush=True)
"""


@pytest.mark.slow
def test_a_writer_killed_at_any_moment_keeps_every_commit(tmp_path: Path) -> None:
    """SIGKILL lands anywhere: in a commit, between commits, in the middle of a checkpoint the
    thread is copying. Every commit the writer saw return is there afterwards, and nothing
    else is half there."""
    path = tmp_path / "store.sqlite"
    rng = random.Random(20)  # noqa: S311 - kill moments, not secrets
    committed = 0
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    for _ in range(6):
        writer = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), str(committed)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert writer.stdout is not None
        wanted, seen = rng.randint(1, 6), list[int]()
        while len(seen) < wanted:
            line = writer.stdout.readline()
            assert line, "the writer ended before it was killed"
            seen.append(int(line))
        time.sleep(rng.uniform(0, 0.05))
        writer.send_signal(signal.SIGKILL)
        seen += [int(line) for line in writer.stdout.read().split()]
        writer.wait()
        assert writer.returncode == -signal.SIGKILL
        with Store(path) as store:
            assert store.db.integrity_check() == "ok"
            rows = store.db.conn.execute("SELECT count(*) FROM objects").fetchone()[0]
        # Every acknowledged commit is there; a commit the writer was inside when killed is
        # there whole or not at all.
        assert rows % ROWS == 0
        assert rows >= (seen[-1] + 1) * ROWS
        committed = rows // ROWS
    assert committed >= 6
