"""Marking-definitions and identities go along with the objects that refer to them (found on a
walkthrough): `push` sent an object marked TLP:GREEN and with a statement marking ("Do not
share outside CERT-FR") without the statement's definition, so the partner read an unknown
restriction, TLP:RED, and never saw the statement; a third party's identity named by
`created_by_ref` was left out too. Through the CLI, against the real TAXII server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cti_exchange.stix.tlp import Tlp
from tests.exchange.conftest import Exchange, store_rows

STATEMENT = "marking-definition--11111111-2222-4333-8444-555555555555"
VENDOR = "identity--22222222-3333-4444-8555-666666666666"
CREATED = "2026-12-01T00:00:00.000Z"


def statement_marking() -> dict[str, Any]:
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": STATEMENT,
        "created": CREATED,
        "definition_type": "statement",
        "definition": {"statement": "Copyright 2026 CERT-FR; do not republish"},
    }


def _indicator(n: int, value: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--00000000-0000-4000-8000-00000000000{n}",
        "created": CREATED,
        "modified": CREATED,
        "pattern": f"[domain-name:value = '{value}']",
        "pattern_type": "stix",
        "valid_from": CREATED,
        **extra,
    }


def test_a_statement_marking_and_a_creator_identity_reach_the_partner(
    exchange: Exchange, tmp_path: Path
) -> None:
    objects = [
        statement_marking(),
        {
            "type": "identity",
            "spec_version": "2.1",
            "id": VENDOR,
            "created": CREATED,
            "modified": CREATED,
            "name": "A vendor",
            "identity_class": "organization",
        },
        _indicator(1, "stated.example", object_marking_refs=[Tlp.GREEN.marking_id, STATEMENT]),
        _indicator(2, "vendor.example", object_marking_refs=[Tlp.GREEN.marking_id], created_by_ref=VENDOR),
        _indicator(3, "plain.example", object_marking_refs=[Tlp.GREEN.marking_id]),
    ]
    bundle = tmp_path / "bundle.json"
    bundle.write_text(
        json.dumps(
            {"type": "bundle", "id": "bundle--00000000-0000-4000-8000-000000000009", "objects": objects}
        )
    )
    pushed = exchange.fr.run("push", str(bundle), "--to", "cert-in")
    assert pushed.exit_code == 0, pushed.stderr
    pulled = exchange.india.run("pull")
    assert pulled.exit_code == 0, pulled.stderr
    assert store_rows(
        exchange.india, "SELECT value, tlp FROM objects WHERE type = 'indicator' ORDER BY value"
    ) == [
        ("plain.example", "green"),
        ("stated.example", "green"),
        ("vendor.example", "green"),
    ]
    stored = dict(store_rows(exchange.india, "SELECT object_id, json FROM objects"))
    assert "do not republish" in stored[STATEMENT] and "A vendor" in stored[VENDOR]
