"""A partner (compromised, or with a modified client) signs a bundle nested deeper than any STIX
object is: orjson reads it (up to 1024 levels) but the store cannot write it (orjson writes 255,
the standard library then ran out of stack). It used to be opened, then fail to be stored with
an internal error (exit 70), at every pull and sync from then on: no other partner's
intelligence arrived, receipts and the outbox waited. Now it is refused as invalid STIX when
opened, quarantined, and the pull goes on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

from cti_exchange.clock import utc_now
from cti_exchange.envelope.seal import SenderKeys, seal_bundle
from cti_exchange.exchange.parties import recipient_key
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.keys.model import KeyUse
from cti_exchange.partnership import get_partner
from cti_exchange.server.provisioning import collection_id_for
from cti_exchange.store.store import open_store
from tests.conftest import PASSPHRASE, Agency
from tests.exchange.conftest import Exchange, received_values, write_iocs

TAXII = "application/taxii+json;version=2.1"
GREEN = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"


def _deep_bundle(path: Path, depth: int) -> Path:
    indicator = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": "indicator--0d0d0d0d-0000-4000-8000-00000000dee9",
        "created": "2026-01-10T10:00:00.000Z",
        "modified": "2026-01-10T10:00:00.000Z",
        "pattern": "[domain-name:value = 'deep.example']",
        "pattern_type": "stix",
        "valid_from": "2026-01-10T10:00:00.000Z",
        "object_marking_refs": [GREEN],
    }
    text = json.dumps(indicator)[:-1] + ', "x_deep": ' + "[" * depth + "0" + "]" * depth + "}"
    path.write_text(
        '{"type": "bundle", "id": "bundle--6b1c0f5e-1f0a-4c3e-9a51-3f0b7d1c2e41", "objects": [' + text + "]}"
    )
    return path


def _hostile_seal(sender: Agency, bundle: Path, to: str, out: Path) -> Path:
    """`seal` as a partner's modified client would: the bundle's bytes sealed as they are, none
    of `seal`'s reading checks made (the nesting limit among them), with the partner's own keys
    and the next position of its channel to `to` (read from its store, nothing written to it),
    through the core's sealing (envelope/seal.py); written as `seal -o` writes its file."""
    home = ProfileHome(sender.home)
    raw = bundle.read_bytes()
    parsed = orjson.loads(raw)
    partner = get_partner(home, to)
    ring = home.keyring()
    with open_store(home) as store:
        channels = store.outbound.next_positions([partner.agency_id])
    sealed = seal_bundle(
        raw,
        bundle_id=parsed["id"],
        object_count=len(parsed["objects"]),
        sender=SenderKeys(
            agency_id=sender.agency_id,
            signing_key=home.keys.unlock(PASSPHRASE)[ring.current(KeyUse.SIG).kid],
            own_encryption_key=ring.current(KeyUse.ENC).public_jwk,
        ),
        recipients=[recipient_key(home, partner)],
        channels=channels,
        now=utc_now(),
    )
    out.write_text(json.dumps(sealed.artifact, indent=1) + "\n")
    return out


@pytest.mark.parametrize("depth", [300, 1010])
def test_open_refuses_a_bundle_nested_too_deep(
    partnered: tuple[Agency, Agency], tmp_path: Path, depth: int
) -> None:
    fr, india = partnered
    envelope = _hostile_seal(fr, _deep_bundle(tmp_path / "deep.json", depth), "cert-in", tmp_path / "e")
    opened = india.run("open", str(envelope), "--json")
    assert opened.exit_code == 4, opened.stderr  # refused: an integrity alert, not exit 70
    assert "internal error" not in opened.stderr
    [held] = india.run("quarantine", "list", "--json").json()
    assert held["reason"] == "invalid-stix"
    assert f"nested {depth + 3} levels deep (at most 255)" in held["detail"]
    assert india.run("triage", "list", "--json").json()["items"] == []


def test_our_own_input_nested_too_deep_is_refused_before_it_is_shared(cli: Any, tmp_path: Path) -> None:
    """What a partner would refuse is never sealed: 300 levels is within what Python reads."""
    result = cli("validate", str(_deep_bundle(tmp_path / "deep.json", 300)), home=tmp_path / "none")
    assert result.exit_code == 6
    assert "JSON nested 303 levels deep (at most 255)" in result.stderr


def test_a_poisoned_envelope_does_not_stop_the_pull_of_other_partners(
    trio: tuple[Exchange, Agency], tmp_path: Path
) -> None:
    exchange, de = trio
    fr, india = exchange.fr, exchange.india
    envelope = _hostile_seal(de, _deep_bundle(tmp_path / "deep.json", 1010), "cert-in", tmp_path / "e")
    url = f"{exchange.server.api_root_url}collections/{collection_id_for('cert-de', 'cert-in')}/objects/"
    posted = requests.post(
        url,
        data=json.dumps({"objects": [json.loads(envelope.read_text())]}),
        auth=("cert-de", exchange.passwords["cert-de"]),
        headers={"Content-Type": TAXII, "Accept": TAXII},
        timeout=30,
    )
    assert posted.status_code in (200, 202), posted.text
    pushed = fr.run("push", str(write_iocs(tmp_path / "fr.csv", 3)), "--to", "cert-in")
    assert pushed.exit_code == 0, pushed.stderr

    first = india.run("sync", "--json")
    assert first.exit_code == 4, first.stderr  # the refusal is an alert; the rest went on
    assert len(received_values(india)) == 3  # CERT-FR's indicators arrived
    again = india.run("sync")
    assert again.exit_code == 0, again.stderr  # refused once, for good: not met again
    reasons = [q["reason"] for q in india.run("quarantine", "list", "--json").json()]
    assert reasons == ["invalid-stix"]
