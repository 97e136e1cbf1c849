"""Trusting a partner's keys over time: what a stolen signing key, a forged identity or an
edited key file can and cannot do (keys/pinning.py, partnership.py, keys/key_document.py,
keys/protection.py). Real keys, real files, through the CLI."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jwcrypto import jwa, jwe, jwk
from jwcrypto.common import json_encode

from cti_exchange.clock import utc_now
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.keys.key_document import sign_key_document
from cti_exchange.keys.material import generate_key_pair
from cti_exchange.keys.model import Keyring, KeyStatus, KeyUse
from cti_exchange.keys.protection import PBKDF2_ITERATIONS
from cti_exchange.profile.model import identity_id_for
from tests.conftest import PASSPHRASE, TEST_PROCESSES, Agency, make_agency, pin
from tests.test_processes.sitecustomize import TEST_PBKDF2_ITERATIONS


def _pinned(receiver: Agency, partner: str) -> Keyring:
    home = ProfileHome(receiver.home)
    return home.partner_keyring(home.load_profile().partners[partner])


def _forge(sender: Agency, path: Path, change: Any, *, extra: dict[str, Any] | None = None) -> Path:
    """A key document built from the sender's own ring and private keys, as someone holding
    them (a stolen key, a broken tool) could sign it."""
    home = ProfileHome(sender.home)
    ring, private = home.keyring(), dict(home.keys.unlock(PASSPHRASE))
    private.update(extra or {})
    forged = change(ring)
    path.write_bytes(sign_key_document(forged, {k: v for k, v in private.items() if forged.find(k)}))
    return path


def _update(receiver: Agency, partner: str, document: Path, *extra: str) -> Any:
    return receiver.run("partners", "update-keys", partner, "--jwks", str(document), *extra)


def test_a_key_added_with_a_stolen_key_is_withdrawn_by_the_partners_next_key_file(
    cert_fr: Agency, cert_in: Agency, tmp_path: Path
) -> None:
    pin(cert_in, cert_fr, tmp_path)
    stolen = ProfileHome(cert_fr.home).keyring().current(KeyUse.SIG)
    attacker_private, attacker = generate_key_pair(KeyUse.SIG, "cert-fr", utc_now(), 365)

    def add_attacker(ring: Keyring) -> Keyring:
        keys = tuple(replace(k, status=KeyStatus.RETIRED) if k.kid == stolen.kid else k for k in ring.keys)
        return replace(ring, keys=(*keys, attacker), issued=utc_now())

    forged = _forge(cert_fr, tmp_path / "forged.json", add_attacker, extra={attacker.kid: attacker_private})
    assert _update(cert_in, "cert-fr", forged).exit_code == 0  # signed by a pinned key: accepted
    assert _pinned(cert_in, "cert-fr").find(attacker.kid) is not None

    # CERT-FR notices, revokes the stolen key, and hands over its new file out of band.
    assert cert_fr.run("keys", "revoke", stolen.kid, "--reason", "compromised").exit_code == 0
    genuine = cert_fr.export_keys(tmp_path / "genuine.json")
    updated = _update(cert_in, "cert-fr", genuine, "--fingerprint", cert_fr.signing_fingerprint())
    assert updated.exit_code == 0, updated.stderr

    ring = _pinned(cert_in, "cert-fr")
    withdrawn = ring.find(attacker.kid)
    assert withdrawn is not None and withdrawn.status is KeyStatus.REVOKED
    assert withdrawn.revoked_at == withdrawn.created  # never valid: it signed nothing we accept
    assert ring.current(KeyUse.SIG).thumbprint == cert_fr.signing_fingerprint()
    profile = ProfileHome(cert_in.home).load_profile()
    assert profile.partners["cert-fr"].fingerprint == cert_fr.signing_fingerprint()
    # The attacker can no longer vouch for anything.
    again = _forge(cert_fr, tmp_path / "again.json", add_attacker, extra={attacker.kid: attacker_private})
    assert _update(cert_in, "cert-fr", again).exit_code == 4


def test_a_key_file_with_two_current_signing_keys_is_refused(
    cert_fr: Agency, cert_in: Agency, tmp_path: Path
) -> None:
    pin(cert_in, cert_fr, tmp_path)
    extra_private, extra = generate_key_pair(KeyUse.SIG, "cert-fr", utc_now(), 365)
    forged = _forge(
        cert_fr,
        tmp_path / "two.json",
        lambda r: replace(r, keys=(*r.keys, extra)),
        extra={extra.kid: extra_private},
    )
    refused = _update(cert_in, "cert-fr", forged)
    assert refused.exit_code == 4 and "2 current signing keys" in refused.stderr


def test_a_partner_cannot_claim_another_agencys_stix_identity(tmp_path: Path) -> None:
    """The identity decides which objects a partner may version in our store."""
    cert_fr = make_agency(tmp_path, "cert-fr", "CERT-FR")
    cert_xx = make_agency(tmp_path, "cert-xx", "CERT-XX")
    public = cert_xx.home / "keys" / "public.json"
    document = json.loads(public.read_text())
    document["agency"]["identity_id"] = identity_id_for("cert-in")
    public.write_text(json.dumps(document))
    exported = cert_xx.export_keys(tmp_path / "xx.json")
    refused = cert_fr.run(
        "partners", "add", "cert-xx", "--jwks", str(exported), "--fingerprint", cert_xx.signing_fingerprint()
    )
    assert refused.exit_code == 4 and refused.stderr.count("\n") == 1
    assert identity_id_for("cert-in") in refused.stderr and "cert-xx" in refused.stderr
    assert "cert-xx" not in ProfileHome(cert_fr.home).load_profile().partners


def test_a_future_dated_key_file_is_refused_and_cannot_block_later_ones(
    cert_fr: Agency, cert_in: Agency, tmp_path: Path
) -> None:
    pin(cert_in, cert_fr, tmp_path)
    future = _forge(
        cert_fr, tmp_path / "future.json", lambda r: replace(r, issued=datetime(2099, 1, 1, tzinfo=UTC))
    )
    refused = _update(cert_in, "cert-fr", future)
    assert refused.exit_code == 4 and "in the future" in refused.stderr

    # A ring pinned from such a file before this rule existed does not block a revocation.
    home = ProfileHome(cert_in.home)
    partner = home.load_profile().partners["cert-fr"]
    poisoned = replace(_pinned(cert_in, "cert-fr"), issued=datetime(2099, 1, 1, tzinfo=UTC))
    relative = home.save_partner_keys("cert-fr", poisoned, b"{}")
    home.save_profile(home.load_profile().with_partner(replace(partner, jwks=relative)))
    stolen = ProfileHome(cert_fr.home).keyring().current(KeyUse.SIG)
    assert cert_fr.run("keys", "revoke", stolen.kid, "--reason", "compromised").exit_code == 0
    genuine = cert_fr.export_keys(tmp_path / "genuine.json")
    applied = _update(cert_in, "cert-fr", genuine, "--fingerprint", cert_fr.signing_fingerprint())
    assert applied.exit_code == 0, applied.stderr
    revoked = _pinned(cert_in, "cert-fr").find(stolen.kid)
    assert revoked is not None and revoked.status is KeyStatus.REVOKED


def test_an_expired_key_cannot_vouch_for_new_keys(cert_fr: Agency, cert_in: Agency, tmp_path: Path) -> None:
    pin(cert_in, cert_fr, tmp_path)
    home = ProfileHome(cert_in.home)
    ring = _pinned(cert_in, "cert-fr")
    expired = tuple(
        replace(k, expires=datetime(2025, 9, 1, tzinfo=UTC), created=datetime(2024, 9, 1, tzinfo=UTC))
        for k in ring.keys
    )
    partner = home.load_profile().partners["cert-fr"]
    relative = home.save_partner_keys("cert-fr", replace(ring, keys=expired), b"{}")
    home.save_profile(home.load_profile().with_partner(replace(partner, jwks=relative)))
    assert cert_fr.run("keys", "rotate").exit_code == 0
    rotated = cert_fr.export_keys(tmp_path / "rotated.json")
    refused = _update(cert_in, "cert-fr", rotated)
    assert refused.exit_code == 4 and "not signed by any key already pinned" in refused.stderr


def test_keys_export_refuses_a_key_added_to_public_json_without_its_private_half(
    cert_fr: Agency, tmp_path: Path
) -> None:
    """public.json is not encrypted: someone who can write our files but lacks the passphrase
    must not get a key of theirs vouched for to partners."""
    public = cert_fr.home / "keys" / "public.json"
    document = json.loads(public.read_text())
    _, planted = generate_key_pair(KeyUse.SIG, "cert-fr", utc_now(), 365)
    document["keys"].append(planted.public_jwk)
    document["key_status"][planted.kid] = planted.status_dict()
    public.write_text(json.dumps(document))
    refused = cert_fr.run("keys", "export", "-o", str(tmp_path / "out.json"))
    assert (
        refused.exit_code == 2
        and planted.kid in refused.stderr
        and "no matching private key" in refused.stderr
    )
    assert not (tmp_path / "out.json").exists()


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "PBES2-HS512+A256KW", "enc": "A256GCM", "p2c": 1},
        {"alg": "PBES2-HS256+A128KW", "enc": "A256GCM", "p2c": 210_000},
    ],
    ids=["one-round", "weaker-alg"],
)
def test_a_private_key_file_rewritten_with_a_weaker_key_derivation_is_refused(
    cert_fr: Agency, header: dict[str, Any]
) -> None:
    """Someone who learnt the passphrase once could rewrite the file to give way to guessing
    later; it still opens with the right passphrase, so the parameters themselves are checked."""
    path = cert_fr.home / "keys" / "private.jwe"
    keys = list(ProfileHome(cert_fr.home).keys.unlock(PASSPHRASE).values())
    token = jwe.JWE(
        json.dumps({"keys": keys}).encode(), protected=json_encode({**header, "cty": "jwk-set+json"})
    )
    jwa.default_max_pbkdf2_iterations = max(jwa.default_max_pbkdf2_iterations, header["p2c"])
    token.add_recipient(jwk.JWK.from_password(PASSPHRASE))
    path.write_bytes(token.serialize(compact=True).encode())
    refused = cert_fr.run("keys", "export", "-o", "-")
    assert refused.exit_code == 2 and "it was altered" in refused.stderr


def test_a_malformed_partner_key_is_a_clear_error(cert_fr: Agency, cert_in: Agency, tmp_path: Path) -> None:
    exported = json.loads(cert_fr.export_keys(tmp_path / "fr.json").read_text())
    payload = json.loads(base64.urlsafe_b64decode(exported["payload"] + "=="))
    payload["keys"][0]["x"] = 5
    exported["payload"] = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(exported))
    result = cert_in.run("partners", "add", "cert-fr", "--jwks", str(broken), "--fingerprint", "x")
    assert result.exit_code == 2 and "'x' is not a 32-byte" in result.stderr


def _without_test_processes_setting() -> dict[str, str]:
    """The environment of a process started as users start one: without the suite's
    sitecustomize (tests/test_processes), so with the product's own key derivation."""
    kept = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p) != TEST_PROCESSES]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if kept:
        env["PYTHONPATH"] = os.pathsep.join(kept)
    return {**env, "CTI_EXCHANGE_PASSPHRASE": PASSPHRASE}


