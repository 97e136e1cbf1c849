"""A store missing a table its migrations made (dropped by hand, a half-restored copy) passes
PRAGMA integrity_check: doctor compares its schema with what the migrations make, and a command
meeting "no such table" reports the damage, not an internal error (walkthrough T7)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from cti_exchange.store.database import Database
from cti_exchange.store.schema_check import damage_behind
from tests.conftest import Agency
from tests.triage.conftest import indicator, put


def test_a_dropped_table_is_damage_for_doctor_and_for_the_command_that_needs_it(cert_in: Agency) -> None:
    stored = indicator("evil.example")
    put(cert_in, [stored])
    path = cert_in.home / "store.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TABLE triage_log")
    conn.close()

    doctor = cert_in.run("doctor", "--offline")
    assert doctor.exit_code == 4, doctor.stdout + doctor.stderr
    assert f"store: the store {path} is damaged: it lacks " in doctor.stderr
    assert "table triage_log" in doctor.stderr and "restore the store from backup" in doctor.stderr

    accepted = cert_in.run("triage", "accept", stored["id"])
    assert accepted.exit_code == 4, accepted.stderr
    assert accepted.stderr == (
        f"cti-exchange: error: the store {path} is damaged: it lacks index triage_log_by_object, "
        "table triage_log; restore the store from backup (or try `sqlite3 FILE .recover`), keeping the damaged copy\n"
    )


def test_a_complete_store_passes_the_schema_check(cert_in: Agency) -> None:
    checks = cert_in.run("doctor", "--offline", "--json").json()["checks"]
    (store,) = [c for c in checks if c["name"] == "store"]
    assert store["status"] == "ok" and "complete" in store["detail"], store


def test_a_query_written_wrong_on_a_complete_store_is_no_damage(cert_in: Agency) -> None:
    # Found on the stop's review: any "no such column" naming a column some table has (value,
    # status, partner) was called damage, sending the operator to restore a backup over a bug.
    put(cert_in, [indicator("evil.example")])
    path = cert_in.home / "store.sqlite"
    with sqlite3.connect(path) as conn:
        try:
            conn.execute("SELECT value FROM triage_log").fetchall()  # a bug: value is an objects column
        except sqlite3.OperationalError as exc:
            bug = exc
    assert damage_behind(bug, path) is None
    with sqlite3.connect(path, isolation_level=None) as conn:
        conn.execute("DROP INDEX triage_log_by_object")
    damage = damage_behind(bug, path)
    assert damage is not None and "index triage_log_by_object" in str(damage)


def test_a_store_path_with_uri_characters_is_read_as_it_is(tmp_path: Path) -> None:
    # Found on the stop's second review: the store was opened as `file:{path}?mode=ro`, so a
    # `?`, `#` or `%` in its path named another file, and damage went unseen.
    folder = tmp_path / "we?ird#dir%20x"
    folder.mkdir()
    Database(folder / "store.sqlite").close()
    with sqlite3.connect(folder / "store.sqlite") as conn:
        conn.execute("DROP TABLE triage_log")
    damage = damage_behind(sqlite3.OperationalError("no such table: triage_log"), folder / "store.sqlite")
    assert damage is not None and "table triage_log" in str(damage)
