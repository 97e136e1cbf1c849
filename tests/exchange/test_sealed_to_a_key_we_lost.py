"""Our keys/ restored from a backup taken before `keys rotate`, while the partner already seals
to our newer encryption key: its envelope was marked `not-for-us` and dropped for good (exit 0),
restoring the right keys did not fetch it again, and the next envelope was held behind a "gap"
naming the number thrown away. Now it is held as `sealed-to-unknown-key-of-ours` (an alert,
exit 4), and goes through, with the envelopes behind it, once our keys are right again. One
addressed only to another agency is still skipped as not for us. Through the CLI, real server."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import requests

from cti_exchange.server.provisioning import collection_id_for
from tests.conftest import Agency, pin
from tests.exchange.conftest import Exchange, one_indicator_bundle, received_values, store_rows, write_iocs

TAXII = "application/taxii+json;version=2.1"
GREEN = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"


def _restore(agency: Agency, backup: Path) -> None:
    shutil.rmtree(agency.home / "keys")
    shutil.copytree(backup, agency.home / "keys")


def _records(agency: Agency) -> list[tuple[str, int]]:
    return [
        (str(reason), int(closed))
        for reason, closed in store_rows(
            agency, "SELECT reason, resolved_at IS NOT NULL FROM quarantine ORDER BY id"
        )
    ]


def test_an_envelope_sealed_to_our_newer_key_is_held_until_our_keys_are_restored(
    exchange: Exchange, tmp_path: Path
) -> None:
    fr, india = exchange.fr, exchange.india
    assert fr.run("push", str(write_iocs(tmp_path / "a.csv", 2)), "--to", "cert-in").exit_code == 0
    assert india.run("sync").exit_code == 0
    shutil.copytree(india.home / "keys", tmp_path / "keys-old")  # the backup, before the rotation
    assert india.run("keys", "rotate").exit_code == 0
    document = india.export_keys(tmp_path / "cert-in-rotated.json")
    assert fr.run("partners", "update-keys", "cert-in", "--jwks", str(document)).exit_code == 0
    assert fr.run("push", str(write_iocs(tmp_path / "b.csv", 2, start=10)), "--to", "cert-in").exit_code == 0
    new_enc = next(
        k["kid"]
        for k in india.run("keys", "show", "--json").json()["keys"]
        if k["use"] == "enc" and k["status"] == "current"
    )

    shutil.copytree(india.home / "keys", tmp_path / "keys-new")
    _restore(india, tmp_path / "keys-old")
    held = india.run("sync")
    assert held.exit_code == 4, held.stderr  # an alert, not "pulled 0"
    assert "sealed-to-unknown-key-of-ours" in held.stderr
    assert new_enc in held.stderr  # which key it was sealed to
    assert "restore the newer keys" in held.stderr
    assert _records(india) == [("sealed-to-unknown-key-of-ours", 0)]
    outcomes = store_rows(india, "SELECT outcome FROM taxii_processed ORDER BY rowid")
    assert ("not-for-us",) not in outcomes
    listed = india.run("quarantine", "list", "--json").json()
    assert [q["reason"] for q in listed] == ["sealed-to-unknown-key-of-ours"]

    # The next envelope waits behind it, naming it as held, not as missing.
    assert fr.run("push", str(write_iocs(tmp_path / "c.csv", 2, start=20)), "--to", "cert-in").exit_code == 0
    assert india.run("sync").exit_code == 4
    again = india.run("sync")  # held, and our keys unchanged: no new alert
    assert again.exit_code == 0, again.stderr
    assert len(received_values(india)) == 2

    _restore(india, tmp_path / "keys-new")
    released = india.run("sync")
    assert released.exit_code == 0, released.stderr
    assert len(received_values(india)) == 6  # both, in order, no gap accepted
    assert [closed for _, closed in _records(india)] == [1, 1]
    assert india.run("quarantine", "list", "--json").json() == []
    assert fr.run("push", str(write_iocs(tmp_path / "d.csv", 2, start=30)), "--to", "cert-in").exit_code == 0
    assert india.run("sync").exit_code == 0
    assert len(received_values(india)) == 8


def test_an_envelope_for_another_agency_only_is_still_not_for_us(
    trio: tuple[Exchange, Agency], tmp_path: Path
) -> None:
    exchange, de = trio
    fr, india = exchange.fr, exchange.india
    pin(fr, de, tmp_path)
    bundle = one_indicator_bundle(
        tmp_path / "de.json",
        "indicator--6f0c5a9e-3b1d-4f6a-9a51-0d4e2b7c8f10",
        "198.51.100.7",
        object_marking_refs=[GREEN],
    )
    sealed = fr.run("seal", str(bundle), "--to", "cert-de", "-o", str(tmp_path / "e"))
    assert sealed.exit_code == 0, sealed.stderr
    url = f"{exchange.server.api_root_url}collections/{collection_id_for('cert-fr', 'cert-in')}/objects/"
    posted = requests.post(
        url,
        data=json.dumps({"objects": [json.loads((tmp_path / "e").read_text())]}),
        auth=("cert-fr", exchange.passwords["cert-fr"]),
        headers={"Content-Type": TAXII, "Accept": TAXII},
        timeout=30,
    )
    assert posted.status_code in (200, 202), posted.text
    synced = india.run("sync")
    assert synced.exit_code == 0, synced.stderr
    assert _records(india) == []
    outcomes = store_rows(india, "SELECT outcome FROM taxii_processed")
    assert ("not-for-us",) in outcomes
