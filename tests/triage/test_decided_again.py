"""The same decision again leaves the object as it was (found on a walkthrough): `triage accept`
on an accepted value used to say "accepted", put the second analyst and a new time over the
first, and write a second triage and audit record. Now who decided and when stay, the command
says the value was already accepted, and nothing is recorded. Another note is a change (it
replaces the note, with its author), as is another decision."""

from __future__ import annotations

import sqlite3

from tests.conftest import Agency
from tests.triage.conftest import indicator, put, store_path


def _row(agency: Agency, value: str) -> tuple[str, str, str, str | None]:
    with sqlite3.connect(store_path(agency)) as conn:
        return conn.execute(
            "SELECT status, status_by, status_at, status_note FROM objects WHERE value = ? AND is_current = 1",
            (value,),
        ).fetchone()


def _records(agency: Agency) -> tuple[int, int]:
    """(triage_log records, triage audit records)."""
    with sqlite3.connect(store_path(agency)) as conn:
        logged = conn.execute("SELECT count(*) FROM triage_log").fetchone()[0]
        audited = conn.execute("SELECT count(*) FROM audit_log WHERE action = 'triage'").fetchone()[0]
    return logged, audited


def test_accepting_an_accepted_value_again_keeps_who_and_when(cert_in: Agency) -> None:
    put(cert_in, [indicator("twice.example")])
    first = cert_in.run(
        "triage",
        "accept",
        "twice.example",
        "--note",
        "seen in sandbox",
        env={"CTI_EXCHANGE_ANALYST": "amelie"},
    )
    assert first.exit_code == 0, first.stderr
    decided = _row(cert_in, "twice.example")

    again = cert_in.run("triage", "accept", "twice.example", env={"CTI_EXCHANGE_ANALYST": "bob"})
    assert again.exit_code == 0, again.stderr
    assert _row(cert_in, "twice.example") == decided  # amelie, her time, her note
    assert _records(cert_in) == (1, 1)
    assert "accepted: " not in again.stdout
    assert f"already accepted, left as it was: 1 object(s) (by amelie at {decided[2]})" in again.stdout

    same_note = cert_in.run("triage", "accept", "twice.example", "--note", "seen in sandbox", "--json")
    assert same_note.exit_code == 0 and same_note.json()["object_ids"] == []
    # Nothing was decided now: no fresh moment for it (stop 26 left one; stop 27).
    assert same_note.json()["decided_at"] is None
    assert same_note.json()["already"] == [
        {"object_id": same_note.json()["already"][0]["object_id"], "by": "amelie", "at": decided[2]}
    ]
    assert _records(cert_in) == (1, 1)


def test_another_note_or_decision_is_a_change(cert_in: Agency) -> None:
    put(cert_in, [indicator("noted.example")])
    assert (
        cert_in.run("triage", "accept", "noted.example", env={"CTI_EXCHANGE_ANALYST": "amelie"}).exit_code
        == 0
    )
    noted = cert_in.run(
        "triage",
        "accept",
        "noted.example",
        "--note",
        "blocked at the proxy",
        env={"CTI_EXCHANGE_ANALYST": "bob"},
    )
    assert noted.exit_code == 0 and "accepted: 1 object(s) by bob" in noted.stdout
    assert _row(cert_in, "noted.example")[::3] == ("accepted", "blocked at the proxy")
    assert _row(cert_in, "noted.example")[1] == "bob"
    assert _records(cert_in) == (2, 2)

    rejected = cert_in.run("triage", "reject", "noted.example", env={"CTI_EXCHANGE_ANALYST": "amelie"})
    assert rejected.exit_code == 0 and "rejected: 1 object(s) by amelie" in rejected.stdout
    assert _row(cert_in, "noted.example")[:2] == ("rejected", "amelie")
    assert _row(cert_in, "noted.example")[3] is None
    assert _records(cert_in) == (3, 3)


def test_a_new_spelling_is_decided_and_the_decided_one_kept(cert_in: Agency) -> None:
    put(cert_in, [indicator("spelt.example")])
    assert (
        cert_in.run("triage", "accept", "spelt.example", env={"CTI_EXCHANGE_ANALYST": "amelie"}).exit_code
        == 0
    )
    put(cert_in, [indicator("SPELT.EXAMPLE.")], envelope_id="envelope--later")

    both = cert_in.run("triage", "accept", "spelt.example", env={"CTI_EXCHANGE_ANALYST": "bob"})
    assert both.exit_code == 0, both.stderr
    assert "accepted: 1 object(s) by bob" in both.stdout
    assert "already accepted, left as it was: 1 object(s) (by amelie at" in both.stdout
    assert _row(cert_in, "spelt.example")[:2] == ("accepted", "amelie")
    assert _row(cert_in, "SPELT.EXAMPLE.")[:2] == ("accepted", "bob")
    assert _records(cert_in) == (2, 2)
