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

import cti_exchange.exchange.offline as offline
from cti_exchange.server.provisioning import collection_id_for
from tests.conftest import Agency
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


def _hostile_seal(monkeypatch: pytest.MonkeyPatch, sender: Agency, bundle: Path, to: str, out: Path) -> Path:
    """`seal` as a partner's modified client would: its own reading checks skipped."""
    with monkeypatch.context() as patched:
        patched.setattr(offline, "parse_json", lambda data, source: orjson.loads(data))
        patched.setattr(offline, "validate_bundle", lambda bundle: [])
        sealed = sender.run("seal", str(bundle), "--to", to, "-o", str(out))
    assert sealed.exit_code == 0, sealed.stderr
    return out


@pytest.mark.parametrize("depth", [300, 1010])
def test_open_refuses_a_bundle_nested_too_deep(
    partnered: tuple[Agency, Agency], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, depth: int
) -> None:
    fr, india = partnered
    envelope = _hostile_seal(
        monkeypatch, fr, _deep_bundle(tmp_path / "deep.json", depth), "cert-in", tmp_path / "e"
    )
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
    trio: tuple[Exchange, Agency], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exchange, de = trio
    fr, india = exchange.fr, exchange.india
    envelope = _hostile_seal(
        monkeypatch, de, _deep_bundle(tmp_path / "deep.json", 1010), "cert-in", tmp_path / "e"
    )
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
