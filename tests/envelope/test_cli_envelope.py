"""`cti-exchange seal` and `cti-exchange open`, as users run them: real agencies in temporary
homes (tests/conftest.py), real keys, real store files (`<home>/store.sqlite`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import sqlite3
import stat
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cti_exchange.clock import parse_timestamp
from cti_exchange.envelope.artifact import ROUTING_EXTENSION_ID
from cti_exchange.home.lock import profile_lock
from cti_exchange.stix.tlp import Tlp
from tests.conftest import Agency, lock_held_by_another_run, make_agency, pin

from .conftest import Bundle, artifact_jwe, flip_b64url, indicator, make_bundle, with_jwe

Pair = tuple[Agency, Agency]
Trio = tuple[Agency, Agency, Agency]


@pytest.fixture
def trio(partnered: Pair, tmp_path: Path) -> Iterator[Trio]:
    """CERT-FR and CERT-In as in `partnered`, plus CERT-DE, partner of CERT-FR only."""
    cert_fr, cert_in = partnered
    cert_de = make_agency(tmp_path, "cert-de", "CERT-DE")
    pin(cert_fr, cert_de, tmp_path)
    pin(cert_de, cert_fr, tmp_path)
    yield cert_fr, cert_in, cert_de


def bundle_file(tmp_path: Path, name: str = "bundle.json", bundle: Bundle | None = None) -> Path:
    """A bundle as an analyst's tool might write it: indented, with non-ASCII text. The
    envelope must carry these exact bytes, not a re-serialisation."""
    if bundle is None:
        bundle = make_bundle(
            [
                indicator(f"198.51.100.{i}", seed=i) | {"description": "Serveur C2 — Île-de-France"}
                for i in range(1, 4)
            ],
            indent=2,
        )
    path = tmp_path / name
    path.write_bytes(bundle.data)
    return path


def seal(sender: Agency, bundle: Path, *partners: str, name: str = "envelope.json") -> Path:
    out = bundle.parent / name
    args = ["seal", str(bundle), "-o", str(out)]
    for partner in partners:
        args += ["--to", partner]
    result = sender.run(*args)
    assert result.exit_code == 0, result.stderr
    return out


def open_json(receiver: Agency, envelope: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    result = receiver.run("open", str(envelope), "--json", *extra)
    return result.exit_code, json.loads(result.stdout), result.stderr


def rows(agency: Agency, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{agency.home / 'store.sqlite'}?mode=ro", uri=True) as db:
        return db.execute(sql).fetchall()


def count(agency: Agency, table: str) -> int:
    if not (agency.home / "store.sqlite").exists():
        return 0  # never opened anything: nothing can have been stored
    return int(rows(agency, f"SELECT count(*) FROM {table}")[0][0])


def current_key(agency: Agency, use: str) -> dict[str, Any]:
    keys = agency.run("keys", "show", "--json").json()["keys"]
    return next(k for k in keys if k["use"] == use and k["status"] == "current")


def tampered_copy(envelope: Path) -> Path:
    """The envelope with one bit of the GCM tag flipped (the JWE, hashes and id kept
    consistent, as an attacker would)."""
    artifact = json.loads(envelope.read_text())
    jwe = artifact_jwe(artifact)
    jwe["tag"] = flip_b64url(jwe["tag"], 3)
    out = envelope.with_name("tampered.json")
    out.write_text(json.dumps(with_jwe(artifact, jwe)))
    return out


# -- accepted --------------------------------------------------------------------------------


def test_seal_then_open_gives_the_exact_bundle_bytes(partnered: Pair, tmp_path: Path) -> None:
    cert_fr, cert_in = partnered
    bundle = bundle_file(tmp_path)
    envelope = seal(cert_fr, bundle, "cert-in")
    received = tmp_path / "received.json"
    result = cert_in.run("open", str(envelope), "-o", str(received))
    assert result.exit_code == 0, result.stderr
    assert received.read_bytes() == bundle.read_bytes()
    assert count(cert_in, "objects") == 3
    # The evidence: the JWS exactly as received (kept DEFLATE-compressed), whose payload is the
    # bundle bytes and whose SHA-256 is the channel digest.
    ((deflated, digest),) = rows(cert_in, "SELECT jws_deflated, digest FROM envelopes_in")
    jws = zlib.decompress(deflated, -zlib.MAX_WBITS)
    payload = jws.split(b".")[1]
    assert base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)) == bundle.read_bytes()
    assert base64.urlsafe_b64encode(hashlib.sha256(jws).digest()).rstrip(b"=").decode() == digest


def test_the_json_verdict_names_signer_key_times_and_sequence(partnered: Pair, tmp_path: Path) -> None:
    cert_fr, cert_in = partnered
    bundle = bundle_file(tmp_path)
    first = seal(cert_fr, bundle, "cert-in", name="first.json")
    second = seal(cert_fr, bundle, "cert-in", name="second.json")
    hints = json.loads(first.read_text())["extensions"][ROUTING_EXTENSION_ID]
    code, verdict, _ = open_json(cert_in, first)
    assert code == 0
    signing = current_key(cert_fr, "sig")
    assert verdict["verdict"] == "accepted"
    assert verdict["sender"] == "cert-fr" and verdict["partner"] == "cert-fr"
    assert verdict["signing_kid"] == signing["kid"]
    assert verdict["signing_key_thumbprint"] == signing["thumbprint"]
    assert signing["thumbprint"] == cert_fr.signing_fingerprint()
    assert abs(parse_timestamp(verdict["issued_at"]) - datetime.now(UTC)) < timedelta(minutes=1)
    assert verdict["sequence"] == 1 and verdict["objects"] == 3 and verdict["new_versions"] == 3
    assert verdict["own_copy"] is False and verdict["gap_accepted"] == []
    assert verdict["envelope_id"] == hints["envelope_id"]
    assert open_json(cert_in, second)[1]["sequence"] == 2


def test_the_text_verdict(partnered: Pair, tmp_path: Path) -> None:
    cert_fr, cert_in = partnered
    envelope = seal(cert_fr, bundle_file(tmp_path), "cert-in")
    result = cert_in.run("open", str(envelope))
    assert result.exit_code == 0, result.stderr
    lines = dict(line.split("\t", 1) for line in result.stdout.splitlines()[1:])
    assert result.stdout.startswith("Verdict: ACCEPTED")
    assert lines["sender"] == "cert-fr"
    assert lines["signed by"] == current_key(cert_fr, "sig")["kid"]
    assert lines["key fingerprint"] == cert_fr.signing_fingerprint()
    assert lines["sequence"] == "1" and lines["objects"] == "3"
    parse_timestamp(lines["issued at"])


def test_the_sender_opens_its_own_copy(partnered: Pair, tmp_path: Path) -> None:
    cert_fr, _ = partnered
    bundle = bundle_file(tmp_path)
    envelope = seal(cert_fr, bundle, "cert-in")
    received = tmp_path / "own.json"
    code, verdict, _ = open_json(cert_fr, envelope, "-o", str(received))
    assert code == 0
    assert verdict["own_copy"] is True and verdict["verdict"] == "verified"
    assert verdict["sequence"] is None and verdict["new_versions"] == 0
    assert received.read_bytes() == bundle.read_bytes()
    text = cert_fr.run("open", str(envelope))
    assert text.exit_code == 0 and "nothing (our own copy" in text.stdout  # not "(--dry-run)"


# -- rejected: exit 4, one line on stderr, quarantined, nothing stored -------------------------


def test_a_tampered_envelope_is_rejected_quarantined_and_nothing_stored(
    partnered: Pair, tmp_path: Path
) -> None:
    cert_fr, cert_in = partnered
    tampered = tampered_copy(seal(cert_fr, bundle_file(tmp_path), "cert-in"))
    received = tmp_path / "received.json"
    result = cert_in.run("open", str(tampered), "-o", str(received))
    assert result.exit_code == 4
    assert result.stderr.count("\n") == 1 and "decryption-failed" in result.stderr
    assert not received.exists()
    ((reason, detail, sender, raw),) = rows(
        cert_in, "SELECT reason, detail, sender, artifact FROM quarantine"
    )
    assert reason == "decryption-failed" and detail and sender == "cert-fr"
    assert json.loads(raw) == json.loads(tampered.read_text())  # the raw envelope, kept
    assert count(cert_in, "objects") == 0
    assert count(cert_in, "envelopes_in") == 0 and count(cert_in, "channels_in") == 0


def test_the_json_rejection(partnered: Pair, tmp_path: Path) -> None:
    cert_fr, cert_in = partnered
    tampered = tampered_copy(seal(cert_fr, bundle_file(tmp_path), "cert-in"))
    code, verdict, stderr = open_json(cert_in, tampered)
    assert code == 4
    assert verdict["verdict"] == "rejected" and verdict["reason"] == "decryption-failed"
    assert verdict["sender"] == "cert-fr" and verdict["envelope_id"]
    assert stderr.count("\n") == 1


def test_opening_the_same_file_again_changes_nothing_and_alerts_nobody(
    partnered: Pair, tmp_path: Path
) -> None:
    # A script opening every file of a folder runs again: the copy is recognised by its
    # signed content (as pull skips a copy of an accepted envelope), not quarantined as a
    # replay each time, and the script's exit code stays 0.
    cert_fr, cert_in = partnered
    envelope = seal(cert_fr, bundle_file(tmp_path), "cert-in")
    code, first, _ = open_json(cert_in, envelope)
    assert code == 0 and first["verdict"] == "accepted"
    for _ in range(2):
        code, verdict, _ = open_json(cert_in, envelope)
        assert code == 0 and verdict["verdict"] == "already-opened"
        assert verdict["envelope_id"] == first["envelope_id"] and verdict["partner"] == "cert-fr"
    text = cert_in.run("open", str(envelope))
    assert text.exit_code == 0 and text.stdout.startswith("Verdict: ALREADY OPENED")
    assert f"envelope {first['envelope_id']} from cert-fr was accepted at" in text.stderr
    assert count(cert_in, "quarantine") == 0
    assert count(cert_in, "envelopes_in") == 1 and count(cert_in, "objects") == 3
    # Asked for the bundle, it says none is written rather than exit 0 without the file.
    wanted = cert_in.run("open", str(envelope), "-o", str(tmp_path / "opened.json"))
    assert wanted.exit_code == 2 and "opened.json is not written" in wanted.stderr
    assert not (tmp_path / "opened.json").exists()
    assert "triage list --partner cert-fr" in wanted.stderr


def test_an_envelope_for_a_third_agency(trio: Trio, tmp_path: Path) -> None:
    cert_fr, cert_in, _ = trio
    envelope = seal(cert_fr, bundle_file(tmp_path), "cert-de")
    code, verdict, _ = open_json(cert_in, envelope)
    assert code == 4 and verdict["reason"] == "not-addressed-to-us"
    assert count(cert_in, "objects") == 0


def test_a_revoked_keys_later_envelopes_are_rejected(partnered: Pair, tmp_path: Path) -> None:
    """CERT-FR's home is stolen (encrypted key and passphrase). CERT-FR revokes the signing key
    and CERT-In takes the revocation; what the thief seals afterwards is rejected, while an
    envelope CERT-FR sealed before the revocation still opens."""
    cert_fr, cert_in = partnered
    bundle = bundle_file(tmp_path)
    before = seal(cert_fr, bundle, "cert-in", name="before.json")
    thief = Agency("cert-fr", "CERT-FR", tmp_path / "stolen")
    shutil.copytree(cert_fr.home, thief.home)
    stolen_kid = current_key(cert_fr, "sig")["kid"]

    assert cert_fr.run("keys", "revoke", stolen_kid, "--reason", "compromised").exit_code == 0
    update = cert_in.run(
        "partners",
        "update-keys",
        "cert-fr",
        "--jwks",
        str(cert_fr.export_keys(tmp_path / "fr-after-revocation.json")),
        "--fingerprint",
        cert_fr.signing_fingerprint(),  # the new key, confirmed out of band
    )
    assert update.exit_code == 0, update.stderr

    code, verdict, _ = open_json(cert_in, before)
    assert code == 0 and verdict["signing_kid"] == stolen_kid
    after = seal(thief, bundle, "cert-in", name="after.json")
    code, verdict, _ = open_json(cert_in, after)
    assert code == 4 and verdict["reason"] == "revoked-key"
    assert stolen_kid in verdict["detail"]
    assert count(cert_in, "envelopes_in") == 1


def test_envelopes_sealed_before_a_key_rotation_still_verify(partnered: Pair, tmp_path: Path) -> None:
    cert_fr, cert_in = partnered
    bundle = bundle_file(tmp_path)
    old_kid = current_key(cert_fr, "sig")["kid"]
    before = seal(cert_fr, bundle, "cert-in", name="before.json")
    assert cert_fr.run("keys", "rotate").exit_code == 0
    update = cert_in.run(
        "partners",
        "update-keys",
        "cert-fr",
        "--jwks",
        str(cert_fr.export_keys(tmp_path / "fr-rotated.json")),
    )
    assert update.exit_code == 0, update.stderr  # signed by the old, pinned key
    after = seal(cert_fr, bundle, "cert-in", name="after.json")

    code, verdict, _ = open_json(cert_in, before)
    assert code == 0 and verdict["signing_kid"] == old_kid and verdict["sequence"] == 1
    code, verdict, _ = open_json(cert_in, after)
    assert code == 0 and verdict["signing_kid"] == current_key(cert_fr, "sig")["kid"] != old_kid
    assert verdict["sequence"] == 2


def test_a_gap_is_reported_and_can_be_accepted(partnered: Pair, tmp_path: Path) -> None:
    cert_fr, cert_in = partnered
    bundle = bundle_file(tmp_path)
    first, _, third = (seal(cert_fr, bundle, "cert-in", name=f"{n}.json") for n in (1, 2, 3))
    assert open_json(cert_in, first)[0] == 0
    code, verdict, _ = open_json(cert_in, third)
    assert code == 4 and verdict["reason"] == "sequence-gap"
    assert "missing sequence numbers 2 " in verdict["detail"]
    result = cert_in.run("open", str(third), "--accept-gap")
    assert result.exit_code == 0, result.stderr
    assert "missing sequence numbers [2]" in result.stderr
    assert rows(cert_in, "SELECT sequence FROM channels_in") == [(3,)]


def test_dry_run_stores_nothing(partnered: Pair, tmp_path: Path) -> None:
    cert_fr, cert_in = partnered
    envelope = seal(cert_fr, bundle_file(tmp_path), "cert-in")
    code, verdict, _ = open_json(cert_in, envelope, "--dry-run")
    assert code == 0 and verdict["verdict"] == "verified" and verdict["new_versions"] == 0
    code, _, _ = open_json(cert_in, tampered_copy(envelope), "--dry-run")
    assert code == 4
    for table in ("objects", "envelopes_in", "channels_in", "quarantine"):
        assert count(cert_in, table) == 0, table
    # Not even remembered as seen: the real opening afterwards is not a replay.
    code, verdict, _ = open_json(cert_in, envelope)
    assert code == 0 and verdict["verdict"] == "accepted"


def test_a_truncated_envelope_file(partnered: Pair, tmp_path: Path) -> None:
    cert_fr, cert_in = partnered
    envelope = seal(cert_fr, bundle_file(tmp_path), "cert-in")
    truncated = tmp_path / "truncated.json"
    truncated.write_bytes(envelope.read_bytes()[: len(envelope.read_bytes()) // 2])
    result = cert_in.run("open", str(truncated))
    assert result.exit_code == 6
    assert "truncated" in result.stderr and result.stderr.count("\n") == 1
    assert count(cert_in, "objects") == 0


# -- TLP on the way out ------------------------------------------------------------------------


def test_tlp_red_needs_the_partner_entry_and_the_flag(partnered: Pair, tmp_path: Path) -> None:
    cert_fr, _ = partnered
    red = indicator("203.0.113.9", tlp=Tlp.RED)
    bundle = bundle_file(tmp_path, bundle=make_bundle([indicator("198.51.100.1"), red]))
    out = tmp_path / "red.json"
    result = cert_fr.run("seal", str(bundle), "--to", "cert-in", "-o", str(out), "--allow-red")
    assert result.exit_code == 8
    assert red["id"] in result.stderr and "tlp-red-needs-partner-and-flag" in result.stderr
    assert not out.exists()

    assert cert_fr.run("partners", "set", "cert-in", "--allow-red").exit_code == 0
    result = cert_fr.run("seal", str(bundle), "--to", "cert-in", "-o", str(out))
    assert result.exit_code == 8 and "tlp-red-needs-partner-and-flag" in result.stderr
    result = cert_fr.run("seal", str(bundle), "--to", "cert-in", "-o", str(out), "--allow-red", "--json")
    assert result.exit_code == 0, result.stderr
    # Refusals consumed no channel position: this is the first envelope on the channel.
    assert json.loads(result.stdout)["sequences"] == {"cert-in": 1}


def test_red_written_another_way_or_no_tlp_at_all_does_not_leave(partnered: Pair, tmp_path: Path) -> None:
    """seal sends a bundle as it is, push marks and maps it first: both read TLP:RED however it
    is written (a statement marking that says "TLP:RED" included), and seal refuses content
    with no TLP (push would give it the default)."""
    cert_fr, _ = partnered
    assert cert_fr.run("partners", "set", "cert-in", "--max-tlp", "green").exit_code == 0
    granular = indicator("203.0.113.21", tlp=Tlp.CLEAR) | {
        "granular_markings": [{"marking_ref": Tlp.RED.marking_id, "selectors": ["name"]}]
    }
    upper = indicator("203.0.113.22") | {"object_marking_refs": [Tlp.RED.marking_id.upper()]}
    unmarked = {k: v for k, v in indicator("203.0.113.23").items() if k != "object_marking_refs"}
    statement = {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": "marking-definition--4f1c9a2e-8b3d-4e5f-9a6b-7c8d9e0f1a2b",
        "created": "2026-01-01T00:00:00.000Z",
        "definition_type": "statement",
        "definition": {"statement": "TLP:RED - for the named recipients only"},
    }
    said_red = indicator("203.0.113.24") | {"object_marking_refs": [statement["id"]]}
    # (what seal says, its exit code): an upper-case id is not a valid STIX identifier.
    cases = {
        "granular": (granular, "tlp-red-needs-partner-and-flag", 8),
        "upper": (upper, "'object_marking_refs' must be", 6),
        "unmarked": (unmarked, "no-tlp-marking", 8),
        "statement": (said_red, "tlp-red-needs-partner-and-flag", 8),
    }
    for name, (obj, said, code) in cases.items():
        bundle = bundle_file(
            tmp_path, f"{name}.json", make_bundle([obj] + ([statement] if name == "statement" else []))
        )
        out = tmp_path / f"{name}.envelope.json"
        sealed = cert_fr.run("seal", str(bundle), "--to", "cert-in", "-o", str(out))
        assert sealed.exit_code == code, (name, sealed.stderr)
        assert said in sealed.stderr and not out.exists()
        if name == "unmarked":  # the fix: mark it with convert, then seal that
            assert f"`cti-exchange convert {bundle} --tlp amber -o marked.json`" in sealed.stderr
        pushed = cert_fr.run("push", str(bundle), "--to", "cert-in", "--dry-run", "--json")
        if name == "unmarked":  # push marks it with the profile's default, TLP:AMBER: above green
            assert pushed.exit_code == 8 and "above-partner-max-tlp" in pushed.stderr, pushed.stderr
        else:
            assert pushed.exit_code == 8 and "tlp-red-needs-partner-and-flag" in pushed.stderr, pushed.stderr


@pytest.mark.parametrize("case", ["duplicate-key", "bundle-property"])
def test_seal_refuses_bytes_the_policy_would_not_read(partnered: Pair, tmp_path: Path, case: str) -> None:
    """seal sends the file byte for byte: a key given twice (the policy reads the last, the
    bytes carry both) or a property outside the objects (no marking covers it) would slip
    content past the TLP check."""
    cert_fr, _ = partnered
    green = json.dumps(indicator("198.51.100.7", tlp=Tlp.GREEN), indent=1)
    head = '{"type": "bundle", "id": "bundle--0b0e3c6a-7a55-4c3e-9d2a-5f1c3b9e8d21", '
    if case == "duplicate-key":
        twice = ', "description": "TLP:RED source: our informant", "description": "public"}'
        text = head + '"objects": [' + green.rstrip()[:-1] + twice + "]}"
        said = "appears twice"
    else:
        text = head + '"x_notes": "TLP:RED source: our informant", "objects": [' + green + "]}"
        said = "x_notes"
    bundle = tmp_path / "bundle.json"
    bundle.write_text(text)
    assert "our informant" in bundle.read_text()
    out = tmp_path / "sealed.json"
    sealed = cert_fr.run("seal", str(bundle), "--to", "cert-in", "-o", str(out))
    assert sealed.exit_code == 6, sealed.stderr
    assert said in sealed.stderr and sealed.stderr.count("\n") == 1 and not out.exists()
    assert "informant" not in sealed.stderr


def test_amber_strict_goes_to_one_partner_at_a_time(trio: Trio, tmp_path: Path) -> None:
    cert_fr, _, _ = trio
    strict = indicator("203.0.113.10", tlp=Tlp.AMBER_STRICT)
    bundle = bundle_file(tmp_path, bundle=make_bundle([strict]))
    out = tmp_path / "strict.json"
    args = ["seal", str(bundle), "-o", str(out), "--to", "cert-in", "--to", "cert-de"]
    result = cert_fr.run(*args)
    assert result.exit_code == 8
    assert strict["id"] in result.stderr and "amber-strict-single-partner" in result.stderr
    assert not out.exists()
    assert cert_fr.run("partners", "set", "cert-in", "--max-tlp", "amber+strict").exit_code == 0
    result = cert_fr.run("seal", str(bundle), "-o", str(out), "--to", "cert-in")
    assert result.exit_code == 0, result.stderr


def test_a_partner_cannot_revoke_another_partners_indicator(trio: Trio, tmp_path: Path) -> None:
    """CERT-In shares an indicator with CERT-FR; CERT-DE then sends a newer, revoked version of
    the same object id. CERT-FR keeps CERT-In's version current and says so."""
    cert_fr, cert_in, cert_de = trio
    original = indicator("203.0.113.77")
    from_in = seal(
        cert_in, bundle_file(tmp_path, "in.json", make_bundle([original])), "cert-fr", name="e1.json"
    )
    assert open_json(cert_fr, from_in)[0] == 0
    forged = original | {"modified": "2026-11-24T10:00:00.000Z", "revoked": True}
    from_de = seal(
        cert_de, bundle_file(tmp_path, "de.json", make_bundle([forged])), "cert-fr", name="e2.json"
    )

    code, verdict, stderr = open_json(cert_fr, from_de)
    assert code == 0, stderr  # a valid envelope from a pinned partner: accepted and stored
    assert verdict["versions_not_applied"] == [
        {
            "object_id": original["id"],
            "version": "2026-11-24T10:00:00.000Z",  # as `modified` is written
            "owner": "cert-in",
            "kind": "newer",
        }
    ]
    again = original | {"modified": "2026-11-25T10:00:00.000Z", "description": "rewritten"}
    second = seal(cert_de, bundle_file(tmp_path, "de2.json", make_bundle([again])), "cert-fr", name="e3.json")
    shown = cert_fr.run("open", str(second))
    assert shown.exit_code == 0, shown.stderr
    assert "1 newer version(s) of objects shared by cert-in: kept, not applied" in shown.stderr
    listed = cert_fr.run("triage", "list", "--json").json()["items"]
    (item,) = [i for i in listed if i["id"] == original["id"]]
    assert item["partners"] == ["cert-in"] and not item["revoked"]
    versions = cert_fr.run("triage", "show", original["id"], "--json").json()["versions"]
    assert [(v["partner"], v["is_current"], v["revoked"]) for v in versions] == [
        ("cert-de", False, False),
        ("cert-de", False, True),
        ("cert-in", True, False),
    ]
    accepts = cert_fr.run("audit", "show", "--action", "accept", "--partner", "cert-de", "--json").json()
    assert [r["details"]["versions_not_applied"] for r in accepts] == [1, 1]
    assert accepts[0]["details"]["not_applied_sample"][0]["owner"] == "cert-in"


