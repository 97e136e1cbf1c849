"""`keys show|export|rotate|revoke`, checked with an independent JOSE library (joserfc)."""

from __future__ import annotations

import base64
import json
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from joserfc import jws as rfc_jws
from joserfc.jwk import KeySet, OKPKey

from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.keys.key_document import verify_key_document
from cti_exchange.keys.model import KeyCheckError, KeyRejection
from tests.conftest import Agency, pin


def test_show_lists_rfc7638_thumbprints(cert_fr: Agency) -> None:
    shown = cert_fr.run("keys", "show", "--json").json()
    public = json.loads((cert_fr.home / "keys" / "public.json").read_text())
    for key in shown["keys"]:
        jwk = next(k for k in public["keys"] if k["kid"] == key["kid"])
        # joserfc computes the RFC 7638 thumbprint independently of jwcrypto
        assert OKPKey.import_key(jwk).thumbprint() == key["thumbprint"]
        assert key["status"] == "current"
    text = cert_fr.run("keys", "show")
    assert text.exit_code == 0 and shown["keys"][0]["thumbprint"] in text.stdout


def test_export_is_a_signed_public_jwks(cert_fr: Agency, tmp_path: Path) -> None:
    path = cert_fr.export_keys(tmp_path / "fr.json")
    document = json.loads(path.read_text())
    payload = json.loads(base64.urlsafe_b64decode(document["payload"] + "=="))
    assert all(not ({"d", "k", "p", "q"} & set(k)) for k in payload["keys"])
    assert payload["agency"]["id"] == "cert-fr"
    # Any JOSE library can check it: verify with joserfc against the signing key inside.
    keyset = KeySet.import_key_set({"keys": payload["keys"]})
    signing = next(k for k in keyset.keys if k.as_dict()["use"] == "sig")
    general = rfc_jws.deserialize_json(document, signing, algorithms=["EdDSA"])
    assert json.loads(general.payload)["agency"]["id"] == "cert-fr"


def test_wrong_passphrase_is_one_line_auth_error(cert_fr: Agency, tmp_path: Path) -> None:
    result = cert_fr.run(
        "keys",
        "export",
        "-o",
        str(tmp_path / "x.json"),
        env={"CTI_EXCHANGE_PASSPHRASE": "wrong wrong wrong"},
    )
    assert result.exit_code == 3
    assert result.stderr.startswith("cti-exchange: error: wrong passphrase")
    assert result.stderr.count("\n") == 1


def test_loose_private_key_file_refused(cert_fr: Agency, tmp_path: Path) -> None:
    private = cert_fr.home / "keys" / "private.jwe"
    private.chmod(0o640)
    result = cert_fr.run("keys", "export", "-o", str(tmp_path / "x.json"))
    assert result.exit_code == 2
    assert f"chmod 600 {private}" in result.stderr
    assert "Traceback" not in result.stderr


def test_export_says_who_needs_the_fingerprint_call(cert_fr: Agency, tmp_path: Path) -> None:
    """After a rotation it still told the operator to phone every partner, while a partner that
    pinned us takes the new file with `partners update-keys`, checked against the old keys."""
    result = cert_fr.run("keys", "export", "-o", str(tmp_path / "x.json"))
    assert result.exit_code == 0, result.stderr
    assert "A new partner pins it with this fingerprint" in result.stderr
    assert "no new call after `keys rotate`" in result.stderr


def test_rotation_keeps_old_keys_verifying(cert_fr: Agency, cert_in: Agency, tmp_path: Path) -> None:
    pin(cert_in, cert_fr, tmp_path)
    before = cert_fr.export_keys(tmp_path / "before.json").read_bytes()
    old_kids = {k["kid"] for k in cert_fr.run("keys", "show", "--json").json()["keys"]}

    rotated = cert_fr.run("keys", "rotate", "--json")
    assert rotated.exit_code == 0, rotated.stderr
    new_kids = {k["kid"] for k in rotated.json()["new_keys"]}
    assert len(new_kids) == 2 and not new_kids & old_kids
    keys = cert_fr.run("keys", "show", "--json").json()["keys"]
    assert {k["kid"]: k["status"] for k in keys if k["kid"] in old_kids} == dict.fromkeys(old_kids, "retired")
    assert stat.S_IMODE((cert_fr.home / "keys" / "private.jwe").stat().st_mode) == 0o600

    # The partner accepts the rotation because a key it already pinned signed it ...
    after = cert_fr.export_keys(tmp_path / "after.json")
    update = cert_in.run("partners", "update-keys", "cert-fr", "--jwks", str(after), "--json")
    assert update.exit_code == 0, update.stderr
    assert update.json()["trusted_by"].startswith("pinned-key cert-fr-sig-")
    assert set(update.json()["added"]) == new_kids

    # ... and material signed before the rotation still verifies with the retired key.
    home = ProfileHome(cert_in.home)
    ring = home.partner_keyring(home.load_profile().partners["cert-fr"])
    old_doc = verify_key_document(before, source="before.json")
    (old_signer,) = old_doc.signer_kids
    old_key = ring.find(old_signer)
    assert old_key is not None
    assert old_key.status.value == "retired"
    assert old_doc.keyring.issued is not None
    assert ring.signing_key(old_signer, at=old_doc.keyring.issued).kid == old_signer


