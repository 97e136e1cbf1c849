"""A partner's TLP:AMBER, AMBER+STRICT and RED objects go on to no other agency (TLP 2.0: the
recipient's organisation and its clients at most, and a partner CERT is neither): cert-fr
shares with cert-in over a real TAXII server, cert-in accepts, exports STIX and pushes the file
to cert-de. Its GREEN objects, cert-in's own objects and a push back to cert-fr go as before
(policy/sharing.py, RULE_ONWARD)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cti_exchange.policy.sharing import RULE_REFERS
from cti_exchange.profile.model import identity_id_for
from tests.conftest import Agency
from tests.exchange.conftest import Exchange, received_values

FR_VALUES = {
    "amber": "fr-amber.evil.example",
    "amber+strict": "fr-strict.evil.example",
    "red": "fr-red.evil.example",
    "green": "fr-green.evil.example",
}
OURS = "in-own.evil.example"
# policy/sharing.py RULE_ONWARD, spelled out: it is what the analyst reads and scripts match.
RULE_ONWARD = "partner-tlp-no-onward-sharing"


def _fr_shares_with_india(exchange: Exchange, tmp_path: Path) -> Path:
    """cert-fr pushes one indicator at each level to cert-in; cert-in accepts them all and
    exports them as STIX, cert-fr's identity as their creator: the file it returns."""
    fr, india = exchange.fr, exchange.india
    assert fr.run("partners", "set", "cert-in", "--allow-red", "--max-tlp", "red").exit_code == 0
    for tlp, value in FR_VALUES.items():
        csv = tmp_path / f"fr-{tlp.replace('+', '-')}.csv"
        csv.write_text(f"value,type,tlp\n{value},domain-name,{tlp}\n")
        pushed = fr.run("push", str(csv), "--to", "cert-in", "--allow-red")
        assert pushed.exit_code == 0, pushed.stderr
    pulled = india.run("pull")
    assert pulled.exit_code == 0, pulled.stderr
    accepted = india.run("triage", "accept", *FR_VALUES.values())
    assert accepted.exit_code == 0, accepted.stderr
    exported = tmp_path / "in.stix"
    done = india.run("export", "--format", "stix", "-o", str(exported), "--i-understand-tlp")
    assert done.exit_code == 0, done.stderr
    return exported


def _objects(path: Path) -> list[dict[str, Any]]:
    return list(json.loads(path.read_text())["objects"])


def _indicator_of(objects: list[dict[str, Any]], value: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o.get("type") == "indicator" and value in o.get("pattern", "")]
    return found


def _with_our_objects(exported: Path, india: Agency, tmp_path: Path) -> Path:
    """The export, plus an indicator of cert-in's own at AMBER and a GREEN relationship of ours
    pointing at cert-fr's AMBER indicator."""
    objects = _objects(exported)
    amber = _indicator_of(objects, FR_VALUES["amber"])
    ours = identity_id_for(india.agency_id)
    when = "2026-11-20T10:00:00.000Z"
    objects.append(
        {
            "type": "indicator",
            "spec_version": "2.1",
            "id": "indicator--0c0c0c0c-0000-4000-8000-000000000001",
            "created": when,
            "modified": when,
            "created_by_ref": ours,
            "name": "ours",
            "pattern": f"[domain-name:value = '{OURS}']",
            "pattern_type": "stix",
            "valid_from": when,
            "object_marking_refs": [amber["object_marking_refs"][0]],
        }
    )
    green = _indicator_of(objects, FR_VALUES["green"])
    objects.append(
        {
            "type": "relationship",
            "spec_version": "2.1",
            "id": "relationship--0c0c0c0c-0000-4000-8000-000000000002",
            "created": when,
            "modified": when,
            "created_by_ref": ours,
            "relationship_type": "related-to",
            "source_ref": green["id"],
            "target_ref": amber["id"],
            "object_marking_refs": green["object_marking_refs"],
        }
    )
    path = tmp_path / "in-plus.stix"
    path.write_text(
        json.dumps({"type": "bundle", "id": json.loads(exported.read_text())["id"], "objects": objects})
    )
    return path


