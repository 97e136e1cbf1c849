"""A partner revokes its encryption key before opening a file we sealed for it (`seal -o`):
`partners update-keys` lists the file (`files_to_readdress`), `seal --readdress ID -o FILE`
writes the same signed envelope wrapped for its current key, and the partner opens that file
in the first one's place, in order, with no gap and nothing lost. Through the CLI, with real
keys and stores."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Agency, make_agency, pin, revoke_encryption_key, update_keys
from tests.exchange.conftest import running_exchange

from .conftest import artifact_jwe
from .test_cli_envelope import Pair, Trio, bundle_file, count, open_json, rows, seal


@pytest.fixture
def with_cert_de(partnered: Pair, tmp_path: Path) -> Trio:
    """CERT-FR and CERT-In as in `partnered`, plus CERT-DE, partner of CERT-FR only."""
    cert_fr, cert_in = partnered
    cert_de = make_agency(tmp_path, "cert-de", "CERT-DE")
    pin(cert_fr, cert_de, tmp_path)
    pin(cert_de, cert_fr, tmp_path)
    return cert_fr, cert_in, cert_de


def _readdress(sender: Agency, envelope_id: str, output: Path, *extra: str) -> dict[str, Any]:
    result = sender.run("seal", "--readdress", envelope_id, "-o", str(output), "--json", *extra)
    assert result.exit_code == 0, result.stderr
    return dict(result.json())


def _envelope_id(envelope: Path) -> str:
    opened = json.loads(envelope.read_text())
    return str(next(iter(opened["extensions"].values()))["envelope_id"])


def _open_records(agency: Agency) -> list[tuple[str, str]]:
    return rows(agency, "SELECT envelope_id, reason FROM quarantine WHERE resolved_at IS NULL ORDER BY id")


def test_a_file_sealed_to_a_revoked_key_is_readdressed_and_opened_in_its_place(
    partnered: Pair, tmp_path: Path
) -> None:
    cert_fr, cert_in = partnered
    first = seal(cert_fr, bundle_file(tmp_path), "cert-in", name="e1.json")
    envelope_id = _envelope_id(first)
    revoked = revoke_encryption_key(cert_in)

    code, verdict, stderr = open_json(cert_in, first)
    assert code == 4 and verdict["reason"] == "encrypted-to-revoked-key"
    assert f"cti-exchange seal --readdress {envelope_id} -o FILE" in stderr  # what to ask for

    update = update_keys(cert_fr, cert_in, tmp_path)
    assert update["requeued_envelopes"] == [] and update["files_to_readdress"] == [envelope_id]

    again = tmp_path / "e1-readdressed.json"
    done = _readdress(cert_fr, envelope_id, again)
    assert done["envelope_id"] == envelope_id and done["readdressed_for"] == ["cert-in"]
    assert done["sequences"] == {"cert-in": 1} and done["removed_kids"] == [revoked]
    assert done["added_kids"] != [] and done["written_again"] is False
    assert stat.S_IMODE(os.stat(again).st_mode) == stat.S_IMODE(os.stat(first).st_mode)  # as seal writes
    # Only the key wrap changed: the signed JWS (id, sequence, digest) is the one sealed first.
    before, after = artifact_jwe(json.loads(first.read_text())), artifact_jwe(json.loads(again.read_text()))
    assert {k: v for k, v in after.items() if k != "recipients"} == {
        k: v for k, v in before.items() if k != "recipients"
    }
    assert after["recipients"][0]["header"]["kid"] == done["added_kids"][0]  # in the revoked one's place

    code, verdict, stderr = open_json(cert_in, again)
    assert code == 0, stderr
    assert verdict["verdict"] == "accepted" and verdict["envelope_id"] == envelope_id
    assert verdict["sequence"] == 1 and verdict["gap_accepted"] == []
    # The record of the first attempt is closed by the accepted copy.
    [(resolution,)] = rows(cert_in, "SELECT resolution FROM quarantine WHERE resolved_at IS NOT NULL")
    assert "re-addressed" in resolution and _open_records(cert_in) == []
    [(digest_in,)] = rows(cert_in, "SELECT digest FROM envelopes_in")
    [(digest_sent,)] = rows(cert_fr, "SELECT digest FROM sent_envelopes")
    assert digest_in == digest_sent

    # The channel goes on from it: the next file is no gap.
    code, verdict, stderr = open_json(
        cert_in, seal(cert_fr, bundle_file(tmp_path), "cert-in", name="e2.json")
    )
    assert code == 0 and verdict["sequence"] == 2, stderr

    # Our records: the sent log notes it, the audit trail names the keys.
    [delivery, _] = cert_fr.run("sent", "--json").json()
    assert delivery["status"] == "exported" and "seal --readdress" in delivery["last_error"]
    [(details,)] = rows(cert_fr, "SELECT details FROM audit_log WHERE action = 'readdress'")
    assert json.loads(details) | {"artifact_id": None} == {
        "envelope_id": envelope_id,
        "artifact_id": None,
        "removed": [revoked],
        "added": done["added_kids"],
        "transport": "file",
    }


def test_update_keys_names_the_files_and_the_command_to_run(partnered: Pair, tmp_path: Path) -> None:
    cert_fr, cert_in = partnered
    envelope_id = _envelope_id(seal(cert_fr, bundle_file(tmp_path), "cert-in"))
    revoke_encryption_key(cert_in)
    document = cert_in.export_keys(tmp_path / "cert-in-after.keys.json")
    result = cert_fr.run("partners", "update-keys", "cert-in", "--jwks", str(document))
    assert result.exit_code == 0, result.stderr
    assert "1 envelope(s) sealed to a file for cert-in" in result.stdout
    assert "cti-exchange seal --readdress ID -o FILE" in result.stdout
    assert f"    {envelope_id}" in result.stdout.splitlines()


def test_a_later_file_opened_first_goes_through_once_the_readdressed_one_is_opened(
    partnered: Pair, tmp_path: Path
) -> None:
    """The file sealed after the new keys were pinned arrives first and is held behind the
    gap; opening the re-addressed file lets it through, with no gap to accept."""
    cert_fr, cert_in = partnered
    bundle = bundle_file(tmp_path)
    first = seal(cert_fr, bundle, "cert-in", name="e1.json")
    revoke_encryption_key(cert_in)
    [envelope_id] = update_keys(cert_fr, cert_in, tmp_path)["files_to_readdress"]
    second = seal(cert_fr, bundle, "cert-in", name="e2.json")

    assert open_json(cert_in, first)[1]["reason"] == "encrypted-to-revoked-key"
    held = open_json(cert_in, second)[1]
    assert held["reason"] == "sequence-gap"
    again = tmp_path / "e1-readdressed.json"
    _readdress(cert_fr, envelope_id, again)

    code, verdict, stderr = open_json(cert_in, again)
    assert code == 0 and verdict["sequence"] == 1, stderr
    assert verdict["released_envelopes"] == [held["envelope_id"]] and verdict["still_held"] == []
    assert count(cert_in, "envelopes_in") == 2 and _open_records(cert_in) == []
    assert rows(cert_in, "SELECT sequence FROM envelopes_in ORDER BY sequence") == [(1,), (2,)]


def test_a_lost_readdressed_file_is_written_again_byte_for_byte(partnered: Pair, tmp_path: Path) -> None:
    cert_fr, cert_in = partnered
    envelope_id = _envelope_id(seal(cert_fr, bundle_file(tmp_path), "cert-in"))
    revoke_encryption_key(cert_in)
    update_keys(cert_fr, cert_in, tmp_path)
    once, twice = tmp_path / "once.json", tmp_path / "twice.json"
    _readdress(cert_fr, envelope_id, once)
    done = _readdress(cert_fr, envelope_id, twice)
    assert done["written_again"] is True and done["sequences"] == {"cert-in": 1}
    assert twice.read_bytes() == once.read_bytes()
    assert len(rows(cert_fr, "SELECT 1 FROM audit_log WHERE action = 'readdress'")) == 1
    code, verdict, stderr = open_json(cert_in, twice)
    assert code == 0 and verdict["envelope_id"] == envelope_id, stderr


def test_only_the_recipient_that_revoked_its_key_is_readdressed_for(
    with_cert_de: Trio, tmp_path: Path
) -> None:
    cert_fr, cert_in, cert_de = with_cert_de
    first = seal(cert_fr, bundle_file(tmp_path), "cert-in", "cert-de", name="e1.json")
    envelope_id = _envelope_id(first)
    revoke_encryption_key(cert_in)
    assert update_keys(cert_fr, cert_in, tmp_path)["files_to_readdress"] == [envelope_id]

    refused = cert_fr.run(
        "seal", "--readdress", envelope_id, "--to", "cert-de", "-o", str(tmp_path / "x.json")
    )
    assert (
        refused.exit_code == 2 and "which is not revoked: cert-de opens the file as it is" in refused.stderr
    )
    assert not (tmp_path / "x.json").exists()

    again = tmp_path / "e1-readdressed.json"
    done = _readdress(cert_fr, envelope_id, again)
    assert done["readdressed_for"] == ["cert-in"] and done["sequences"] == {"cert-in": 1}
    assert open_json(cert_in, again)[0] == 0
    assert open_json(cert_de, first)[0] == 0  # its copy of the first file opens as it is


def test_readdressing_for_one_recipient_leaves_the_other_to_its_turn(
    with_cert_de: Trio, tmp_path: Path
) -> None:
    """Both recipients revoked the key the file is wrapped for; `--to cert-in` re-wrapped it
    for cert-de too, without a note on cert-de's delivery: `--to cert-de` was then refused as
    "not revoked", and cert-de kept a file it could not open."""
    cert_fr, cert_in, cert_de = with_cert_de
    first = seal(cert_fr, bundle_file(tmp_path), "cert-in", "cert-de", name="e1.json")
    envelope_id = _envelope_id(first)
    revoke_encryption_key(cert_in)
    revoke_encryption_key(cert_de)
    update_keys(cert_fr, cert_in, tmp_path)
    update_keys(cert_fr, cert_de, tmp_path)

    for_in = _readdress(cert_fr, envelope_id, tmp_path / "for-in.json", "--to", "cert-in")
    assert for_in["readdressed_for"] == ["cert-in"]
    for_de = _readdress(cert_fr, envelope_id, tmp_path / "for-de.json", "--to", "cert-de")
    assert for_de["readdressed_for"] == ["cert-de"] and for_de["written_again"] is False
    assert open_json(cert_in, tmp_path / "for-in.json")[0] == 0
    assert open_json(cert_de, tmp_path / "for-de.json")[0] == 0


def _refused(sender: Agency, envelope_id: str, tmp_path: Path, *extra: str) -> str:
    output = tmp_path / "refused.json"
    result = sender.run("seal", "--readdress", envelope_id, "-o", str(output), *extra)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stderr.startswith("cti-exchange: error: ") and result.stderr.count("\n") == 1
    assert not output.exists()
    return result.stderr


def test_what_is_not_a_file_to_readdress_is_refused_in_one_line(partnered: Pair, tmp_path: Path) -> None:
    cert_fr, cert_in = partnered
    ours = _envelope_id(seal(cert_fr, bundle_file(tmp_path), "cert-in", name="ours.json"))
    theirs = _envelope_id(seal(cert_in, bundle_file(tmp_path), "cert-fr", name="theirs.json"))

    assert "it is not one we sealed" in _refused(cert_fr, "6f9f3a0e-0000-4000-8000-000000000000", tmp_path)
    assert "it is not one we sealed" in _refused(cert_fr, theirs, tmp_path)  # the partner's to re-address
    stderr = _refused(cert_fr, ours, tmp_path)  # nobody revoked anything
    assert "which is not revoked: cert-in opens the file as it is" in stderr
    assert "it was not sealed for cert-de" in _refused(cert_fr, ours, tmp_path, "--to", "cert-de")

    queued = cert_fr.run("push", str(bundle_file(tmp_path)), "--to", "cert-in", "--queue", "--json")
    assert queued.exit_code == 0, queued.stderr
    by_taxii = next(d["envelope_id"] for d in cert_fr.run("sent", "--json").json() if d["status"] == "sealed")
    revoke_encryption_key(cert_in)
    update_keys(cert_fr, cert_in, tmp_path)
    assert "it goes to cert-in by TAXII, not as a file" in _refused(cert_fr, by_taxii, tmp_path)

    # Usage mistakes.
    both = cert_fr.run(
        "seal", str(bundle_file(tmp_path)), "--readdress", ours, "-o", str(tmp_path / "b.json")
    )
    assert both.exit_code == 2 and "not both" in both.stderr
    neither = cert_fr.run("seal", "-o", str(tmp_path / "n.json"))
    assert neither.exit_code == 2 and "give the bundle file to seal" in neither.stderr


def test_a_file_holding_what_the_partner_may_no_longer_receive_is_not_readdressed(
    partnered: Pair, tmp_path: Path
) -> None:
    """TLP is enforced when an envelope leaves: re-addressing would let the partner read, now,
    what its entry no longer allows."""
    cert_fr, cert_in = partnered
    envelope_id = _envelope_id(seal(cert_fr, bundle_file(tmp_path), "cert-in"))  # TLP:AMBER
    revoke_encryption_key(cert_in)
    update_keys(cert_fr, cert_in, tmp_path)
    assert cert_fr.run("partners", "set", "cert-in", "--max-tlp", "green").exit_code == 0
    output = tmp_path / "refused.json"
    result = cert_fr.run("seal", "--readdress", envelope_id, "-o", str(output))
    assert result.exit_code == 8 and "cert-in's entry no longer allows" in result.stderr
    assert not output.exists()
    assert rows(cert_fr, "SELECT 1 FROM audit_log WHERE action = 'readdress'") == []


def test_a_file_the_partner_acknowledged_is_not_readdressed(partnered: Pair, tmp_path: Path) -> None:
    """Its receipt (back by TAXII) says it opened the file: there is nothing to re-address, and
    `update-keys` lists nothing."""
    cert_fr, cert_in = partnered
    first = seal(cert_fr, bundle_file(tmp_path), "cert-in")
    envelope_id = _envelope_id(first)
    with running_exchange(tmp_path, cert_fr, cert_in):
        assert open_json(cert_in, first)[0] == 0
        assert cert_in.run("sync").exit_code == 0  # the receipt goes back
        assert cert_fr.run("sync").exit_code == 0  # and is read
    [delivery] = cert_fr.run("sent", "--json").json()
    assert delivery["status"] == "received"
    revoke_encryption_key(cert_in)
    assert update_keys(cert_fr, cert_in, tmp_path)["files_to_readdress"] == []
    assert "cert-in acknowledged it already (receipt of " in _refused(cert_fr, envelope_id, tmp_path)
