"""`audit verify|show|export` on what an auditor meets: rows edited by hand into odd types or
text, partners' control characters, file names that are not UTF-8, an expired signing key,
and command-line times Python reads but RFC 3339 does not allow."""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cti_exchange.audit.trail import record_event
from cti_exchange.clock import utc_now
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.keys.model import KeyUse
from tests.conftest import Agency
from tests.exchange.conftest import Exchange, write_iocs


def _first_bad(agency: Agency) -> dict:
    result = agency.run("audit", "verify", "--json", "--no-sign")
    assert result.exit_code == 4, result.stdout + result.stderr
    return result.json()["first_bad"]


def _seqs(agency: Agency, *args: str) -> list[int]:
    result = agency.run("audit", "show", "--json", *args)
    assert result.exit_code == 0, result.stderr
    return [r["seq"] for r in result.json()]


def test_details_edited_into_text_that_is_not_json(trail: Agency, store_sql: sqlite3.Connection) -> None:
    store_sql.execute("UPDATE audit_log SET details = '{not json' WHERE seq = 3")
    assert _first_bad(trail) | {"reason": ""} == {"seq": 3, "kind": "edited", "reason": ""}
    assert _seqs(trail) == [1, 2, 3, 4, 5, 6]  # still listed, as it is stored


def test_columns_edited_into_other_types(trail: Agency, store_sql: sqlite3.Connection) -> None:
    # SQLite keeps whatever type is written: bytes that are not UTF-8, a number for a time.
    store_sql.execute("UPDATE audit_log SET actor = ? WHERE seq = 2", (b"\xffroot",))
    store_sql.execute("UPDATE audit_log SET at = 5 WHERE seq = 4")
    assert _first_bad(trail)["seq"] == 2 and _first_bad(trail)["kind"] == "edited"
    assert trail.run("audit", "show").exit_code == 0


def test_signed_head_with_an_unreadable_signing_time(trail: Agency, store_sql: sqlite3.Connection) -> None:
    assert trail.run("audit", "verify").exit_code == 0  # signs head 6
    store_sql.execute("UPDATE audit_heads SET signed_at = 'garbage'")
    first = _first_bad(trail)
    assert first["seq"] == 6 and first["kind"] == "bad-head"
    assert "signing time 'garbage' is not a time" in first["reason"]


def test_show_by_time_leaves_out_a_record_whose_time_is_unreadable(
    trail: Agency, store_sql: sqlite3.Connection
) -> None:
    store_sql.execute("UPDATE audit_log SET at = 'yesterday' WHERE seq = 3")
    result = trail.run("audit", "show", "--json", "--since", "2030-01-01")
    assert result.exit_code == 0, result.stderr
    assert [r["seq"] for r in result.json()] == [2, 4, 5, 6]
    assert "record(s) 3 left out: their time is unreadable" in result.stderr
    assert _seqs(trail) == [1, 2, 3, 4, 5, 6]


def test_show_and_verify_escape_control_characters(trail: Agency, store_sql: sqlite3.Connection) -> None:
    # A partner's text (a reject detail) with a CSI (C1), an escape and a bidi override.
    record_event(
        ProfileHome(trail.home),
        "reject",
        partner="cert-in",
        details={"detail": "a\x9b2J\x1b[31m\u202eevil"},
    )
    shown = trail.run("audit", "show", "--action", "reject")
    assert shown.exit_code == 0, shown.stderr
    for raw in ("\x9b", "\x1b", "\u202e"):
        assert raw not in shown.stdout
    assert "\\x9b2J" in shown.stdout and "\\u202eevil" in shown.stdout

    # A forged head whose key id carries escape sequences: named, escaped, in the table too.
    assert trail.run("audit", "verify").exit_code == 0
    header = {"alg": "EdDSA", "kid": "\x1b[2J\x9bX", "typ": "cti-audit-head+jws"}
    encoded = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    store_sql.execute("UPDATE audit_heads SET jws = ?", (encoded + ".e30.AAAA",))
    result = trail.run("audit", "verify", "--no-sign")
    assert result.exit_code == 4
    assert "\x1b" not in result.stdout and "\x9b" not in result.stdout
    assert "key \\x1b[2J\\x9bX is not among the keys" in result.stdout