def test_a_partners_amber_and_red_objects_do_not_go_on_to_another_partner(
    trio: tuple[Exchange, Agency], tmp_path: Path
) -> None:
    exchange, de = trio
    india = exchange.india
    exported = _fr_shares_with_india(exchange, tmp_path)
    fr_identity = identity_id_for("cert-fr")
    for value in FR_VALUES.values():
        assert _indicator_of(_objects(exported), value)["created_by_ref"] == fr_identity
    assert india.run("partners", "set", "cert-de", "--allow-red", "--max-tlp", "red").exit_code == 0
    bundle = _with_our_objects(exported, india, tmp_path)

    # Refused as a whole, with what the analyst needs to know, and nothing sent.
    refused = india.run("push", str(bundle), "--to", "cert-de", "--allow-red", "--json")
    assert refused.exit_code == 8, (refused.stdout, refused.stderr)
    assert RULE_ONWARD in refused.stderr
    assert "cert-fr's object: TLP:AMBER does not allow passing a partner's object on" in refused.stderr
    assert "cert-fr can share it with cert-de directly" in refused.stderr
    assert "ask cert-fr to share it directly" in refused.stderr
    assert "change the TLP of the input" not in refused.stderr
    assert de.run("pull").exit_code == 0
    assert received_values(de) == []

    # --skip-refused: cert-fr's GREEN object and our own AMBER one go; what refers to a
    # refused object is refused too.
    sent = india.run("push", str(bundle), "--to", "cert-de", "--allow-red", "--skip-refused", "--json")
    assert sent.exit_code == 0, sent.stderr
    refusals = sent.json()["refused"]
    assert len(refusals) == 4, refusals
    for tlp in ("amber", "amber+strict", "red"):
        (line,) = [r for r in refusals if FR_VALUES[tlp] in r]
        assert f"(TLP:{tlp.upper()}) to cert-de: {RULE_ONWARD}" in line
    assert any(r.startswith("relationship--") and RULE_REFERS in r for r in refusals)
    pulled = de.run("pull")
    assert pulled.exit_code == 0, pulled.stderr
    assert sorted(received_values(de)) == sorted([FR_VALUES["green"], OURS])


def test_a_partners_amber_object_still_goes_back_to_that_partner(
    trio: tuple[Exchange, Agency], tmp_path: Path
) -> None:
    exchange, _ = trio
    fr, india = exchange.fr, exchange.india
    exported = _fr_shares_with_india(exchange, tmp_path)
    only_amber = tmp_path / "amber.stix"
    objects = [
        o
        for o in _objects(exported)
        if o["type"] != "indicator" or FR_VALUES["amber"] in o.get("pattern", "")
    ]
    only_amber.write_text(
        json.dumps(
            {"type": "bundle", "id": "bundle--" + "1" * 8 + "-1111-4111-8111-" + "1" * 12, "objects": objects}
        )
    )
    back = india.run("push", str(only_amber), "--to", "cert-fr")
    assert back.exit_code == 0, back.stderr
    assert fr.run("pull").exit_code == 0


def test_a_sealed_file_of_a_partners_amber_object_for_another_partner_is_refused(
    trio: tuple[Exchange, Agency], tmp_path: Path
) -> None:
    exchange, _ = trio
    india = exchange.india
    exported = _fr_shares_with_india(exchange, tmp_path)
    assert india.run("partners", "set", "cert-de", "--allow-red", "--max-tlp", "red").exit_code == 0
    sealed = india.run("seal", str(exported), "--to", "cert-de", "--allow-red", "-o", str(tmp_path / "x.env"))
    assert sealed.exit_code == 8, (sealed.stdout, sealed.stderr)
    assert RULE_ONWARD in sealed.stderr and "ask cert-fr to share it directly" in sealed.stderr
    assert not (tmp_path / "x.env").exists()
