"""`audit check-extract`: a partner checks an extract against the keys it pinned for the
exporting agency; and an extract signed with a key revoked since, dated back to before the
revocation, cannot vouch for records written after it."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from cti_exchange.audit.chain import sign_extract
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.keys.model import KeyUse
from tests.conftest import PASSPHRASE, Agency, make_agency, pin


def _payload(text: str) -> dict[str, Any]:
    part = text.strip().split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _run_docs_recipe(extract: Path, pinned: dict[str, Any]) -> None:
    """The Python block of docs/AUDIT.md, with the keys and their status from `pinned`."""
    docs = (Path(__file__).resolve().parents[2] / "docs" / "AUDIT.md").read_text()
    recipe = docs.split("In Python with joserfc", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    keys = {key["kid"]: key for key in pinned["keys"]}
    recipe = recipe.replace('"cert-fr-audit-2026-03.jws"', repr(str(extract)))
    recipe = recipe.replace("trusted_key = {...}", "trusted_key = KEYS[extract_kid(text)]")
    recipe = recipe.replace("head_key = {...}", 'head_key = KEYS[head["kid"]]')
    recipe = recipe.replace('key_status = extract["keys"]["key_status"]', "key_status = PINNED_STATUS")
    assert "{...}" not in recipe and "PINNED_STATUS" in recipe
    namespace: dict[str, Any] = {
        "KEYS": keys,
        "PINNED_STATUS": pinned["key_status"],
        "extract_kid": lambda text: _header(text)["kid"],
    }
    exec(compile(recipe, "docs/AUDIT.md", "exec"), namespace)  # noqa: S102 - our own docs


def _header(text: str) -> dict[str, Any]:
    part = text.strip().split(".")[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _export(agency: Agency, out: Path) -> Path:
    result = agency.run("audit", "export", "--since", "1d", "--until", "0m", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    return out


def test_a_partner_checks_an_extract_against_the_keys_it_pinned(tmp_path: Path) -> None:
    cert_fr = make_agency(tmp_path, "cert-fr", "CERT-FR")
    cert_in = make_agency(tmp_path, "cert-in", "CERT-In")
    pin(cert_in, cert_fr, tmp_path)
    extract = _export(cert_fr, tmp_path / "cert-fr-audit.jws")

    result = cert_in.run("audit", "check-extract", str(extract), "--partner", "cert-fr", "--json")
    assert result.exit_code == 0, result.stderr
    checked = result.json()
    assert checked["ok"] and checked["agency"] == "cert-fr" and checked["first_seq"] == 1
    assert checked["signing_key_thumbprint"] == cert_fr.signing_fingerprint()
    # Our own extract, against our own ring; a partner's without --partner says what to run.
    assert cert_fr.run("audit", "check-extract", str(extract)).exit_code == 0
    wrong = cert_in.run("audit", "check-extract", str(extract))
    assert wrong.exit_code == 2 and "--partner cert-fr" in wrong.stderr

    # One character of the signed payload changed: exit 4, one line.
    text = extract.read_text().strip()
    head, payload, signature = text.split(".")
    flipped = payload[:40] + ("A" if payload[40] != "A" else "B") + payload[41:]
    tampered = tmp_path / "tampered.jws"
    tampered.write_text(f"{head}.{flipped}.{signature}\n")
    refused = cert_in.run("audit", "check-extract", str(tampered), "--partner", "cert-fr")
    assert refused.exit_code == 4 and refused.stderr.count("\n") == 1


def test_an_extract_dated_back_with_a_revoked_key_is_refused(tmp_path: Path) -> None:
    """CERT-FR's first signing key is stolen; CERT-FR rotates and revokes it. The thief takes
    a later extract (it holds the revocation record itself), dates it back to before the
    revocation and signs it with the stolen key: it must not verify."""
    cert_fr = make_agency(tmp_path, "cert-fr", "CERT-FR")
    cert_in = make_agency(tmp_path, "cert-in", "CERT-In")
    pin(cert_in, cert_fr, tmp_path)
    home = ProfileHome(cert_fr.home)
    stolen = home.keys.unlock(PASSPHRASE)[home.keyring().current(KeyUse.SIG).kid]
    assert cert_fr.run("audit", "verify").exit_code == 0  # a head signed with the first key
    before = _payload(_export(cert_fr, tmp_path / "before.jws").read_text())["exported_at"]

    assert cert_fr.run("keys", "rotate", "--use", "sig").exit_code == 0
    rotated = cert_fr.export_keys(tmp_path / "cert-fr.rotated.keys.json")
    assert cert_in.run("partners", "update-keys", "cert-fr", "--jwks", str(rotated)).exit_code == 0
    assert cert_fr.run("keys", "revoke", stolen["kid"], "--reason", "stolen").exit_code == 0
    revoked = cert_fr.export_keys(tmp_path / "cert-fr.revoked.keys.json")
    assert cert_in.run("partners", "update-keys", "cert-fr", "--jwks", str(revoked)).exit_code == 0

    later = _export(cert_fr, tmp_path / "later.jws")
    assert cert_in.run("audit", "check-extract", str(later), "--partner", "cert-fr").exit_code == 0
    pinned = json.loads((cert_in.home / "partners" / "cert-fr.keys.json").read_text())
    _run_docs_recipe(later, pinned)
    document = _payload(later.read_text())
    assert any(r["details"].get("change") == "revoked" for r in document["records"])
    thumbprint = next(
        k["thumbprint"]
        for k in cert_fr.run("keys", "show", "--json").json()["keys"]
        if k["kid"] == stolen["kid"]
    )
    document |= {"exported_at": before, "signing_kid": stolen["kid"], "signing_key_thumbprint": thumbprint}
    forged = tmp_path / "forged.jws"
    forged.write_text(sign_extract(document, stolen) + "\n")

    for agency, extra in ((cert_in, ["--partner", "cert-fr"]), (cert_fr, [])):
        refused = agency.run("audit", "check-extract", str(forged), *extra)
        assert refused.exit_code == 4, refused.stdout
        assert f"with key {stolen['kid']}, but it holds what was written at" in refused.stderr
        assert "could not sign: it was revoked at" in refused.stderr
    # The recipe of docs/AUDIT.md refuses it too, given the key ring CERT-In pinned (step 1).
    with pytest.raises(AssertionError, match=stolen["kid"]):
        _run_docs_recipe(forged, json.loads((cert_in.home / "partners" / "cert-fr.keys.json").read_text()))
    # The honest extract made before the revocation still verifies.
    assert (
        cert_in.run("audit", "check-extract", str(tmp_path / "before.jws"), "--partner", "cert-fr").exit_code
        == 0
    )
