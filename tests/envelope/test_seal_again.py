"""`seal -o` never overwrites a file, and `seal --again` writes a lost one again.

A second `seal b2.json -o out.env.json` replaced the first envelope, which its partner had not
opened: its sequence number was lost for good (the partner then needed `accept-gap`), and
`seal --readdress` refused to write it again, its key not being revoked.
"""

from __future__ import annotations

import json
from pathlib import Path

from .test_cli_envelope import Pair, bundle_file, open_json, seal


def _envelope_id(envelope: Path) -> str:
    opened = json.loads(envelope.read_text())
    return str(next(iter(opened["extensions"].values()))["envelope_id"])


def _sequence(envelope: Path, recipient: str) -> int:
    opened = json.loads(envelope.read_text())
    return int(next(iter(opened["extensions"].values()))["sequences"][recipient])


def test_seal_refuses_to_overwrite_and_moves_no_channel(partnered: Pair, tmp_path: Path) -> None:
    cert_fr, cert_in = partnered
    first = seal(cert_fr, bundle_file(tmp_path, "b1.json"), "cert-in", name="out.env.json")
    before = first.read_bytes()
    second = cert_fr.run("seal", str(bundle_file(tmp_path, "b2.json")), "--to", "cert-in", "-o", str(first))
    assert second.exit_code == 2
    assert second.stderr.startswith(f"cti-exchange: error: {first} exists: seal does not overwrite")
    assert "seal --again ENVELOPE_ID -o FILE" in second.stderr
    assert first.read_bytes() == before
    # Nothing was sealed: the next envelope takes the next sequence number, with no gap.
    other = seal(cert_fr, bundle_file(tmp_path, "b3.json"), "cert-in", name="other.env.json")
    assert _sequence(other, "cert-in") == _sequence(first, "cert-in") + 1
    assert open_json(cert_in, first)[0] == 0
    assert open_json(cert_in, other)[0] == 0


def test_a_lost_file_is_written_again_byte_for_byte(partnered: Pair, tmp_path: Path) -> None:
    cert_fr, cert_in = partnered
    first = seal(cert_fr, bundle_file(tmp_path), "cert-in", name="e1.json")
    envelope_id = _envelope_id(first)
    kept = first.read_bytes()
    first.unlink()  # lost before cert-in had it

    again = cert_fr.run("seal", "--again", envelope_id, "-o", str(first))
    assert again.exit_code == 0, again.stderr
    assert (
        f"Wrote envelope {envelope_id} into {first} again, as last written (cert-in sequence 1)"
        in again.stdout
    )
    assert first.read_bytes() == kept
    code, verdict, stderr = open_json(cert_in, first)
    assert code == 0 and verdict["envelope_id"] == envelope_id, stderr
    copy = tmp_path / "copy.json"
    assert cert_fr.run("seal", "--again", envelope_id, "-o", str(copy)).exit_code == 0
    reopened = cert_in.run("open", str(copy))
    assert reopened.exit_code == 0 and "already" in reopened.stdout.lower(), reopened.stdout


def test_again_is_refused_in_one_line_for_what_is_not_a_file_of_ours(partnered: Pair, tmp_path: Path) -> None:
    cert_fr, cert_in = partnered
    theirs = _envelope_id(seal(cert_in, bundle_file(tmp_path), "cert-fr", name="theirs.json"))
    for envelope_id in (theirs, "6f9f3a0e-0000-4000-8000-000000000000"):
        refused = cert_fr.run("seal", "--again", envelope_id, "-o", str(tmp_path / "x.json"))
        assert refused.exit_code == 2 and refused.stderr.count("\n") == 1, refused.stderr
        assert "it is not one we sealed" in refused.stderr
    both = cert_fr.run("seal", str(bundle_file(tmp_path)), "--again", theirs, "-o", str(tmp_path / "y.json"))
    assert both.exit_code == 2 and "--again takes an envelope id and -o FILE only" in both.stderr
    assert not (tmp_path / "x.json").exists() and not (tmp_path / "y.json").exists()


def test_readdress_of_a_file_whose_key_is_current_points_at_again(partnered: Pair, tmp_path: Path) -> None:
    cert_fr, _ = partnered
    envelope_id = _envelope_id(seal(cert_fr, bundle_file(tmp_path), "cert-in", name="e1.json"))
    refused = cert_fr.run("seal", "--readdress", envelope_id, "-o", str(tmp_path / "x.json"))
    assert refused.exit_code == 2
    assert (
        f"if the file is lost, `cti-exchange seal --again {envelope_id} -o FILE` writes it again"
        in refused.stderr
    )
