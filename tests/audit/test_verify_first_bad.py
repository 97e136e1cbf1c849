"""`audit verify` names the record where the trail changed, not a genuine record before it,
when a signed head covers the change too (docs/AUDIT.md, the findings table)."""

from __future__ import annotations

import sqlite3

from cti_exchange.audit.chain import canonical_json, record_hash
from tests.conftest import Agency


def _insert_forged_record_3(conn: sqlite3.Connection) -> None:
    """A forged record 3, linked to record 2 and correctly hashed; what followed is renumbered
    (4 to 7) without re-hashing, as a forger without the key would."""
    prev = conn.execute("SELECT hash FROM audit_log WHERE seq = 2").fetchone()[0]
    conn.execute("UPDATE audit_log SET seq = seq + 100 WHERE seq >= 3")
    conn.execute("UPDATE audit_log SET seq = seq - 99 WHERE seq >= 103")
    body = {
        "seq": 3,
        "at": "2030-01-02T18:00:00.000Z",
        "actor": "intruder",
        "action": "triage",
        "partner": "cert-de",
        "details": {"day": 2},
        "prev": prev,
    }
    conn.execute(
        "INSERT INTO audit_log (seq, at, actor, action, partner, details, prev, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            3,
            body["at"],
            "intruder",
            "triage",
            "cert-de",
            canonical_json(body["details"]),
            prev,
            record_hash(body),
        ),
    )


def _report(agency: Agency) -> dict:
    result = agency.run("audit", "verify", "--json", "--no-sign")
    assert result.exit_code == 4, result.stdout + result.stderr
    return result.json()


def test_a_record_inserted_under_a_signed_head_is_the_first_bad_record(
    trail: Agency, store_sql: sqlite3.Connection
) -> None:
    assert trail.run("audit", "verify").exit_code == 0  # signs the head over record 6
    _insert_forged_record_3(store_sql)
    result = trail.run("audit", "verify", "--no-sign")
    assert result.exit_code == 4
    assert "first bad record 3: inserted: record 4 links to record 2" in result.stderr, result.stderr
    report = _report(trail)
    assert report["first_bad"]["seq"] == 3 and report["first_bad"]["kind"] == "inserted"
    # The head over record 6 no longer matching is reported too, from the inserted record on.
    assert [(p["seq"], p["kind"]) for p in report["problems"]] == [(3, "inserted"), (3, "rewritten")]


def test_a_record_deleted_under_a_signed_head_and_the_rest_renumbered(
    trail: Agency, store_sql: sqlite3.Connection
) -> None:
    assert trail.run("audit", "verify").exit_code == 0
    store_sql.execute("DELETE FROM audit_log WHERE seq = 4")
    store_sql.execute("UPDATE audit_log SET seq = seq - 1 WHERE seq > 4")
    report = _report(trail)
    assert report["first_bad"]["seq"] == 4 and report["first_bad"]["kind"] == "edited", report
