"""A co-recipient (cert-de) relaying what cert-fr shared, ahead of cert-fr's own envelope:
real keys, sealed file envelopes opened by cert-in, its real SQLite store.

1. cert-de re-sends cert-fr's indicator under the same id and `modified`, still naming cert-fr
   as creator, but revoked, TLP:CLEAR and with another pattern: cert-fr's copy must replace it.
2. cert-de defines cert-fr's custom marking id first, stating TLP:CLEAR (the helpers here
   serve test_co_recipient_markings.py)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from cti_exchange.profile.model import identity_id_for
from cti_exchange.stix.tlp import TLP2_EXTENSION_ID, Tlp
from tests.conftest import Agency, make_agency, pin
from tests.exchange.conftest import store_rows

FR_ID = identity_id_for("cert-fr")
DE_ID = identity_id_for("cert-de")
IID = "indicator--0f0e0d0c-0b0a-4009-8807-060504030201"
MID = "marking-definition--7a7a7a7a-1111-4222-8333-444455556666"
T1, T2 = "2026-01-10T10:00:00.000Z", "2026-01-11T10:00:00.000Z"


def _three(tmp: Path) -> tuple[Agency, Agency, Agency]:
    fr = make_agency(tmp, "cert-fr", "CERT-FR")
    india = make_agency(tmp, "cert-in", "CERT-In")
    de = make_agency(tmp, "cert-de", "CERT-DE")
    for receiver, sender in ((india, fr), (fr, india), (india, de), (de, india)):
        pin(receiver, sender, tmp)
    assert fr.run("partners", "set", "cert-in", "--allow-red").exit_code == 0
    return fr, india, de


def _indicator(
    object_id: str, value: str, *, creator: str, markings: list[str], **extra: Any
) -> dict[str, Any]:
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": object_id,
        "created": T1,
        "modified": extra.pop("modified", T1),
        "created_by_ref": creator,
        "name": value,
        "indicator_types": ["malicious-activity"],
        "pattern": f"[domain-name:value = '{value}']",
        "pattern_type": "stix",
        "valid_from": T1,
        "valid_until": "2099-01-01T00:00:00.000Z",
        "confidence": 80,
        "object_marking_refs": markings,
        **extra,
    }


def _marking(level: str, creator: str) -> dict[str, Any]:
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": MID,
        "created": "2026-01-01T00:00:00.000Z",
        "created_by_ref": creator,
        "name": f"CERT-FR {level}",
        "extensions": {TLP2_EXTENSION_ID: {"extension_type": "property-extension", "tlp_2_0": level}},
    }


def _send(sender: Agency, receiver: Agency, objects: list[dict[str, Any]], tmp: Path) -> dict[str, Any]:
    """`seal` by `sender`, `open --json` by `receiver`: its result."""
    name = uuid.uuid4().hex[:8]
    bundle = tmp / f"{name}.json"
    bundle.write_text(json.dumps({"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": objects}))
    envelope = tmp / f"{name}.env"
    sealed = sender.run("seal", str(bundle), "--to", receiver.agency_id, "-o", str(envelope), "--allow-red")
    assert sealed.exit_code == 0, sealed.stderr
    opened = receiver.run("open", str(envelope), "--json")
    assert opened.exit_code == 0, opened.stderr
    return dict(opened.json())


def test_the_creators_copy_replaces_a_co_recipients_earlier_one(tmp_path: Path) -> None:
    fr, india, de = _three(tmp_path)
    genuine = _indicator(IID, "c2.evil.example", creator=FR_ID, markings=[Tlp.AMBER.marking_id])
    forged = _indicator(IID, "harmless.example", creator=FR_ID, markings=[Tlp.CLEAR.marking_id], revoked=True)
    _send(de, india, [forged], tmp_path)
    opened = _send(fr, india, [genuine], tmp_path)
    assert store_rows(
        india, "SELECT partner, value, tlp, revoked, is_current FROM objects WHERE object_id = ?", IID
    ) == [("cert-fr", "c2.evil.example", "amber", 0, 1)]
    (reported,) = opened["versions_not_applied"]
    assert (reported["kind"], reported["owner"], reported["relay"]) == (
        "relay-copy-replaced",
        "cert-fr",
        "cert-de",
    )
    shown = india.run("triage", "show", IID)
    assert shown.exit_code == 0, shown.stderr
    assert "as cert-de relayed it" in shown.stdout and "harmless.example" in shown.stdout
    # `sight` goes back to cert-fr, the one source of what is stored
    sighted = india.run("sight", IID, "--queue", "--json")
    assert sighted.exit_code == 0, sighted.stderr
    assert [s["partner"] for s in sighted.json()["sightings"]] == ["cert-fr"]
