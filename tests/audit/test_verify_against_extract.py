"""`audit verify --against EXTRACT`: an extract we exported earlier and kept off the machine is
an anchor. Someone who holds the store and the unlocked key can rewrite the whole chain, drop
what gives it away and sign new heads: the trail alone then verifies. The records the extract
holds must still be in the trail as they were, and the comparison says which are not."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from cti_exchange.audit.chain import record_hash, sign_head
from cti_exchange.clock import utc_now
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.keys.model import KeyUse
from tests.conftest import PASSPHRASE, Agency, make_agency


def _export(trail: Agency, tmp_path: Path) -> Path:
    out = tmp_path / "evidence.jws"
    exported = trail.run("audit", "export", "--since", "2030-01-02", "--until", "2030-01-06", "-o", str(out))
    assert exported.exit_code == 0, exported.stderr
    return out


def _forge_with_the_key(trail: Agency, conn: sqlite3.Connection, *, edit: int | None, keep_to: int) -> None:
    """Drops the records after `keep_to` (the export's record among them), edits record `edit`
    and re-hashes every record from it on, deletes every head, and signs a new one over the
    forged trail with our own key, as a thief of the store and the passphrase would."""
    conn.execute("DELETE FROM audit_log WHERE seq > ?", (keep_to,))
    conn.execute("DELETE FROM audit_heads")
    if edit is not None:
        prev = conn.execute("SELECT hash FROM audit_log WHERE seq = ?", (edit - 1,)).fetchone()[0]
        rows = conn.execute(
            "SELECT seq, at, actor, action, partner, details FROM audit_log WHERE seq >= ? ORDER BY seq",
            (edit,),
        ).fetchall()
        for number, at, actor, action, partner, details in rows:
            data = json.loads(details) | ({"day": 99} if number == edit else {})
            body = {"seq": number, "at": at, "actor": actor, "action": action, "partner": partner}
            digest = record_hash(body | {"details": data, "prev": prev})
            conn.execute(
                "UPDATE audit_log SET details = ?, prev = ?, hash = ? WHERE seq = ?",
                (json.dumps(data, sort_keys=True, separators=(",", ":")), prev, digest, number),
            )
            prev = digest
    last_seq, last_hash = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    home = ProfileHome(trail.home)
    head = sign_head(
        "cert-fr", last_seq, last_hash, home.private_keys()[home.keyring().current(KeyUse.SIG).kid], utc_now()
    )
    conn.execute(
        "INSERT INTO audit_heads (seq, hash, signed_at, kid, jws) VALUES (?, ?, ?, ?, ?)",
        (head.seq, head.hash, head.signed_at, head.kid, head.jws),
    )


@pytest.fixture(autouse=True)
def _passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTI_EXCHANGE_PASSPHRASE", PASSPHRASE)  # the forger's unlock, in this process


def test_an_intact_trail_holds_against_its_extract(trail: Agency, tmp_path: Path) -> None:
    evidence = _export(trail, tmp_path)
    result = trail.run("audit", "verify", "--against", str(evidence), "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["ok"] is True and result.json()["problems"] == []


def test_a_chain_rewritten_and_signed_with_the_key_shows_against_the_extract(
    trail: Agency, store_sql: sqlite3.Connection, tmp_path: Path
) -> None:
    evidence = _export(trail, tmp_path)
    _forge_with_the_key(trail, store_sql, edit=3, keep_to=6)
    alone = trail.run("audit", "verify", "--no-sign")
    assert alone.exit_code == 0, alone.stdout + alone.stderr  # the limit AUDIT.md states

    result = trail.run("audit", "verify", "--against", str(evidence))
    assert result.exit_code == 4, result.stdout + result.stderr
    assert (
        f"first bad record 3: 4 record(s) differ from extract {evidence} (3 to 6): the trail was "
        "rewritten since that extract was exported" in result.stderr
    )
    report = trail.run("audit", "verify", "--against", str(evidence), "--json").json()
    assert [(p["seq"], p["kind"]) for p in report["problems"]] == [(3, "rewritten")]
    assert report["signed_now"] is None


def test_records_cut_off_the_end_show_against_the_extract(
    trail: Agency, store_sql: sqlite3.Connection, tmp_path: Path
) -> None:
    evidence = _export(trail, tmp_path)
    _forge_with_the_key(trail, store_sql, edit=None, keep_to=4)
    assert trail.run("audit", "verify", "--no-sign").exit_code == 0
    result = trail.run("audit", "verify", "--against", str(evidence), "--json")
    assert result.exit_code == 4
    problems = result.json()["problems"]
    assert [(p["seq"], p["kind"]) for p in problems] == [(5, "deleted")]
    assert problems[0]["reason"] == (
        f"missing: 2 record(s) of extract {evidence} (5 to 6) are no longer in the trail"
    )


def test_an_extract_that_no_longer_verifies_or_is_not_ours_is_refused(trail: Agency, tmp_path: Path) -> None:
    evidence = _export(trail, tmp_path)
    header, payload, signature = evidence.read_text().strip().split(".")
    forged = tmp_path / "forged.jws"
    forged.write_text(f"{header}.{payload}.{'A' * len(signature)}\n")
    result = trail.run("audit", "verify", "--against", str(forged))
    assert result.exit_code == 4
    assert result.stderr.startswith(
        f"cti-exchange: error: --against {forged}: the extract's signature does not verify"
    )

    other = make_agency(tmp_path / "other", "cert-in", "CERT-In")
    theirs = tmp_path / "theirs.jws"
    assert other.run("audit", "export", "--since", "2000-01-01", "-o", str(theirs)).exit_code == 0
    refused = trail.run("audit", "verify", "--against", str(theirs))
    assert refused.exit_code == 2 and f"{theirs} is an extract of cert-in, not ours" in refused.stderr
