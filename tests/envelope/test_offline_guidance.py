"""Offline exchange with a partner reached only by files (`seal` / `open`, no TAXII): once the
missing file is opened, `open` names the held records and the one to accept, and a refused
file says what to do next."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Agency
from tests.envelope.conftest import indicator, make_bundle

from .test_cli_envelope import Pair, bundle_file, count, open_json, rows, seal


def _open_records(agency: Agency) -> list[tuple[str, str]]:
    return rows(agency, "SELECT envelope_id, reason FROM quarantine WHERE resolved_at IS NULL ORDER BY id")


def test_opening_the_missing_file_lets_the_held_ones_through(partnered: Pair, tmp_path: Path) -> None:
    """A partner reached only by files has no pull to open held envelopes again: `open` does
    it once it accepts a file, and names those still held behind another missing one."""
    cert_fr, cert_in = partnered
    bundle = bundle_file(tmp_path)
    first, second, third, fourth = (seal(cert_fr, bundle, "cert-in", name=f"e{i}.json") for i in (1, 2, 3, 4))

    # The files arrive out of order (a courier, several e-mails): 4 and 2 are held for the gap.
    held = {}
    for envelope in (fourth, second):
        code, verdict, _ = open_json(cert_in, envelope)
        assert code == 4 and verdict["reason"] == "sequence-gap"
        held[envelope] = verdict["envelope_id"]
    assert [reason for _, reason in _open_records(cert_in)] == ["sequence-gap"] * 2

    # 1 arrives: 2 follows it; 4 still waits for 3, and the message says what to do.
    result = cert_in.run("open", str(first))
    assert result.exit_code == 0, result.stderr
    assert "Then 1 envelope(s) from cert-fr held behind it, accepted" in result.stdout
    assert "1 envelope(s) from cert-fr still held in quarantine behind a gap (record(s) 1)" in result.stderr
    assert "open its file and they follow, or `quarantine accept-gap 1`" in result.stderr
    assert rows(cert_in, "SELECT sequence FROM envelopes_in ORDER BY sequence") == [(1,), (2,)]
    assert [envelope_id for envelope_id, _ in _open_records(cert_in)] == [held[fourth]]

    # 3 arrives: 4 follows, and nothing is left in quarantine.
    code, verdict, stderr = open_json(cert_in, third)
    assert code == 0, stderr
    assert verdict["released_envelopes"] == [held[fourth]] and verdict["still_held"] == []
    assert verdict["closed_records"] == [] and verdict["released_objects"] == 3
    assert _open_records(cert_in) == []
    assert rows(cert_in, "SELECT sequence FROM envelopes_in ORDER BY sequence") == [(1,), (2,), (3,), (4,)]
    resolutions = rows(cert_in, "SELECT resolution FROM quarantine ORDER BY id")
    assert resolutions == [("accepted when retried (held for sequence-gap)",)] * 2

    # Opening a released one's file again accepts nothing twice, and is not an alert.
    code, verdict, _ = open_json(cert_in, fourth)
    assert code == 0 and verdict["verdict"] == "already-opened"
    assert count(cert_in, "envelopes_in") == 4 and _open_records(cert_in) == []


def test_a_dry_run_releases_nothing_held(partnered: Pair, tmp_path: Path) -> None:
    cert_fr, cert_in = partnered
    bundle = bundle_file(tmp_path)
    first, second = (seal(cert_fr, bundle, "cert-in", name=f"e{i}.json") for i in (1, 2))
    assert open_json(cert_in, second)[0] == 4
    code, verdict, stderr = open_json(cert_in, first, "--dry-run")
    assert code == 0 and verdict["verdict"] == "verified", stderr
    assert verdict["released_envelopes"] == [] and count(cert_in, "envelopes_in") == 0
    assert [reason for _, reason in _open_records(cert_in)] == ["sequence-gap"]


def test_a_gap_refusal_says_how_to_fill_or_accept_it(partnered: Pair, tmp_path: Path) -> None:
    cert_fr, cert_in = partnered
    bundle = bundle_file(tmp_path)
    seal(cert_fr, bundle, "cert-in", name="e1.json")
    second = seal(cert_fr, bundle, "cert-in", name="e2.json")
    code, _, stderr = open_json(cert_in, second, "--dry-run")
    assert code == 4 and "open it with --accept-gap" in stderr
    code, verdict, stderr = open_json(cert_in, second)
    assert code == 4 and verdict["reason"] == "sequence-gap"
    assert "open the missing envelopes first" in stderr and "quarantine accept-gap 1" in stderr


def test_a_dry_run_says_what_would_happen_and_stores_nothing(partnered: Pair, tmp_path: Path) -> None:
    cert_fr, cert_in = partnered
    bundle = bundle_file(tmp_path)
    seal(cert_fr, bundle, "cert-in", name="e1.json")
    second = seal(cert_fr, bundle, "cert-in", name="e2.json")
    result = cert_in.run("open", str(second), "--dry-run", "--accept-gap")
    assert result.exit_code == 0, result.stderr
    assert "would be accepted despite missing sequence numbers [1]" in result.stderr
    assert "nothing (--dry-run)" in result.stdout and "new versions stored" not in result.stdout
    assert count(cert_in, "envelopes_in") == 0


def test_an_envelope_signed_with_a_key_not_pinned_yet_says_to_update_keys(
    partnered: Pair, tmp_path: Path
) -> None:
    cert_fr, cert_in = partnered
    assert cert_fr.run("keys", "rotate").exit_code == 0
    envelope = seal(cert_fr, bundle_file(tmp_path), "cert-in")
    code, verdict, stderr = open_json(cert_in, envelope)
    assert code == 4 and verdict["reason"] == "unknown-key"
    assert "partners update-keys cert-fr --jwks FILE" in stderr

    # Once the new key file is pinned, opening the file again accepts it and closes its record.
    keys = cert_fr.export_keys(tmp_path / "cert-fr.rotated.keys.json")
    assert cert_in.run("partners", "update-keys", "cert-fr", "--jwks", str(keys)).exit_code == 0
    code, verdict, _ = open_json(cert_in, envelope)
    assert code == 0 and verdict["verdict"] == "accepted"
    assert _open_records(cert_in) == []


def test_opening_a_revocation_of_an_accepted_indicator_says_it_leaves_the_exports(
    partnered: Pair, tmp_path: Path
) -> None:
    cert_fr, cert_in = partnered
    first = indicator("198.51.100.77")
    e1 = seal(cert_fr, bundle_file(tmp_path, "a.json", make_bundle([first])), "cert-in", name="e1.json")
    assert cert_in.run("open", str(e1)).exit_code == 0
    assert cert_in.run("triage", "accept", first["id"]).exit_code == 0
    revoked = first | {"modified": "2026-11-24T10:00:00.000Z", "revoked": True}
    e2 = seal(cert_fr, bundle_file(tmp_path, "b.json", make_bundle([revoked])), "cert-in", name="e2.json")
    result = cert_in.run("open", str(e2))
    assert result.exit_code == 0, result.stderr
    assert f"cert-fr revoked 1 object(s) we had accepted (first: {first['id']})" in result.stderr
    assert "198.51.100.77" not in cert_in.run("export").stdout


def test_the_same_held_file_opened_twice_keeps_one_record(partnered: Pair, tmp_path: Path) -> None:
    """Opening a held file again (a retry, a script going over a folder) added a second
    quarantine record for the same envelope: `status` counted two to review."""
    cert_fr, cert_in = partnered
    bundle = bundle_file(tmp_path)
    first, second = (seal(cert_fr, bundle, "cert-in", name=f"e{i}.json") for i in (1, 2))
    code, verdict, _ = open_json(cert_in, second)
    assert code == 4 and verdict["recorded_before"] is False
    record = verdict["quarantine_record"]

    result = cert_in.run("open", str(second))
    assert result.exit_code == 4
    assert f"already in quarantine as record {record}: not recorded twice" in result.stderr
    code, verdict, _ = open_json(cert_in, second)
    assert code == 4 and verdict["quarantine_record"] == record and verdict["recorded_before"] is True
    assert _open_records(cert_in) == [(verdict["envelope_id"], "sequence-gap")]
    assert rows(cert_in, "SELECT count(*) FROM audit_log WHERE action = 'reject'") == [(1,)]

    # Another file under the same envelope id is not the same file: it gets its own record.
    copy = json.loads(second.read_text())
    copy["id"] = "artifact--" + "0" * 8 + "-0000-4000-8000-" + "0" * 12
    altered = tmp_path / "altered.json"
    altered.write_text(json.dumps(copy))
    assert open_json(cert_in, altered)[0] == 4
    assert len(_open_records(cert_in)) == 2

    # Once 1 arrives, 2 goes through and every record of it is closed.
    assert open_json(cert_in, first)[0] == 0
    assert _open_records(cert_in) == []