def test_a_tlp_marking_with_an_unreadable_level_makes_push_read_red(partnered: Pair, tmp_path: Path) -> None:
    """Not the default TLP: `tlp_2_0: "rouge"` is rejected, and what refers to it counts as RED."""
    cert_fr, _ = partnered
    custom = "marking-definition--aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
    marking = {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": custom,
        "created": "2026-11-23T10:00:00.000Z",
        "name": "TLP:RED",
        "extensions": {
            "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d": {
                "extension_type": "property-extension",
                "tlp_2_0": "rouge",
            }
        },
    }
    obj = indicator("203.0.113.31") | {"object_marking_refs": [custom]}
    bundle = bundle_file(tmp_path, "rouge.json", make_bundle([marking, obj]))
    pushed = cert_fr.run("push", str(bundle), "--to", "cert-in", "--tlp", "green", "--dry-run", "--json")
    assert pushed.exit_code == 8, pushed.stderr
    assert obj["id"] in pushed.stderr and "TLP:RED" in pushed.stderr


def test_push_withholds_what_refers_to_a_withheld_object(partnered: Pair, tmp_path: Path) -> None:
    cert_fr, _ = partnered
    red = indicator("203.0.113.31", tlp=Tlp.RED)
    green = indicator("203.0.113.32", tlp=Tlp.GREEN)
    relationship = {
        "type": "relationship",
        "spec_version": "2.1",
        "id": "relationship--7b2c3d4e-5f6a-4b7c-9d8e-0f1a2b3c4d5e",
        "created": "2026-11-23T10:00:00.000Z",
        "modified": "2026-11-23T10:00:00.000Z",
        "relationship_type": "related-to",
        "source_ref": red["id"],
        "target_ref": green["id"],
        "object_marking_refs": [Tlp.GREEN.marking_id],
    }
    bundle = bundle_file(tmp_path, "related.json", make_bundle([red, green, relationship]))
    pushed = cert_fr.run("push", str(bundle), "--to", "cert-in", "--dry-run", "--skip-refused", "--json")
    assert pushed.exit_code == 0, pushed.stderr
    refused = json.loads(pushed.stdout)["refused"]
    assert any(red["id"] in r and "tlp-red-needs-partner-and-flag" in r for r in refused)
    assert any(relationship["id"] in r and "refers-to-refused" in r for r in refused)
    assert len(refused) == 2


