"""The sharing policy's view of an object's TLP (policy/sharing.py, stix/tlp.py): whatever way
a TLP:RED marking is written, it is read as TLP:RED; an object with no TLP does not leave."""

from __future__ import annotations

from typing import Any

import pytest

from cti_exchange.policy.sharing import RULE_MAX, RULE_RED, RULE_REFERS, RULE_UNMARKED, decide_sharing
from cti_exchange.profile.model import PartnerConfig
from cti_exchange.stix.tlp import Tlp, object_tlp, tlp_markings_defined_in, tlp_of

RED, CLEAR = Tlp.RED.marking_id, Tlp.CLEAR.marking_id
GREEN_PARTNER = PartnerConfig(
    name="cert-in", agency_id="cert-in", display_name="CERT-In", fingerprint="x", jwks="k", max_tlp=Tlp.GREEN
)
CUSTOM = "marking-definition--aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"


def _indicator(**markings: Any) -> dict[str, Any]:
    return {"type": "indicator", "id": "indicator--3f1d2c4b-5a69-4e7f-8a9b-0c1d2e3f4a5b", **markings}


def _custom_marking(**body: Any) -> dict[str, Any]:
    return {"type": "marking-definition", "spec_version": "2.1", "id": CUSTOM, **body}


def _rules(objects: list[dict[str, Any]]) -> list[str]:
    return [r.rule for r in decide_sharing(objects, [GREEN_PARTNER], allow_red=False).refusals]


def test_a_red_granular_marking_makes_the_object_red() -> None:
    obj = _indicator(
        object_marking_refs=[CLEAR], granular_markings=[{"marking_ref": RED, "selectors": ["pattern"]}]
    )
    assert tlp_of(obj) is Tlp.RED and object_tlp(obj) is Tlp.CLEAR
    assert _rules([obj]) == [RULE_RED]


def test_a_tlp_id_in_upper_case_is_that_tlp() -> None:
    assert tlp_of(_indicator(object_marking_refs=[RED.upper()])) is Tlp.RED
    assert _rules([_indicator(object_marking_refs=[RED.upper()])]) == [RULE_RED]


@pytest.mark.parametrize(
    "marking",
    [
        _custom_marking(
            extensions={
                "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d": {
                    "extension_type": "property-extension",
                    "tlp_2_0": "red",
                }
            }
        ),
        _custom_marking(definition_type="tlp", definition={"tlp": "red"}),
        _custom_marking(definition_type="TLP", definition={"tlp": "RED"}),
        _custom_marking(definition_type="tlp", definition={"tlp": "crimson"}),  # unknown: as red
    ],
    ids=["tlp2-extension", "tlp1", "tlp1-upper-case", "unknown-level"],
)
def test_a_tlp_stated_by_a_marking_in_the_bundle_counts(marking: dict[str, Any]) -> None:
    obj = _indicator(object_marking_refs=[CUSTOM])
    assert tlp_markings_defined_in([marking, obj]) == {CUSTOM: Tlp.RED}
    assert _rules([marking, obj]) == [RULE_RED]


def test_content_with_no_tlp_does_not_leave_but_plumbing_does() -> None:
    statement = _custom_marking(definition_type="statement", definition={"statement": "Copyright"})
    unmarked = _indicator()
    only_a_statement = _indicator(object_marking_refs=[CUSTOM])
    identity = {"type": "identity", "id": "identity--0b7f4d0e-7d1c-5b55-9a61-4c3a5d0f2b10"}
    decision = decide_sharing(
        [statement, identity, unmarked, only_a_statement], [GREEN_PARTNER], allow_red=False
    )
    assert [(r.tlp, r.rule) for r in decision.refusals] == [(None, RULE_UNMARKED)] * 2
    assert "(no TLP) to cert-in: no-tlp-marking" in decision.refusals[0].describe()
    assert decision.allowed["cert-in"] == [statement, identity]


def test_the_strictest_of_several_markings_counts() -> None:
    amber = _indicator(object_marking_refs=[CLEAR, Tlp.AMBER.marking_id])
    assert _rules([amber]) == [RULE_MAX]


def test_what_refers_to_a_refused_object_is_refused_too() -> None:
    """Our indicator ids are uuidv5 of identity and pattern: a GREEN relationship naming a
    withheld RED indicator would let the partner confirm a guessed value."""
    red = _indicator(object_marking_refs=[RED])
    malware = {
        "type": "malware",
        "id": "malware--6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        "object_marking_refs": [CLEAR],
    }
    relationship = {
        "type": "relationship",
        "id": "relationship--7b2c3d4e-5f6a-4b7c-9d8e-0f1a2b3c4d5e",
        "source_ref": red["id"],
        "target_ref": malware["id"],
        "object_marking_refs": [CLEAR],
        "created_by_ref": "identity--f7057009-c6c7-5705-914f-068f8d8b4ab1",
    }
    report = {
        "type": "report",
        "id": "report--8c3d4e5f-6a7b-4c8d-8e9f-1a2b3c4d5e6f",
        "object_refs": [relationship["id"], malware["id"]],
        "object_marking_refs": [CLEAR],
    }
    decision = decide_sharing([report, relationship, malware, red], [GREEN_PARTNER], allow_red=False)
    assert [(r.object_id, r.rule) for r in decision.refusals] == [
        (red["id"], RULE_RED),
        (relationship["id"], RULE_REFERS),
        (report["id"], RULE_REFERS),  # through the relationship, on the next pass
    ]
    assert decision.allowed["cert-in"] == [malware]
    # Nothing refused: nothing is scanned or dropped.
    assert decide_sharing([relationship, malware], [GREEN_PARTNER], allow_red=False).refusals == []


def test_a_reference_nested_in_an_object_to_a_refused_one_refuses_it_too() -> None:
    """An Incident Core task names the impacts it changed inside `changed_objects`, not in a
    top-level `*_ref`: a task about a TLP:RED impact went to a GREEN partner, with its id."""
    impact = {
        "type": "impact",
        "id": "impact--1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e",
        "object_marking_refs": [RED],
    }
    task = {
        "type": "task",
        "id": "task--2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f",
        "object_marking_refs": [CLEAR],
        "changed_objects": [{"state_change_type": "caused", "initial_ref": impact["id"]}],
        "created_by_ref": "identity--f7057009-c6c7-5705-914f-068f8d8b4ab1",
    }
    decision = decide_sharing([task, impact], [GREEN_PARTNER], allow_red=False)
    assert [(r.object_id, r.rule) for r in decision.refusals] == [
        (impact["id"], RULE_RED),
        (task["id"], RULE_REFERS),
    ]
    assert decision.allowed["cert-in"] == []