def test_export_to_a_file_name_that_is_not_utf8(trail: Agency, tmp_path: Path) -> None:
    out = tmp_path / "audit-\udcff.jws"  # the byte 0xff in the name, as Python reads it
    result = trail.run("audit", "export", "--since", "2030-01-03", "--until", "2030-01-04", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert out.exists()
    exports = trail.run("audit", "show", "--action", "audit-export", "--json").json()
    assert [e["details"]["file"] for e in exports] == [str(out).replace("\udcff", "\\udcff")]
    assert trail.run("audit", "verify", "--no-sign").exit_code == 0


def test_details_with_keys_that_are_not_strings_still_verify(trail: Agency) -> None:
    record_event(ProfileHome(trail.home), "triage", details={"by_seq": {10: "a", 9: "b"}})
    result = trail.run("audit", "verify", "--no-sign")
    assert result.exit_code == 0, result.stderr


def test_times_python_reads_but_rfc3339_does_not_allow_are_refused(trail: Agency) -> None:
    # `20300104` would otherwise be midnight: as --until it left out the whole day.
    for value in ("20300104", "2030-W01"):
        result = trail.run("audit", "show", "--until", value)
        assert result.exit_code == 2, result.stdout
        assert f"--until: '{value}' is not a time" in result.stderr
    assert _seqs(trail, "--since", "2030-01-04", "--until", "2030-01-04") == [4]
    # An empty value (an unset shell variable) is no filter at all: refused too.
    empty = trail.run("audit", "show", "--since", "")
    assert empty.exit_code == 2 and "--since: '' is not a time" in empty.stderr


def test_pull_with_an_expired_signing_key_leaves_no_head_verify_would_reject(
    exchange: Exchange, tmp_path: Path
) -> None:
    fr, india = exchange.fr, exchange.india
    assert fr.run("push", str(write_iocs(tmp_path / "a.csv", 3)), "--to", "cert-in").exit_code == 0
    home = ProfileHome(india.home)
    ring = home.keyring()
    expired = utc_now() - timedelta(seconds=1)
    keys = tuple(replace(k, expires=expired) if k.use is KeyUse.SIG else k for k in ring.keys)
    home.keys.save_keyring(ring.replace_keys(keys, issued=utc_now()))
    pulled = india.run("pull")
    assert pulled.exit_code == 0, pulled.stderr

    result = india.run("audit", "verify", "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    report = result.json()
    assert report["ok"] and report["unsigned_tail"] > 0
    assert "expired" in report["not_signed"]


def _rfc8259(text: str) -> Any:
    """JSON as RFC 8259 has it: Python's parser also takes NaN and Infinity, which jq and
    every strict parser refuse."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_details_edited_to_hold_a_number_json_cannot_write(
    trail: Agency, store_sql: sqlite3.Connection, number: str
) -> None:
    # 1e999 is valid JSON text, but Python reads it as inf and would write back `Infinity`.
    stored = f'{{"day":{number}}}'
    store_sql.execute("UPDATE audit_log SET details = ? WHERE seq = 3", (stored,))
    shown = trail.run("audit", "show", "--json")
    assert shown.exit_code == 0, shown.stderr
    records = _rfc8259(shown.stdout)
    assert records[2]["details"] == stored  # listed as stored, like any text that is not JSON
    verified = trail.run("audit", "verify", "--json", "--no-sign")
    assert verified.exit_code == 4
    assert _rfc8259(verified.stdout)["first_bad"]["kind"] == "edited"


def test_unsigned_tail_rewritten_with_nan_is_caught_not_printed(
    trail: Agency, store_sql: sqlite3.Connection, tmp_path: Path
) -> None:
    # No head is signed yet: a forger recomputes the hash over NaN as Python's json writes it,
    # so the links hold. Read back as JSON, such a record could only ever be printed as NaN.
    row = store_sql.execute("SELECT * FROM audit_log WHERE seq = 6").fetchone()
    body = dict(zip(("seq", "at", "actor", "action", "partner"), row[:5], strict=True))
    body |= {"details": {"day": float("nan")}, "prev": row[6]}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    forged_hash = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=")
    store_sql.execute(
        "UPDATE audit_log SET details = ?, hash = ? WHERE seq = 6", ('{"day":NaN}', forged_hash.decode())
    )
    verified = trail.run("audit", "verify", "--json", "--no-sign")
    assert verified.exit_code == 4, verified.stdout
    assert _rfc8259(verified.stdout)["first_bad"] | {"reason": ""} == {
        "seq": 6,
        "kind": "edited",
        "reason": "",
    }
    shown = trail.run("audit", "show", "--json")
    assert _rfc8259(shown.stdout)[5]["details"] == '{"day":NaN}'
    out = tmp_path / "extract.jws"
    exported = trail.run("audit", "export", "--since", "2030-01-01", "--until", "2030-01-09", "-o", str(out))
    assert exported.exit_code == 4, exported.stderr  # no extract holding NaN is ever signed
    assert not out.exists()


def test_numbers_json_cannot_write_are_recorded_as_text(trail: Agency, tmp_path: Path) -> None:
    home = ProfileHome(trail.home)
    record_event(home, "triage", details={"ratio": float("nan"), "bounds": [float("-inf"), 1.5]})
    verified = trail.run("audit", "verify", "--json")
    assert verified.exit_code == 0, verified.stdout + verified.stderr
    assert _rfc8259(verified.stdout)["ok"] is True
    shown = trail.run("audit", "show", "--json", "--action", "triage")
    assert _rfc8259(shown.stdout)[-1]["details"] == {"ratio": "NaN", "bounds": ["-Infinity", 1.5]}
    out = tmp_path / "extract.jws"
    exported = trail.run(
        "audit", "export", "--since", "2000-01-01", "--until", "2999-12-31", "-o", str(out), "--json"
    )
    assert exported.exit_code == 0, exported.stderr
    _rfc8259(exported.stdout)
    _rfc8259(base64.urlsafe_b64decode(out.read_text().split(".")[1] + "==").decode())


def test_details_edited_into_json_nested_too_deep_to_read(
    trail: Agency, store_sql: sqlite3.Connection
) -> None:
    store_sql.execute("UPDATE audit_log SET details = ? WHERE seq = 3", ("[" * 100_000 + "]" * 100_000,))
    assert _first_bad(trail)["seq"] == 3 and _first_bad(trail)["kind"] == "edited"
    assert _seqs(trail) == [1, 2, 3, 4, 5, 6]  # still listed, as it is stored