def _key_file_rounds(home: Path) -> Any:
    protected = (home / "keys" / "private.jwe").read_text().split(".")[0]
    return json.loads(base64.urlsafe_b64decode(protected + "=" * (-len(protected) % 4)))["p2c"]


def test_the_product_derives_key_files_with_210000_rounds_and_refuses_the_tests_fewer(
    cert_fr: Agency, tmp_path: Path
) -> None:
    """The suite writes key files with fewer PBKDF2 rounds to save time; the product, started
    without that setting, writes OWASP's 210,000 and refuses a file with fewer as altered."""
    assert PBKDF2_ITERATIONS == TEST_PBKDF2_ITERATIONS < 210_000
    assert _key_file_rounds(cert_fr.home) == TEST_PBKDF2_ITERATIONS

    def real_process(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "cti_exchange", *args]
        env = _without_test_processes_setting()
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    made = real_process("--home", str(tmp_path / "real"), "init", "--agency", "cert-in", "--name", "CERT-In")
    assert made.returncode == 0, made.stderr
    assert _key_file_rounds(tmp_path / "real") == 210_000
    assert real_process("--home", str(tmp_path / "real"), "keys", "export", "-o", "-").returncode == 0

    refused = real_process("--home", str(cert_fr.home), "keys", "export", "-o", "-")
    assert refused.returncode == 2 and "it was altered" in refused.stderr, refused.stderr
