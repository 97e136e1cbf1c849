"""Deleting the signed heads must not let `audit verify` sign a rewritten trail with our key:
records the product always covers with a signed head show when none covers them."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from cti_exchange.audit.chain import record_hash
from cti_exchange.audit.trail import record_event
from cti_exchange.home.profile_home import ProfileHome
from tests.conftest import Agency


def _rewrite_from(conn: sqlite3.Connection, seq: int) -> None:
    """What an attacker with the store but not the key does: edits record `seq`, re-hashes
    every record from it on, and deletes every signed head."""
    rows = conn.execute(
        "SELECT seq, at, actor, action, partner, details FROM audit_log WHERE seq >= ? ORDER BY seq", (seq,)
    ).fetchall()
    prev = conn.execute("SELECT hash FROM audit_log WHERE seq = ?", (seq - 1,)).fetchone()[0]
    for number, at, actor, action, partner, details in rows:
        data = json.loads(details) | ({"day": 99} if number == seq else {})
        body = {"seq": number, "at": at, "actor": actor, "action": action, "partner": partner}
        body |= {"details": data, "prev": prev}
        digest = record_hash(body)
        conn.execute(
            "UPDATE audit_log SET details = ?, prev = ?, hash = ? WHERE seq = ?",
            (json.dumps(data, sort_keys=True, separators=(",", ":")), prev, digest, number),
        )
        prev = digest
    conn.execute("DELETE FROM audit_heads")


def _heads(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT count(*) FROM audit_heads").fetchone()[0]


def test_an_export_record_left_without_its_head_is_tampering(
    trail: Agency, store_sql: sqlite3.Connection, tmp_path: Path
) -> None:
    out = tmp_path / "evidence.jws"
    exported = trail.run("audit", "export", "--since", "2030-01-02", "--until", "2030-01-03", "-o", str(out))
    assert exported.exit_code == 0, exported.stderr
    # The export's record (7) and a head over it were written together.
    assert store_sql.execute("SELECT action FROM audit_log WHERE seq = 7").fetchone() == ("audit-export",)
    assert (7,) in store_sql.execute("SELECT seq FROM audit_heads").fetchall()
    record_event(ProfileHome(trail.home), "triage", details={"day": 8})

    _rewrite_from(store_sql, 3)
    result = trail.run("audit", "verify")
    assert result.exit_code == 4, result.stdout + result.stderr
    assert "first bad record 7: this audit-export record was written in one transaction" in result.stderr
    report = trail.run("audit", "verify", "--json", "--sign-anyway").json()
    assert report["first_bad"]["kind"] == "missing-head" and report["signed_now"] is None
    assert _heads(store_sql) == 0  # never signed, not even with --sign-anyway


@pytest.mark.parametrize("action", ["pull", "push", "audit-export"])  # audit-export: an older one
def test_a_record_a_command_covers_when_it_ends_is_a_warning_that_blocks_signing(
    trail: Agency, store_sql: sqlite3.Connection, action: str
) -> None:
    # A command killed after writing its record, before signing its head (or an older export).
    record_event(ProfileHome(trail.home), action, partner="cert-in", details={"error": None})
    result = trail.run("audit", "verify")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert f"warning: record 7: no signed head covers this {action} record" in result.stderr
    assert "the head was not signed: record 7 should have a signed head over it" in result.stderr
    assert "--sign-anyway" in result.stderr
    assert _heads(store_sql) == 0
    report = trail.run("audit", "verify", "--json").json()
    assert report["ok"] is True and report["signed_now"] is None
    assert [(w["seq"], w["kind"]) for w in report["warnings"]] == [(7, "head-expected")]

    signed = trail.run("audit", "verify", "--sign-anyway")
    assert signed.exit_code == 0 and "Signed the head at record 7" in signed.stdout, signed.stderr
    again = trail.run("audit", "verify", "--json").json()
    assert again["warnings"] == [] and again["unsigned_tail"] == 0


def test_heads_deleted_under_a_rewritten_trail_are_not_signed_over(
    trail: Agency, store_sql: sqlite3.Connection, tmp_path: Path
) -> None:
    record_event(ProfileHome(trail.home), "pull", partner="cert-in", details={"error": None})
    assert trail.run("audit", "verify", "--sign-anyway").exit_code == 0  # head over 7, the pull
    assert trail.run("audit", "verify", "--json").json()["warnings"] == []

    _rewrite_from(store_sql, 3)
    result = trail.run("audit", "verify", "--json")
    assert result.exit_code == 0
    report = result.json()
    assert report["signed_now"] is None and report["warnings"][0]["seq"] == 7
    assert _heads(store_sql) == 0  # the forgery is not signed with our key
    # Nor does an export sign a head over it.
    exported = trail.run(
        "audit", "export", "--since", "2030-01-02", "--until", "2030-01-03", "-o", str(tmp_path / "x.jws")
    )
    assert exported.exit_code == 4, exported.stdout + exported.stderr
    assert "needs a look before we sign evidence" in exported.stderr
    assert _heads(store_sql) == 0 and not (tmp_path / "x.jws").exists()
