"""A partner that lost its keys (a forgotten passphrase, its profile made again) sends a key
file that no longer lists them (found on a walkthrough): `update-keys --fingerprint` withdrew
them from their creation, so every envelope ever accepted from it raised an alert saying it
"revoked [the key] before they were issued" and all its objects were rejected. Confirmed out
of band, `--old-keys-lost` retires them as of the new file instead: what they signed before
stays accepted, and they sign nothing after it."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Agency, make_agency, update_keys_confirmed
from tests.exchange.conftest import Exchange, write_iocs


def _made_again(tmp_path: Path) -> Agency:
    """CERT-FR's profile made again from nothing: same agency, new keys."""
    return make_agency(tmp_path / "made-again", "cert-fr", "CERT-FR")


def test_old_keys_lost_retires_them_and_keeps_what_they_signed(exchange: Exchange, tmp_path: Path) -> None:
    fr, india = exchange.fr, exchange.india
    assert fr.run("push", str(write_iocs(tmp_path / "iocs.csv", 2)), "--to", "cert-in").exit_code == 0
    assert india.run("pull").exit_code == 0
    assert india.run("triage", "accept", "c2-1.example").exit_code == 0
    old_kids = [k["kid"] for k in india.run("partners", "show", "cert-fr", "--json").json()["keys"]]

    again = _made_again(tmp_path)
    document = again.export_keys(tmp_path / "made-again.keys.json")
    updated = update_keys_confirmed(india, again, document, "--old-keys-lost", "--json")
    assert updated.exit_code == 0, updated.stderr
    assert sorted(updated.json()["retired_lost"]) == sorted(
        kid for kid in old_kids if "-sig-" in kid or "-enc-" in kid
    )
    assert updated.json()["newly_revoked"] == [] and updated.json()["signed_after_revocation"] == []
    assert "c2-1.example" in india.run("export").stdout  # still accepted, still exported
    keys = {k["kid"]: k["status"] for k in india.run("partners", "show", "cert-fr", "--json").json()["keys"]}
    assert all(keys[kid] == "retired" for kid in old_kids)


def test_without_it_the_old_keys_are_withdrawn_as_before(exchange: Exchange, tmp_path: Path) -> None:
    fr, india = exchange.fr, exchange.india
    assert fr.run("push", str(write_iocs(tmp_path / "iocs.csv", 2)), "--to", "cert-in").exit_code == 0
    assert india.run("pull").exit_code == 0
    again = _made_again(tmp_path)
    updated = update_keys_confirmed(india, again, again.export_keys(tmp_path / "k.json"), "--json")
    assert updated.exit_code == 4  # every envelope the withdrawn key signed is set aside
    assert len(updated.json()["signed_after_revocation"]) == 1
    assert "signed by a key its new key file no longer lists" in updated.stderr
    assert "had it said so first, --old-keys-lost would have retired them instead" in updated.stderr


def test_a_partner_that_still_has_its_keys_did_not_lose_them(exchange: Exchange, tmp_path: Path) -> None:
    fr, india = exchange.fr, exchange.india
    assert fr.run("keys", "rotate").exit_code == 0
    refused = update_keys_confirmed(india, fr, fr.export_keys(tmp_path / "rotated.json"), "--old-keys-lost")
    assert refused.exit_code == 2  # an operator's slip, not an integrity alert
    assert "signed by a key already pinned for the partner: it still has its keys" in refused.stderr
