"""A co-recipient (cert-de) defines cert-fr's custom marking id first, stating TLP:CLEAR:
cert-fr's objects marked with it must not take that level, nor a STIX export carry that
definition (store/objects.py, export.py). Real keys, sealed file envelopes, real SQLite."""

from __future__ import annotations

import json
from pathlib import Path

from cti_exchange.stix.tlp import TLP2_EXTENSION_ID, Tlp
from tests.exchange.conftest import store_rows
from tests.exchange.test_co_recipient_relays import (
    DE_ID,
    FR_ID,
    MID,
    T2,
    _indicator,
    _marking,
    _send,
    _three,
)


def test_another_partner_cannot_lower_the_tlp_of_a_partners_custom_marking(tmp_path: Path) -> None:
    fr, india, de = _three(tmp_path)
    decoy = _indicator(
        "indicator--dddddddd-0000-4000-8000-000000000001",
        "decoy.example",
        creator=DE_ID,
        markings=[Tlp.CLEAR.marking_id],
    )
    _send(de, india, [_marking("clear", DE_ID), decoy], tmp_path)
    a = _indicator(
        "indicator--aaaaaaaa-0000-4000-8000-000000000001", "a.evil.example", creator=FR_ID, markings=[MID]
    )
    _send(fr, india, [_marking("red", FR_ID), a], tmp_path)
    # Later, cert-fr marks with it again without repeating its definition (the one it sent
    # was not stored: cert-de's holds that id and date).
    b = _indicator(
        "indicator--aaaaaaaa-0000-4000-8000-000000000002",
        "b.evil.example",
        creator=FR_ID,
        markings=[Tlp.AMBER.marking_id, MID],
        modified=T2,
    )
    _send(fr, india, [b], tmp_path)
    assert store_rows(india, "SELECT value, tlp FROM objects WHERE type = 'indicator' ORDER BY value") == [
        ("a.evil.example", "red"),
        ("b.evil.example", "red"),
        ("decoy.example", "clear"),
    ]
    assert india.run("triage", "accept", "b.evil.example").exit_code == 0
    gated = india.run("export", "--format", "plain")
    assert gated.exit_code == 8, (gated.stdout, gated.stderr)


def test_a_stix_export_carries_no_other_partners_definition_of_a_marking(tmp_path: Path) -> None:
    fr, india, de = _three(tmp_path)
    _send(de, india, [_marking("clear", DE_ID)], tmp_path)
    a = _indicator(
        "indicator--aaaaaaaa-0000-4000-8000-000000000001", "a.evil.example", creator=FR_ID, markings=[MID]
    )
    _send(fr, india, [_marking("red", FR_ID), a], tmp_path)
    assert india.run("triage", "accept", "a.evil.example").exit_code == 0
    exported = india.run("export", "--format", "stix", "--i-understand-tlp")
    assert exported.exit_code == 0, exported.stderr
    objects = json.loads(exported.stdout)["objects"]
    assert [o["id"] for o in objects if o["type"] == "indicator"] == [a["id"]]
    assert [o for o in objects if o["id"] == MID] == []  # cert-de's, the only one stored


def test_a_stix_export_carries_the_definition_the_objects_source_sent(tmp_path: Path) -> None:
    """cert-de's copy names cert-fr as creator: cert-fr's own replaces it, and travels."""
    fr, india, de = _three(tmp_path)
    _send(de, india, [_marking("clear", FR_ID)], tmp_path)
    a = _indicator(
        "indicator--aaaaaaaa-0000-4000-8000-000000000001", "a.evil.example", creator=FR_ID, markings=[MID]
    )
    _send(fr, india, [_marking("red", FR_ID), a], tmp_path)
    assert india.run("triage", "accept", "a.evil.example").exit_code == 0
    exported = india.run("export", "--format", "stix", "--i-understand-tlp")
    assert exported.exit_code == 0, exported.stderr
    (definition,) = [o for o in json.loads(exported.stdout)["objects"] if o["id"] == MID]
    assert definition["extensions"][TLP2_EXTENSION_ID]["tlp_2_0"] == "red"
