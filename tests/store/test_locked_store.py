"""A store another process holds locked (an sqlite3 shell in an exclusive transaction, a backup
tool) ends in the documented exit 5 and says so, not in "check the path in config.toml" after a
silent wait (walkthrough M1)."""

from __future__ import annotations

import os
import pty
import select
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from tests.conftest import PASSPHRASE, Agency, set_store_wait
from tests.triage.conftest import indicator, put

_RUN = "from cti_exchange.cli.entry import main; import sys; sys.argv[0] = 'cti-exchange'; main()"


@contextmanager
def _held(path: Path, seconds: float, *statements: str) -> Iterator[None]:
    """Another process's connection running `statements`, rolled back after `seconds`."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for statement in statements:
        conn.execute(statement)

    def release() -> None:
        time.sleep(seconds)
        conn.execute("ROLLBACK")
        conn.close()

    thread = threading.Thread(target=release)
    thread.start()
    try:
        yield
    finally:
        thread.join()


def held_exclusively(path: Path, seconds: float) -> AbstractContextManager[None]:
    """As `sqlite3 store.sqlite` with `PRAGMA locking_mode=EXCLUSIVE; BEGIN EXCLUSIVE` would."""
    return _held(
        path,
        seconds,
        "PRAGMA locking_mode=EXCLUSIVE",
        "BEGIN EXCLUSIVE",
        "CREATE TABLE held_by_a_shell (x)",
    )


def written_by_another_process(path: Path, seconds: float) -> AbstractContextManager[None]:
    """As an IDS export or another sync would: a write transaction held, reads still go on."""
    return _held(path, seconds, "BEGIN IMMEDIATE")


def test_a_store_locked_past_the_wait_ends_with_exit_5(cert_in: Agency) -> None:
    set_store_wait(cert_in, 2)  # the wait, shortened in config.toml
    path = cert_in.home / "store.sqlite"
    with held_exclusively(path, seconds=4):
        result = cert_in.run("triage", "list")
    assert result.exit_code == 5, result.stderr
    assert result.stderr.count("\n") == 1
    assert f"the store {path} is locked by another process" in result.stderr
    assert "retry" in result.stderr and "config.toml" not in result.stderr


def test_a_store_released_during_the_wait_is_used(cert_in: Agency) -> None:
    with held_exclusively(cert_in.home / "store.sqlite", seconds=2.5):
        result = cert_in.run("status")
    assert result.exit_code == 0, result.stderr


def test_a_decision_behind_another_writer_past_the_wait_ends_with_exit_5(cert_in: Agency) -> None:
    # The opening read succeeds (WAL), so the wait is at the write: it ended in "internal
    # error: OperationalError: database is locked" (exit 70), and a sync's log said the same
    # (concurrency walkthrough F1, F2).
    set_store_wait(cert_in, 2)  # the wait, shortened in config.toml
    found = indicator("evil.example")
    put(cert_in, [found])
    with written_by_another_process(cert_in.home / "store.sqlite", seconds=4):
        result = cert_in.run("triage", "accept", found["id"])
    assert result.exit_code == 5, result.stderr
    assert result.stderr.count("\n") == 1 and "is locked by another process" in result.stderr
    assert cert_in.run("triage", "accept", found["id"]).exit_code == 0  # once it is released


def test_a_decision_behind_a_short_write_waits_for_it(cert_in: Agency) -> None:
    found = indicator("evil.example")
    put(cert_in, [found])
    with written_by_another_process(cert_in.home / "store.sqlite", seconds=2.5):
        result = cert_in.run("triage", "accept", found["id"])
    assert result.exit_code == 0, result.stderr


def test_a_write_that_waits_for_another_writer_says_so_on_a_terminal(cert_in: Agency) -> None:
    # The opening's read goes on in WAL mode, so the wait was at the write, in silence: 16 to
    # 32 s with nothing said behind analysts' exports (concurrency walkthrough F2). stderr is a
    # real terminal here (a pty), as the analyst's is; cron mail is not told.
    found = indicator("evil.example")
    put(cert_in, [found])
    controller, terminal = pty.openpty()
    env = {**os.environ, "CTI_EXCHANGE_HOME": str(cert_in.home), "CTI_EXCHANGE_PASSPHRASE": PASSPHRASE}
    with written_by_another_process(cert_in.home / "store.sqlite", seconds=3):
        done = subprocess.run(
            [sys.executable, "-c", _RUN, "triage", "accept", found["id"]],
            env=env,
            stdout=subprocess.PIPE,
            stderr=terminal,
            timeout=60,
        )
    os.close(terminal)
    said = b""
    while select.select([controller], [], [], 0)[0]:
        try:
            chunk = os.read(controller, 4096)
        except OSError:
            break
        if not chunk:
            break
        said += chunk
    os.close(controller)
    assert done.returncode == 0, said
    assert b"is being written by another process: waiting for it (at most 30 s)" in said
