"""A partner's certificate fingerprint written with colons (`4A:A3:...`), as some tools print
it, was copied into the STIX export as received, and the OASIS validator then refused the whole
bundle (found on a walkthrough with stix2-validator). The STIX export leaves such an indicator
out, says why, and writes the rest; the blocklist formats write the value in hex as before."""

from __future__ import annotations

import json

from tests.conftest import Agency
from tests.triage.conftest import indicator, put

COLONS = ":".join(["4A", "A3", "1F", "0B", "9C"] * 4)  # 20 bytes: a SHA-1 fingerprint


def test_a_hash_with_separators_stays_out_of_the_stix_bundle(cert_in: Agency) -> None:
    fingerprint = indicator("cert.example")
    fingerprint["pattern"] = f"[x509-certificate:hashes.'SHA-1' = '{COLONS}']"
    good = indicator("a" * 40, "sha1")
    put(cert_in, [fingerprint, good])
    assert cert_in.run("triage", "accept", fingerprint["id"], good["id"]).exit_code == 0

    exported = cert_in.run("export", "--format", "stix")
    assert exported.exit_code == 0, exported.stderr
    ids = {o["id"] for o in json.loads(exported.stdout)["objects"]}
    assert good["id"] in ids and fingerprint["id"] not in ids
    assert exported.stderr.startswith("warning: 1 value left out: its pattern compares a hash written")
    written = cert_in.run("export", "--format", "stix", "-o", str(cert_in.home / "b.json"), "--json")
    (summary,) = written.json()["files"]
    assert summary["skipped_reasons"] == {
        "x509-sha1": {
            "its pattern compares a hash written otherwise than in hex digits, which makes the "
            "whole bundle invalid STIX to other tools (the plain, CSV and MISP exports write it in hex)": 1
        }
    }

    plain = cert_in.run("export", "--type", "x509-sha1").stdout.splitlines()
    assert COLONS.replace(":", "").lower() in plain