def test_seal_to_a_path_it_cannot_write_moves_no_channel(partnered: Pair, tmp_path: Path) -> None:
    # Checked before sealing: a sealed envelope that never reached a file would be a gap in
    # the partner's channel, and every later envelope would wait behind it.
    cert_fr, cert_in = partnered
    bundle = bundle_file(tmp_path)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for target, expected in (
        (tmp_path, "is a directory"),
        (fifo, "not a regular file"),
        (tmp_path / "missing" / "e.json", "does not exist"),
    ):
        result = cert_fr.run("seal", str(bundle), "--to", "cert-in", "-o", str(target))
        assert result.exit_code == 2, result.stderr
        assert result.stderr.count("\n") == 1 and expected in result.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert rows(cert_fr, "SELECT COUNT(*) FROM sent_envelopes") == [(0,)]
    # The next envelope is the channel's first, and opens.
    envelope = seal(cert_fr, bundle, "cert-in")
    code, verdict, stderr = open_json(cert_in, envelope)
    assert code == 0, stderr
    assert verdict["verdict"] == "accepted" and verdict["sequence"] == 1
    assert verdict["gap_accepted"] == []


def test_seal_to_more_partners_than_an_envelope_holds_is_a_usage_error(
    partnered: Pair, tmp_path: Path
) -> None:
    # Partners refuse a JWE of more than 256 entries (ours is one of them): sealing one ended
    # in a ValueError traceback. Counted before anything is read, pinned or sealed.
    cert_fr, _ = partnered
    args = ["seal", str(bundle_file(tmp_path)), "-o", str(tmp_path / "e.json")]
    for i in range(256):
        args += ["--to", f"agency-{i}"]
    result = cert_fr.run(*args)
    assert result.exit_code == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "256 partners named with --to" in result.stderr and "at most 255" in result.stderr
    assert not (tmp_path / "e.json").exists()
    assert rows(cert_fr, "SELECT COUNT(*) FROM sent_envelopes") == [(0,)]


