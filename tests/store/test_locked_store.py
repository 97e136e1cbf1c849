"""A store another process holds locked (an sqlite3 shell in an exclusive transaction, a backup
tool) ends in the documented exit 5 and says so, not in "check the path in config.toml" after a
silent wait (walkthrough M1)."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cti_exchange.store import database
from tests.conftest import Agency


@contextmanager
def held_exclusively(path: Path, seconds: float) -> Iterator[None]:
    """As `sqlite3 store.sqlite` with `PRAGMA locking_mode=EXCLUSIVE; BEGIN EXCLUSIVE` would."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA locking_mode=EXCLUSIVE")
    conn.execute("BEGIN EXCLUSIVE")
    conn.execute("CREATE TABLE held_by_a_shell (x)")

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


def test_a_store_locked_past_the_wait_ends_with_exit_5(
    cert_in: Agency, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "BUSY_TIMEOUT_SECONDS", 2.0)  # the wait, shortened (a tuning constant)
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
