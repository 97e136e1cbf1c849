"""A partner that lost its keys (a forgotten passphrase, its profile made again) sends a key
file that no longer lists them (found on a walkthrough): `update-keys --fingerprint` withdrew
them from their creation, so every envelope ever accepted from it raised an alert saying it
"revoked [the key] before they were issued" and all its objects were rejected. Confirmed out
of band, `--old-keys-lost` retires them as of the new file instead: what they signed before
stays accepted, and they sign nothing after it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.keys.model import KeyCheckError, KeyStatus, KeyUse
from cti_exchange.keys.pinning import MAX_CLOCK_SKEW
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
    assert updated.json()["retired_lost"] == [kid for kid in old_kids if "-sig-" in kid]
    # Its encryption key is revoked: what we sealed to it is sent again to the new one.
    assert updated.json()["newly_revoked"] == [kid for kid in old_kids if "-enc-" in kid]
    assert updated.json()["signed_after_revocation"] == []
    assert "c2-1.example" in india.run("export").stdout  # still accepted, still exported
    keys = {k["kid"]: k["status"] for k in india.run("partners", "show", "cert-fr", "--json").json()["keys"]}
    assert {keys[kid] for kid in old_kids} == {"retired", "revoked"}


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


def test_what_we_sealed_to_its_lost_key_is_sent_again_to_the_new_one(
    exchange: Exchange, tmp_path: Path
) -> None:
    """Found on a walkthrough: an envelope posted to the partner before it lost its keys, not
    yet pulled, stayed `posted` for ever, sealed to a key nobody holds any more."""
    india = exchange.india
    assert india.run("push", str(write_iocs(tmp_path / "iocs.csv", 2)), "--to", "cert-fr").exit_code == 0
    (in_flight,) = [e["envelope_id"] for e in india.run("sent", "--json").json()]
    again = _made_again(tmp_path)
    updated = update_keys_confirmed(
        india, again, again.export_keys(tmp_path / "k.json"), "--old-keys-lost", "--json"
    )
    assert updated.exit_code == 0, updated.stderr
    assert updated.json()["requeued_envelopes"] == [in_flight]


def test_a_lost_signing_key_gets_no_clock_skew_grace(exchange: Exchange, tmp_path: Path) -> None:
    """Found on a walkthrough: minutes after the update, an envelope the lost key signed still
    verified (the grace a rotation gets) and was held as a mere gap."""
    india = exchange.india
    again = _made_again(tmp_path)
    update_keys_confirmed(india, again, again.export_keys(tmp_path / "k.json"), "--old-keys-lost")
    home = ProfileHome(india.home)
    ring = home.partner_keyring(home.load_profile().partners["cert-fr"])
    (lost,) = [k for k in ring.keys if k.status is KeyStatus.RETIRED and k.use is KeyUse.SIG]
    assert ring.issued is not None and lost.retired_at == ring.issued - MAX_CLOCK_SKEW
    with pytest.raises(KeyCheckError):  # signed a second after the new file: refused, not held
        ring.signing_key(lost.kid, at=ring.issued + timedelta(seconds=1))