def test_open_waits_for_a_sync_holding_the_profile_lock(partnered: Pair, tmp_path: Path) -> None:
    # Accepting moves the sender's channel, as pull does: a sync taking the same envelope at
    # the same moment would make one of the two fail on the store's key.
    cert_fr, cert_in = partnered
    envelope = seal(cert_fr, bundle_file(tmp_path), "cert-in")
    with lock_held_by_another_run(cert_in.home, 1.0):
        started = time.monotonic()
        code, verdict, stderr = open_json(cert_in, envelope)
        waited = time.monotonic() - started
    assert code == 0 and verdict["verdict"] == "accepted", stderr
    assert waited >= 0.9
    # It said why it waited (a command silent for up to a minute looks hung): once, on stderr,
    # naming the holder; stdout keeps the JSON alone.
    (notice,) = [line for line in stderr.splitlines() if "waits for it to finish" in line]
    assert f"another cti-exchange process (pid {os.getpid()}) is working on {cert_in.home}" in notice
    assert "open waits for it to finish (at most 60 s)" in notice
    # A dry run stores nothing and does not wait.
    with profile_lock(cert_in.home):
        dry = cert_in.run("open", str(envelope), "--dry-run", "--json")
    assert dry.exit_code == 0 and json.loads(dry.stdout)["verdict"] == "already-opened"


def test_an_offline_partner_is_not_queued_receipts_sync_cannot_post(partnered: Pair, tmp_path: Path) -> None:
    # Envelopes exchanged as files, with no TAXII server for the partner: a receipt for them
    # could only wait in the outbox for good (and make every cron sync report it).
    cert_fr, cert_in = partnered
    code, _, stderr = open_json(cert_in, seal(cert_fr, bundle_file(tmp_path), "cert-in"))
    assert code == 0, stderr
    synced = cert_in.run("sync", "--json")
    assert synced.exit_code == 0, synced.stderr
    assert synced.json()["waiting_without_taxii"] == {}
    assert rows(cert_in, "SELECT COUNT(*) FROM deliveries") == [(0,)]
    # Owed still: sent once the partner has a TAXII server to post to.
    assert rows(cert_in, "SELECT COUNT(*) FROM receipts_owed WHERE receipt_envelope_id IS NULL") == [(1,)]
