"""Push, pull and sync sign the audit trail's head when they end, unattended. They must not
sign over a tampered tail: before, deleting the signed heads (or editing a record after the last
one) and waiting for the next cron sync got the forgery signed with our key."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.audit.test_verify_missing_head import _heads, _rewrite_from
from tests.conftest import Agency


def test_sync_signs_an_intact_tail(trail: Agency, store_sql: sqlite3.Connection) -> None:
    result = trail.run("sync")
    assert result.exit_code == 0, result.stderr
    assert _heads(store_sql) == 1


def test_sync_does_not_sign_after_the_heads_were_deleted(
    trail: Agency, store_sql: sqlite3.Connection, tmp_path: Path
) -> None:
    out = tmp_path / "evidence.jws"
    exported = trail.run("audit", "export", "--since", "2030-01-02", "--until", "2030-01-03", "-o", str(out))
    assert exported.exit_code == 0, exported.stderr
    _rewrite_from(store_sql, 3)  # records 3 on rewritten, every head deleted
    assert trail.run("sync").exit_code == 0
    assert _heads(store_sql) == 0
    assert trail.run("audit", "verify", "--no-sign").exit_code == 4


def test_sync_does_not_sign_a_tail_that_no_longer_links(trail: Agency, store_sql: sqlite3.Connection) -> None:
    assert trail.run("sync").exit_code == 0  # a head over record 6
    store_sql.execute(
        "INSERT INTO audit_log (seq, at, actor, action, partner, details, prev, hash) "
        "SELECT 7, at, actor, 'triage', NULL, '{}', 'forged', 'forged' FROM audit_log WHERE seq = 6"
    )
    assert trail.run("sync").exit_code == 0
    assert _heads(store_sql) == 1  # still only the one over record 6


def test_doctor_warns_of_a_record_that_should_have_a_head(trail: Agency) -> None:
    """A push or pull record no head covers (`audit verify`'s head-expected warning): doctor
    said "ok" before, so the monitoring that runs it never learned why heads stopped."""
    from cti_exchange.audit.trail import record_event
    from cti_exchange.home.profile_home import ProfileHome

    record_event(ProfileHome(trail.home), "pull", partner="cert-in", details={"error": None})
    result = trail.run("doctor", "--offline", "--json")
    (check,) = [c for c in result.json()["checks"] if c["name"] == "audit trail"]
    assert check["status"] == "warn", check
    assert check["detail"].startswith("record 7: no signed head covers this pull record")
    assert "--sign-anyway" in check["fix"]


def test_a_command_under_way_is_no_reason_to_warn(trail: Agency, tmp_path: Path) -> None:
    """While a push, pull or sync runs (the profile lock held), its records have no head until it
    ends: `audit verify`, `doctor` and `audit export` warned (and export refused, exit 4) in that
    window, teaching operators to reach for --sign-anyway."""
    from cti_exchange.audit.trail import record_event
    from cti_exchange.home.lock import profile_lock
    from cti_exchange.home.profile_home import ProfileHome

    record_event(ProfileHome(trail.home), "pull", partner="cert-in", details={"error": None})
    with profile_lock(trail.home):  # as the running sync that wrote it holds it
        report = trail.run("audit", "verify", "--json", "--no-sign").json()
        assert report["ok"] is True and report["warnings"] == []
        exported = trail.run("audit", "export", "--since", "24h", "-o", str(tmp_path / "x.jws"))
        assert exported.exit_code == 0, exported.stderr
    after = trail.run("audit", "verify", "--json", "--no-sign").json()
    assert after["warnings"] == []  # the export signed a head over everything meanwhile