def test_revocation(cert_fr: Agency, cert_in: Agency, tmp_path: Path) -> None:
    pin(cert_in, cert_fr, tmp_path)
    keys = cert_fr.run("keys", "show", "--json").json()["keys"]
    old_sig = next(k["kid"] for k in keys if k["use"] == "sig")
    cert_fr.run("keys", "rotate", "--use", "sig")  # a retired key the partner already trusts

    revoked = cert_fr.run("keys", "revoke", old_sig, "--reason", "laptop stolen", "--json")
    assert revoked.exit_code == 0, revoked.stderr
    assert revoked.json()["revoked"]["status"] == "revoked"
    assert revoked.json()["replacement"] is None  # it was not the current key

    again = cert_fr.run("keys", "revoke", old_sig)
    assert again.exit_code == 2 and "already revoked" in again.stderr
    assert cert_fr.run("keys", "revoke", "no-such-kid").exit_code == 2

    # Revoking the current key makes a replacement at once: a revoked key is never used again.
    current = next(
        k["kid"]
        for k in cert_fr.run("keys", "show", "--json").json()["keys"]
        if k["use"] == "sig" and k["status"] == "current"
    )
    replaced = cert_fr.run("keys", "revoke", current, "--json").json()
    assert replaced["replacement"]["use"] == "sig" and replaced["replacement"]["status"] == "current"

    # Neither surviving pinned key signs the new document: the partner must confirm out of band.
    doc = cert_fr.export_keys(tmp_path / "revoked.json")
    refused = cert_in.run("partners", "update-keys", "cert-fr", "--jwks", str(doc))
    assert refused.exit_code == 4 and "--fingerprint" in refused.stderr
    accepted = cert_in.run(
        "partners",
        "update-keys",
        "cert-fr",
        "--jwks",
        str(doc),
        "--fingerprint",
        replaced["replacement"]["thumbprint"],
        "--json",
    )
    assert accepted.exit_code == 0, accepted.stderr
    assert set(accepted.json()["newly_revoked"]) == {old_sig}
    assert current in accepted.json()["added"]  # never pinned before, arrives already revoked

    home = ProfileHome(cert_in.home)
    ring = home.partner_keyring(home.load_profile().partners["cert-fr"])
    key = ring.find(old_sig)
    assert key is not None
    assert key.revoked_at is not None and key.revocation_reason == "laptop stolen"
    ring.signing_key(old_sig, at=key.created + (key.revoked_at - key.created) / 2)  # before: fine
    with pytest.raises(KeyCheckError) as err:
        ring.signing_key(old_sig, at=key.revoked_at + timedelta(seconds=1))
    assert err.value.reason is KeyRejection.REVOKED


def test_rollback_to_an_older_key_document_refused(cert_fr: Agency, cert_in: Agency, tmp_path: Path) -> None:
    old = cert_fr.export_keys(tmp_path / "old.json")
    cert_fr.run("keys", "rotate")
    new = cert_fr.export_keys(tmp_path / "new.json")
    result = cert_in.run(
        "partners",
        "add",
        "cert-fr",
        "--jwks",
        str(new),
        "--fingerprint",
        cert_fr.signing_fingerprint(),
    )
    assert result.exit_code == 0, result.stderr
    rollback = cert_in.run("partners", "update-keys", "cert-fr", "--jwks", str(old))
    assert rollback.exit_code == 4 and "rollback" in rollback.stderr


def test_revoking_the_current_signing_key_says_what_partners_and_we_must_do(cert_fr: Agency) -> None:
    """Found on a walkthrough: the output gave no thumbprint for the new key, did not say that
    partners need it read out of band (the revoked key cannot vouch for the new file), nor that
    a stolen keys/private.jwe holds the other current key as well."""
    keys = cert_fr.run("keys", "show", "--json").json()["keys"]
    signing = next(k["kid"] for k in keys if k["use"] == "sig")
    encryption = next(k["kid"] for k in keys if k["use"] == "enc")
    revoked = cert_fr.run("keys", "revoke", signing, "--reason", "compromised")
    assert revoked.exit_code == 0, revoked.stderr
    new = next(
        k
        for k in cert_fr.run("keys", "show", "--json").json()["keys"]
        if k["use"] == "sig" and k["status"] == "current"
    )
    assert f"New current sig key {new['kid']} (thumbprint {new['thumbprint']})" in revoked.stdout
    assert f"read them its thumbprint {new['thumbprint']} by another channel" in revoked.stderr
    assert f"revoke the other current key too ({encryption})" in revoked.stderr
    assert "`cti-exchange keys passphrase`" in revoked.stderr
