"""A partner's retired signing key verifies only what it signed before its retirement.

After `keys rotate` the old private key is kept (to read our own sent copies) but no longer
used: if it leaks, whatever it signs is refused as `retired-key`, once the partner has pinned
the rotation. It cannot vouch for a new key file either. A partner that rotates twice before
we update still goes through with the one file. Real server, real keys, through the CLI; the
leaked key seals and posts as tests/exchange/leaked_key.py says.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cti_exchange.clock import utc_now
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.keys.key_document import sign_key_document
from cti_exchange.keys.material import generate_key_pair
from cti_exchange.keys.model import Keyring, KeyStatus, KeyUse
from tests.conftest import PASSPHRASE, Agency, pin, update_keys
from tests.exchange.clock_shift import clock_shifter
from tests.exchange.conftest import Exchange, received_values, write_iocs
from tests.exchange.leaked_key import post_signed_with


def _quarantine(agency: Agency) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(agency.home / "store.sqlite")
    try:
        return conn.execute("SELECT reason, detail FROM quarantine ORDER BY id").fetchall()
    finally:
        conn.close()


def _pinned(receiver: Agency, partner: str) -> Keyring:
    home = ProfileHome(receiver.home)
    return home.partner_keyring(home.load_profile().partners[partner])


def test_a_new_envelope_signed_with_a_retired_key_is_refused(
    exchange: Exchange, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fr, india = exchange.fr, exchange.india
    old = ProfileHome(fr.home).keyring().current(KeyUse.SIG).kid
    assert fr.run("push", str(write_iocs(tmp_path / "a.csv", 2)), "--to", "cert-in").exit_code == 0
    assert fr.run("keys", "rotate").exit_code == 0
    update_keys(india, fr, tmp_path)
    pulled = india.run("pull")  # signed before the rotation: accepted
    assert pulled.exit_code == 0, pulled.stderr
    assert len(received_values(india)) == 2

    # Ten minutes later (beyond the clock skew a retired key is allowed), the old key leaks.
    clock_shifter(monkeypatch)(timedelta(minutes=10))
    post_signed_with(fr, "cert-in", write_iocs(tmp_path / "b.csv", 2, start=10), old)
    refused = india.run("pull")
    assert refused.exit_code == 4, refused.stderr
    assert "retired-key" in refused.stderr
    ((reason, detail),) = _quarantine(india)
    assert reason == "retired-key" and old in detail and "retired at" in detail
    assert len(received_values(india)) == 2
    # `keys rotate` recorded when, and the partner pinned it: the cut-off.
    status = json.loads((fr.home / "keys" / "public.json").read_text())["key_status"][old]
    assert status["status"] == "retired" and "retired_at" in status
    assert _pinned(india, "cert-fr").find(old).retired_at is not None  # type: ignore[union-attr]


def test_a_retired_key_cannot_vouch_for_a_new_key_file(
    cert_fr: Agency, cert_in: Agency, tmp_path: Path
) -> None:
    """Whoever holds the old key, once the partner's rotation is pinned, cannot make their own
    key the partner's current one (before, any pinned key not revoked could)."""
    pin(cert_in, cert_fr, tmp_path)
    home = ProfileHome(cert_fr.home)
    stolen = home.keyring().current(KeyUse.SIG)
    assert cert_fr.run("keys", "rotate").exit_code == 0
    update_keys(cert_in, cert_fr, tmp_path)

    # A file listing the old key as retired and the attacker's as current, without the
    # partner's real current key, signed by the keys it lists that are not revoked.
    ring, private = home.keyring(), dict(home.keys.unlock(PASSPHRASE))
    genuine = ring.current(KeyUse.SIG).kid
    attacker_private, attacker = generate_key_pair(KeyUse.SIG, "cert-fr", utc_now(), 365)
    forged_ring = replace(
        ring, keys=(*(k for k in ring.keys if k.kid != genuine), attacker), issued=utc_now()
    )
    private[attacker.kid] = attacker_private
    forged = tmp_path / "forged.json"
    forged.write_bytes(
        sign_key_document(forged_ring, {k: v for k, v in private.items() if forged_ring.find(k)})
    )
    refused = cert_in.run("partners", "update-keys", "cert-fr", "--jwks", str(forged))
    assert refused.exit_code == 4, refused.stderr
    assert f"only by {stolen.kid}, pinned as retired" in refused.stderr
    assert _pinned(cert_in, "cert-fr").find(attacker.kid) is None


def test_two_rotations_before_an_update_still_go_through(
    cert_fr: Agency, cert_in: Agency, tmp_path: Path
) -> None:
    pin(cert_in, cert_fr, tmp_path)
    first = ProfileHome(cert_fr.home).keyring().current(KeyUse.SIG).kid
    assert cert_fr.run("keys", "rotate").exit_code == 0
    second = ProfileHome(cert_fr.home).keyring().current(KeyUse.SIG).kid
    assert cert_fr.run("keys", "rotate").exit_code == 0
    updated = update_keys(cert_in, cert_fr, tmp_path)
    assert updated["trusted_by"] == f"pinned-key {first}"  # pinned as current, retired since
    ring = _pinned(cert_in, "cert-fr")
    assert ring.current(KeyUse.SIG).thumbprint == cert_fr.signing_fingerprint()
    assert {ring.find(k).status for k in (first, second)} == {KeyStatus.RETIRED}  # type: ignore[union-attr]


def test_a_later_key_file_cannot_move_a_retirement_later(
    cert_fr: Agency, cert_in: Agency, tmp_path: Path
) -> None:
    pin(cert_in, cert_fr, tmp_path)
    home = ProfileHome(cert_fr.home)
    old = home.keyring().current(KeyUse.SIG).kid
    assert cert_fr.run("keys", "rotate").exit_code == 0
    update_keys(cert_in, cert_fr, tmp_path)
    retired = _pinned(cert_in, "cert-fr").find(old)
    assert retired is not None and retired.retired_at is not None

    # CERT-FR's public.json edited (a broken tool): the old key's retirement a year later.
    path = fr_public = cert_fr.home / "keys" / "public.json"
    doc = json.loads(fr_public.read_text())
    doc["key_status"][old]["retired_at"] = "2099-01-01T00:00:00.000Z"
    path.write_text(json.dumps(doc))
    update_keys(cert_in, cert_fr, tmp_path)
    assert _pinned(cert_in, "cert-fr").find(old).retired_at == retired.retired_at  # type: ignore[union-attr]
