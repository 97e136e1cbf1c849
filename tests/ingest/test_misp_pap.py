"""A MISP event's PAP tag (found on a walkthrough): `PAP:RED` (no action the adversary could
notice, such as blocking) was dropped with no word, and the values went to partners who block
what they receive."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Agency


def _event(tmp_path: Path, *tags: str) -> Path:
    event = {
        "Event": {
            "uuid": "5f0c2d3e-0000-4000-8000-000000000001",
            "info": "Phishing wave",
            "distribution": "1",
            "Tag": [{"name": tag} for tag in ("tlp:green", *tags)],
            "Attribute": [
                {
                    "type": "domain",
                    "value": "pap.example",
                    "to_ids": True,
                    "uuid": "5f0c2d3e-0000-4000-8000-000000000002",
                }
            ],
        }
    }
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    return path


@pytest.mark.parametrize("tag", ["PAP:RED", "pap:amber", 'pap:"RED"'])
def test_a_pap_amber_or_red_event_is_warned_about(cert_fr: Agency, tmp_path: Path, tag: str) -> None:
    result = cert_fr.run("validate", str(_event(tmp_path, tag)), "--json")
    assert result.exit_code == 0, result.stderr
    warnings = [w for w in result.json()["warnings"] if w["code"] == "pap-not-carried"]
    assert len(warnings) == 1 and "PAP is not carried to partners" in warnings[0]["reason"]


def test_pap_green_or_none_says_nothing(cert_fr: Agency, tmp_path: Path) -> None:
    for tags in ((), ("PAP:GREEN",), ("PAP:CLEAR",)):
        result = cert_fr.run("validate", str(_event(tmp_path, *tags)), "--json")
        assert result.exit_code == 0 and "pap-not-carried" not in result.stdout
