"""A partner's signing key is stolen; the thief signs in its name and we accept it, because we
have not learned of the revocation yet. When `partners update-keys` pins the file that revokes
the key, the envelopes it signed after its revocation are an integrity alert (exit 4), listed,
audited, and their objects leave every export (set to `rejected`, with a note saying why).
What the key signed before its revocation stays as it was. Real server, real keys; the stolen
key seals and posts as tests/exchange/leaked_key.py says."""

from __future__ import annotations

from pathlib import Path

from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.keys.model import KeyUse
from tests.conftest import Agency, update_keys_confirmed
from tests.exchange.conftest import Exchange, store_rows, write_iocs
from tests.exchange.leaked_key import post_signed_with


def _envelopes(agency: Agency) -> list[str]:
    return [row[0] for row in store_rows(agency, "SELECT envelope_id FROM envelopes_in ORDER BY sequence")]


def test_update_keys_sets_aside_what_a_key_signed_after_its_revocation(
    exchange: Exchange, tmp_path: Path
) -> None:
    fr, india = exchange.fr, exchange.india
    stolen = ProfileHome(fr.home).keyring().current(KeyUse.SIG).kid
    genuine = write_iocs(tmp_path / "genuine.csv", 2)  # 203.0.0.0, c2-1.example
    assert fr.run("push", str(genuine), "--to", "cert-in").exit_code == 0
    assert india.run("pull").exit_code == 0
    (before,) = _envelopes(india)
    # What the back-dating check compares with (envelope/open.py check_not_backdated).
    assert store_rows(india, "SELECT issued_at FROM channels_in") == store_rows(
        india, "SELECT issued_at FROM envelopes_in"
    )

    # CERT-FR learns its key leaked and revokes it; the thief signs in its name all the same,
    # and CERT-In, not told yet, accepts it; an analyst even accepts what it carries.
    assert fr.run("keys", "revoke", stolen, "--reason", "laptop stolen").exit_code == 0
    forged = write_iocs(tmp_path / "forged.csv", 2, start=40)  # 203.0.0.40, c2-41.example
    (sent,) = post_signed_with(fr, "cert-in", forged, stolen)
    assert india.run("pull").exit_code == 0
    (after,) = [e for e in _envelopes(india) if e != before]
    assert after == sent
    accepted = india.run("triage", "accept", "c2-41.example", "c2-1.example")
    assert accepted.exit_code == 0, accepted.stderr
    assert "c2-41.example" in india.run("export").stdout

    document = fr.export_keys(tmp_path / "revoked.json")
    updated = update_keys_confirmed(india, fr, document, "--json")
    assert updated.exit_code == 4, updated.stderr  # an integrity alert
    assert "1 envelope(s) accepted from cert-fr were signed by a key it revoked" in updated.stderr
    assert "triage list --partner cert-fr --status rejected" in updated.stderr
    (flagged,) = updated.json()["signed_after_revocation"]
    assert flagged["envelope_id"] == after and flagged["signer_kid"] == stolen
    assert flagged["reason"] == "revoked-key" and len(flagged["objects_rejected"]) == 2
    assert updated.json()["newly_revoked"] == [stolen]  # the keys are pinned all the same

    # Out of exports, visible in triage with why; what the key signed before stays.
    exported = india.run("export").stdout
    assert "c2-41.example" not in exported and "c2-1.example" in exported
    rejected = india.run("triage", "list", "--partner", "cert-fr", "--status", "rejected", "--json")
    assert rejected.exit_code == 0, rejected.stderr
    assert sorted(flagged["objects_rejected"]) == sorted(o["id"] for o in rejected.json()["items"])
    notes = store_rows(
        india,
        "SELECT analyst, note FROM triage_log WHERE decision = 'rejected' ORDER BY id",
    )
    assert len(notes) == 2 and all(a == "cti-exchange" and after in n and stolen in n for a, n in notes)
    (record,) = india.run("audit", "show", "--action", "key-alert", "--json").json()
    assert record["details"]["envelope_id"] == after and record["details"]["reason"] == "revoked-key"
    assert india.run("audit", "verify").exit_code == 0

    # Once: the same file again changes nothing and alerts nobody.
    again = india.run("partners", "update-keys", "cert-fr", "--jwks", str(document), "--json")
    assert again.exit_code == 0, again.stderr
    assert again.json()["signed_after_revocation"] == []


def test_the_partners_next_envelope_where_the_thief_stood_says_how_to_recover(
    exchange: Exchange, tmp_path: Path
) -> None:
    # The thief's envelope took the next position on CERT-FR's channel; CERT-FR's own next
    # envelope stands at that same position, and is refused for it. The refusal names the
    # stolen-key case beside a restored backup, and `quarantine accept-restart` takes it once
    # CERT-FR confirms.
    fr, india = exchange.fr, exchange.india
    stolen = ProfileHome(fr.home).keyring().current(KeyUse.SIG).kid
    assert fr.run("push", str(write_iocs(tmp_path / "genuine.csv", 2)), "--to", "cert-in").exit_code == 0
    assert india.run("pull").exit_code == 0
    assert fr.run("keys", "revoke", stolen, "--reason", "laptop stolen").exit_code == 0
    post_signed_with(fr, "cert-in", write_iocs(tmp_path / "forged.csv", 2, start=40), stolen)
    assert india.run("pull").exit_code == 0
    assert update_keys_confirmed(india, fr, fr.export_keys(tmp_path / "revoked.json")).exit_code == 4

    later = write_iocs(tmp_path / "later.csv", 2, start=80)  # 203.0.0.80, c2-81.example
    assert fr.run("push", str(later), "--to", "cert-in").exit_code == 0
    pulled = india.run("pull", "--json")
    (refused,) = pulled.json()["partners"][0]["quarantined"]
    assert refused["reason"] in ("sequence-reorder", "chain-mismatch"), refused
    assert "stolen signing key" in refused["detail"], refused["detail"]
    restarted = india.run(
        "quarantine", "accept-restart", str(refused["record_id"]), "--note", "CERT-FR confirmed by phone"
    )
    assert restarted.exit_code == 0, restarted.stderr
    assert "c2-81.example" in india.run("triage", "list", "--json").stdout
