"""`audit verify` through the CLI: an intact trail passes (and gets its head signed); each kind of
tampering is found, named by its first bad record, with exit code 4."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

from cti_exchange.audit.chain import GENESIS, canonical_json, record_hash, sign_head
from cti_exchange.audit.trail import record_event
from cti_exchange.audit.verification import verify_audit_trail
from cti_exchange.clock import utc_now
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.keys.material import generate_key_pair
from cti_exchange.keys.model import KeyUse
from cti_exchange.store.store import Store
from tests.audit.test_verify_first_bad import _insert_forged_record_3
from tests.conftest import PASSPHRASE, Agency


def _verify(agency: Agency, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict, str]:
    result = agency.run("audit", "verify", "--json", *args, env=env)
    return result.exit_code, result.json(), result.stderr


def _sign_head(agency: Agency) -> None:
    code, report, stderr = _verify(agency)
    assert code == 0, stderr
    assert report["signed_now"] is not None or report["unsigned_tail"] == 0


def _rows(conn: sqlite3.Connection) -> dict[int, tuple]:
    return {row[0]: row for row in conn.execute("SELECT * FROM audit_log ORDER BY seq")}


def _assert_tampered(agency: Agency, seq: int, kind: str) -> dict:
    result = agency.run("audit", "verify")
    assert result.exit_code == 4, result.stdout + result.stderr
    assert f"first bad record {seq}:" in result.stderr
    code, report, _ = _verify(agency)
    assert code == 4
    assert report["ok"] is False
    assert report["first_bad"]["seq"] == seq and report["first_bad"]["kind"] == kind, report
    assert report["signed_now"] is None  # a tampered trail is never signed
    return report


def test_intact_trail_passes_and_its_head_is_signed(trail: Agency) -> None:
    result = trail.run("audit", "verify")
    assert result.exit_code == 0, result.stderr
    assert "Audit trail intact: 6 record(s)" in result.stdout
    assert "Signed the head at record 6" in result.stdout

    code, report, _ = _verify(trail)
    assert code == 0
    assert report["ok"] and report["records"] == 6 and report["signed_heads"] == 1
    assert report["last_signed_seq"] == 6 and report["unsigned_tail"] == 0
    assert report["signed_now"] is None  # nothing new to sign


def test_no_sign_and_no_passphrase_leave_the_head_unsigned(trail: Agency) -> None:
    code, report, _ = _verify(trail, "--no-sign")
    assert code == 0 and report["signed_heads"] == 0 and report["unsigned_tail"] == 6

    # Without a terminal and without a passphrase the check still runs; signing is skipped.
    result = trail.run("audit", "verify", env={"CTI_EXCHANGE_PASSPHRASE": None})  # type: ignore[dict-item]
    assert result.exit_code == 0, result.stderr
    assert "the head was not signed: no passphrase available" in result.stderr


def test_edited_record(trail: Agency, store_sql: sqlite3.Connection) -> None:
    _sign_head(trail)
    store_sql.execute("""UPDATE audit_log SET details = '{"day":99}' WHERE seq = 3""")
    _assert_tampered(trail, 3, "edited")


def test_inserted_record(trail: Agency, store_sql: sqlite3.Connection) -> None:
    # The forger renumbers what follows and gives the new record a valid hash and link.
    _insert_forged_record_3(store_sql)
    report = _assert_tampered(trail, 3, "inserted")
    assert "record 4 links to record 2" in report["first_bad"]["reason"]


def test_record_deleted_in_the_middle(trail: Agency, store_sql: sqlite3.Connection) -> None:
    store_sql.execute("DELETE FROM audit_log WHERE seq = 4")
    _assert_tampered(trail, 4, "deleted")


def test_record_deleted_and_the_rest_renumbered(trail: Agency, store_sql: sqlite3.Connection) -> None:
    store_sql.execute("DELETE FROM audit_log WHERE seq = 4")
    store_sql.execute("UPDATE audit_log SET seq = seq - 1 WHERE seq > 4")
    _assert_tampered(trail, 4, "edited")


def test_deleted_tail_after_a_signed_head(trail: Agency, store_sql: sqlite3.Connection) -> None:
    _sign_head(trail)
    store_sql.execute("DELETE FROM audit_log WHERE seq >= 5")
    report = _assert_tampered(trail, 5, "deleted-tail")
    assert report["deleted_tail"] is True
    assert "record(s) 5 to 6 were deleted from the end" in report["first_bad"]["reason"]


def test_forged_head_signature(trail: Agency, store_sql: sqlite3.Connection) -> None:
    _sign_head(trail)
    # The forger rewrites the last record and signs a new head with a key of its own that
    # claims our key id: the signature does not verify with our key ring.
    rows = _rows(store_sql)
    body = {
        "seq": 6,
        "at": rows[6][1],
        "actor": rows[6][2],
        "action": rows[6][3],
        "partner": rows[6][4],
        "details": {"day": 66},
        "prev": rows[6][6],
    }
    store_sql.execute(
        "UPDATE audit_log SET details = ?, hash = ? WHERE seq = 6",
        (canonical_json(body["details"]), record_hash(body)),
    )
    kid = store_sql.execute("SELECT kid FROM audit_heads").fetchone()[0]
    forger_key, _ = generate_key_pair(KeyUse.SIG, "cert-fr", utc_now(), 30)
    forged = sign_head("cert-fr", 6, record_hash(body), forger_key | {"kid": kid}, utc_now())
    store_sql.execute(
        "UPDATE audit_heads SET hash = ?, signed_at = ?, jws = ? WHERE seq = 6",
        (forged.hash, forged.signed_at, forged.jws),
    )
    report = _assert_tampered(trail, 6, "bad-head")
    assert "signature does not verify" in report["first_bad"]["reason"]


def test_rewritten_chain_is_caught_by_the_signed_head(trail: Agency, store_sql: sqlite3.Connection) -> None:
    """Every hash recomputed after an edit: the links hold, the signed head does not."""
    _sign_head(trail)  # head at 6
    record_event(ProfileHome(trail.home), "triage", details={"day": 7})
    _sign_head(trail)  # head at 7
    row = _rows(store_sql)[7]
    body = {
        "seq": 7,
        "at": row[1],
        "actor": row[2],
        "action": row[3],
        "partner": row[4],
        "details": {"day": 77},
        "prev": row[6],
    }
    store_sql.execute(
        "UPDATE audit_log SET details = ?, hash = ? WHERE seq = 7",
        (canonical_json(body["details"]), record_hash(body)),
    )
    report = _assert_tampered(trail, 7, "rewritten")  # narrowed to after the good head at 6
    assert "record(s) 7 were rewritten" in report["first_bad"]["reason"]


def test_retired_keys_verify_old_heads_and_revoked_keys_sign_no_new_ones(trail: Agency) -> None:
    home = ProfileHome(trail.home)
    _sign_head(trail)  # signed with the first signing key
    first_kid = home.keyring().current(KeyUse.SIG).kid
    assert trail.run("keys", "rotate").exit_code == 0  # appends a key-change record
    _sign_head(trail)  # signed with the new key; the retired one still vouches for head 6
    report = verify_audit_trail(home)
    assert report.ok and report.signed_heads == 2 and report.last_signed_seq == 7

    # The old key is revoked; a head it signs afterwards (a thief's) is refused, while the
    # head it signed before the revocation still stands.
    assert trail.run("keys", "revoke", first_kid, "--reason", "test").exit_code == 0
    old_private = home.keys.unlock(PASSPHRASE)[first_kid]
    with Store(home.store_path()) as store:
        seq, head_hash = store.audit.head()
        store.audit.add_signed_head(
            sign_head("cert-fr", seq, head_hash, old_private, utc_now() + timedelta(seconds=1))
        )
        report = verify_audit_trail(ProfileHome(trail.home), store)
    assert not report.ok
    assert [p.kind for p in report.problems] == ["bad-head"]
    assert report.first_bad is not None and report.first_bad.seq == seq
    assert "revoked" in report.first_bad.reason


def test_first_record_must_link_to_the_start(trail: Agency, store_sql: sqlite3.Connection) -> None:
    assert _rows(store_sql)[1][6] == GENESIS
    store_sql.execute("UPDATE audit_log SET prev = ? WHERE seq = 1", ("x" * 43,))
    _assert_tampered(trail, 1, "edited")


def test_signed_head_row_naming_another_key(trail: Agency, store_sql: sqlite3.Connection) -> None:
    _sign_head(trail)
    assert trail.run("keys", "rotate").exit_code == 0
    current = ProfileHome(trail.home).keyring().current(KeyUse.SIG).kid
    store_sql.execute("UPDATE audit_heads SET kid = ? WHERE seq = 6", (current,))
    report = _assert_tampered(trail, 6, "bad-head")
    assert f"it names key {current}, but key" in report["first_bad"]["reason"]
