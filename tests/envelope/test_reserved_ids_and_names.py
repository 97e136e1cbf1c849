"""What a partner's bundle may not redefine (found on a walkthrough, as a hostile partner):
a marking-definition under a predefined TLP id stating another level was stored as the current
version of that id, so `triage show marking-definition--e828...` (TLP:RED's id) said CLEAR; and
a property name holding an escape sequence or rich markup was accepted, though STIX allows only
a-z, 0-9 and _ in one. Both now make the bundle invalid STIX, refused before anything is kept."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from cti_exchange.envelope.reasons import RejectReason
from cti_exchange.stix.tlp import Tlp, marking_definition
from cti_exchange.stix.validate import validate_object

from .conftest import World, indicator, make_bundle

CORPUS = Path(__file__).resolve().parents[1] / "data"


def _restating(level: Tlp, stated: str) -> dict[str, Any]:
    forged = marking_definition(level)
    forged["name"] = f"TLP:{stated.upper()}"
    forged["extensions"] = copy.deepcopy(forged["extensions"])
    next(iter(forged["extensions"].values()))["tlp_2_0"] = stated
    return forged


def test_a_predefined_tlp_id_restating_another_level_is_refused(world: World) -> None:
    marked = indicator("198.51.100.7", tlp=Tlp.RED)
    bundle = make_bundle([_restating(Tlp.RED, "clear"), marked])
    refused = world.in_.rejects(world.fr.seal(bundle, [world.in_.party]).artifact, RejectReason.INVALID_STIX)
    assert "this id is the predefined TLP:RED marking, but the definition states 'clear'" in str(refused)


@pytest.mark.parametrize("level", list(Tlp))
def test_the_official_definitions_still_pass(level: Tlp) -> None:
    assert validate_object(marking_definition(level)) == []


def test_a_tlp_1_definition_under_its_own_id_passes_and_one_restated_fails() -> None:
    white = {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
        "created": "2017-01-20T00:00:00.000Z",
        "definition_type": "tlp",
        "name": "TLP:WHITE",
        "definition": {"tlp": "white"},
    }
    assert validate_object(white) == []
    red_as_white = white | {"id": "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"}
    assert (
        "the predefined TLP:RED marking, but the definition states 'white'"
        in validate_object(red_as_white)[0]
    )
    statement = white | {"definition_type": "statement", "definition": {"statement": "all yours"}}
    assert "states no TLP level" in validate_object(statement)[0]
    # Both forms at once must agree (found on a review: the extension was read, the TLP 1.0
    # definition beside it not, and another reader may take that one first).
    both = marking_definition(Tlp.RED) | {"definition_type": "tlp", "definition": {"tlp": "clear"}}
    assert "the predefined TLP:RED marking, but the definition states 'clear'" in validate_object(both)[0]
    agreeing = marking_definition(Tlp.RED) | {"definition_type": "tlp", "definition": {"tlp": "red"}}
    assert validate_object(agreeing) == []


@pytest.mark.parametrize(
    "name", ["x_\x1b[31mred", "x_[link=https://evil.example]click", "X_Upper", "x" * 251, "x-dash"]
)
def test_a_property_name_stix_does_not_allow_is_refused(world: World, name: str) -> None:
    obj = indicator("198.51.100.8") | {name: "value"}
    problems = validate_object(obj)
    assert len(problems) == 1 and "is not a STIX property name (a-z, 0-9 and _" in problems[0]
    assert "\x1b" not in problems[0]
    world.in_.rejects(
        world.fr.seal(make_bundle([obj]), [world.in_.party]).artifact, RejectReason.INVALID_STIX
    )


def test_custom_properties_as_stix_allows_them_pass() -> None:
    assert (
        validate_object(indicator("198.51.100.9") | {"x_misp_category": "Network activity", "x_n2": 1}) == []
    )


def test_corpus_bundles_hold_only_allowed_names() -> None:
    """Real STIX from the shared corpus that the tests carry still validates as before."""
    checked = 0
    for path in sorted(CORPUS.rglob("*.json")):
        try:
            document = json.loads(path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
        for obj in document.get("objects", []) if isinstance(document, dict) else []:
            if isinstance(obj, dict):
                assert not [p for p in validate_object(obj) if "not a STIX property name" in p], path
                checked += 1
    assert checked > 300  # the corpus copies under tests/data: OASIS examples, MISP and vendor STIX
