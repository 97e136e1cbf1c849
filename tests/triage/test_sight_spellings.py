"""A sighting of a value is a sighting of every spelling of it, from every partner that sent it.

cert-fr sends `bestarg.com` (AMBER), cert-de its own `bestarg.com` (RED), then cert-fr
`BESTARG.COM.` (GREEN): `sight` of the value, in either spelling or by any of their ids, sends
one sighting per object, each to its source at its own TLP (RED still needs --allow-red, and
the partner entry's leave). Also: a count of 0 is shown as 0 by `triage list --sighted`; a
sighting of a tool is sent and listed under "of"; a value we decided against is warned about.
All sealed into the outbox only (`--queue`).
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest

from cti_exchange.profile.model import identity_id_for
from cti_exchange.stix.tlp import Tlp
from tests.conftest import Agency, make_agency, pin
from tests.triage.conftest import indicator, put, store_path
from tests.triage.test_sighting_targets import _sighting

FR = identity_id_for("cert-fr")
DE = identity_id_for("cert-de")


def _sealed(agency: Agency) -> list[tuple[str, str, str]]:
    """(partner, sighting_of_ref, TLP) of every sighting sealed so far, from the audit trail."""
    conn = sqlite3.connect(store_path(agency))
    try:
        return sorted(
            conn.execute(
                "SELECT partner, json_extract(details, '$.sighting_of_ref'), "
                "json_extract(details, '$.tlp') FROM audit_log WHERE action = 'sighting'"
            ).fetchall()
        )
    finally:
        conn.close()


@pytest.fixture
def spellings(partnered: tuple[Agency, Agency], tmp_path: Path) -> tuple[Agency, dict[str, Any]]:
    """CERT-In holding cert-fr's AMBER `bestarg.com` and GREEN `BESTARG.COM.`, and cert-de's
    RED `bestarg.com`; cert-de pinned and allowed RED."""
    _, india = partnered
    de = make_agency(tmp_path, "cert-de", "CERT-Bund")
    pin(india, de, tmp_path)
    assert india.run("partners", "set", "cert-de", "--allow-red").exit_code == 0
    objects = {
        "fr-amber": indicator("bestarg.com", tlp="amber", created_by=FR),
        "de-red": indicator("bestarg.com", tlp="red", created_by=DE),
        "fr-green": indicator(
            "BESTARG.COM.", tlp="green", created_by=FR, modified="2026-01-12T10:00:00.000Z"
        ),
    }
    put(india, [objects["fr-amber"]], partner="cert-fr")
    put(india, [objects["de-red"]], partner="cert-de", received_at="2026-01-11T12:00:00.000Z")
    put(india, [objects["fr-green"]], partner="cert-fr", received_at="2026-01-12T12:00:00.000Z")
    return india, objects


def _expected(objects: dict[str, Any]) -> list[tuple[str, str, str]]:
    return sorted(
        [
            ("cert-fr", objects["fr-amber"]["id"], "amber"),
            ("cert-fr", objects["fr-green"]["id"], "green"),
            ("cert-de", objects["de-red"]["id"], "red"),
        ]
    )


@pytest.mark.parametrize("reference", ["BESTARG.COM.", "bestarg.com", "fr-green", "de-red"])
def test_a_value_is_sighted_in_every_spelling_to_each_source(
    spellings: tuple[Agency, dict[str, Any]], reference: str
) -> None:
    india, objects = spellings
    ref = objects[reference]["id"] if reference in objects else reference
    # Timestamps, not "now": the same sighting again is then the same request.
    args = ("sight", ref, "--count", "2", "--last-seen", "2026-02-01T10:00:00Z", "--queue", "--allow-red")
    sent = india.run(*args, "--json")
    assert sent.exit_code == 0, sent.stderr
    document = sent.json()
    assert sorted((s["partner"], s["sighting_of_ref"], s["tlp"]) for s in document["sightings"]) == _expected(
        objects
    )
    assert {s["sighting_of_ref"]: s["value"] for s in document["sightings"]} == {
        objects["fr-amber"]["id"]: "bestarg.com",
        objects["de-red"]["id"]: "bestarg.com",
        objects["fr-green"]["id"]: "BESTARG.COM.",
    }
    assert _sealed(india) == _expected(objects)
    # One request per partner: cert-fr's two sightings travel together.
    fr_envelopes = {tuple(s["envelopes"]) for s in document["sightings"] if s["partner"] == "cert-fr"}
    assert len(fr_envelopes) == 1
    # The same again is recognised for both partners: nothing sent twice.
    again = india.run(*args, "--json")
    assert again.exit_code == 0, again.stderr
    assert all(s["already_sent_at"] for s in again.json()["sightings"])
    assert _sealed(india) == _expected(objects)


def test_red_in_another_spelling_still_needs_allow_red(spellings: tuple[Agency, dict[str, Any]]) -> None:
    india, _ = spellings
    refused = india.run("sight", "BESTARG.COM.", "--count", "2", "--queue")
    assert refused.exit_code == 8, refused.stderr
    assert "cert-de" in refused.stderr and "--allow-red" in refused.stderr
    assert _sealed(india) == []


def test_the_tlp_floor_is_each_objects_own(spellings: tuple[Agency, dict[str, Any]]) -> None:
    india, objects = spellings
    # GREEN is the floor of the spelling typed, but not of cert-fr's AMBER one.
    refused = india.run("sight", "BESTARG.COM.", "--tlp", "green", "--queue", "--allow-red")
    assert refused.exit_code == 2, refused.stderr
    assert objects["fr-amber"]["id"] in refused.stderr and "TLP:AMBER" in refused.stderr
    assert _sealed(india) == []
    # --tlp is never below any object's own: AMBER is below cert-de's RED.
    below_red = india.run("sight", "bestarg.com", "--tlp", "amber", "--queue", "--allow-red")
    assert below_red.exit_code == 2 and objects["de-red"]["id"] in below_red.stderr
    assert _sealed(india) == []


def test_a_plain_value_two_partners_sent_goes_to_each_of_its_own(
    partnered: tuple[Agency, Agency], tmp_path: Path
) -> None:
    _, india = partnered
    de = make_agency(tmp_path, "cert-de", "CERT-Bund")
    pin(india, de, tmp_path)
    from_fr = indicator("twice.example", tlp="amber", created_by=FR)
    from_de = indicator("twice.example", tlp="green", created_by=DE)
    put(india, [from_fr], partner="cert-fr")
    put(india, [from_de], partner="cert-de")
    sent = india.run("sight", "twice.example", "--queue", "--json")
    assert sent.exit_code == 0, sent.stderr
    assert sorted((s["partner"], s["sighting_of_ref"], s["tlp"]) for s in sent.json()["sightings"]) == sorted(
        [("cert-fr", from_fr["id"], "amber"), ("cert-de", from_de["id"], "green")]
    )


# Count 0 and sightings of other objects than indicators, as the partner lists them


def test_sighted_shows_a_count_of_zero(partnered: tuple[Agency, Agency], tmp_path: Path) -> None:
    fr, india = partnered
    put(india, [indicator("zero.example", tlp="green", created_by=FR)], partner="cert-fr")
    sent = india.run("sight", "zero.example", "--count", "0", "--queue", "--json")
    assert sent.exit_code == 0, sent.stderr  # a count of 0 is valid STIX 2.1
    csv = tmp_path / "push.csv"
    csv.write_text("value,type,tlp\nzero.example,domain-name,green\n")
    assert fr.run("push", str(csv), "--to", "cert-in", "--queue").exit_code == 0
    conn = sqlite3.connect(store_path(fr))
    try:
        [(shared,)] = conn.execute("SELECT object_id FROM shared_objects WHERE type = 'indicator'")
    finally:
        conn.close()
    put(fr, [_sighting(shared, identity_id_for("cert-in"), 0)], partner="cert-in")
    listed = fr.run("triage", "list", "--sighted")
    assert listed.exit_code == 0, listed.stderr
    header, row = listed.stdout.splitlines()[:2]
    columns = dict(zip(header.split("\t"), row.split("\t"), strict=True))
    assert columns["of"] == shared and columns["count"] == "0"


def _tool(created_by: str) -> dict[str, Any]:
    return {
        "type": "tool",
        "spec_version": "2.1",
        "id": f"tool--{uuid.uuid4()}",
        "created": "2026-01-10T10:00:00.000Z",
        "modified": "2026-01-10T10:00:00.000Z",
        "created_by_ref": created_by,
        "name": "Cobalt Strike",
        "object_marking_refs": [Tlp.GREEN.marking_id],
    }


def test_a_tool_is_sighted_and_shown_under_of(partnered: tuple[Agency, Agency]) -> None:
    _, india = partnered
    tool = _tool(FR)
    put(india, [tool], partner="cert-fr")
    sent = india.run("sight", tool["id"], "--queue")
    assert sent.exit_code == 0, sent.stderr
    header, row = sent.stdout.splitlines()[:2]
    columns = dict(zip(header.split("\t"), row.split("\t"), strict=True))
    assert columns["of"] == tool["id"] and columns["partner"] == "cert-fr"
    assert "indicator" not in header
    assert _sealed(india) == [("cert-fr", tool["id"], "green")]


# A value we decided against: a warning, not a refusal


@pytest.mark.parametrize("decision", ["false-positive", "reject"])
def test_a_value_decided_against_in_another_spelling_is_warned_about(
    spellings: tuple[Agency, dict[str, Any]], decision: str
) -> None:
    india, objects = spellings
    decided = india.run("triage", decision, "bestarg.com", "--note", "sinkhole")
    assert decided.exit_code == 0, decided.stderr
    status = "false-positive" if decision == "false-positive" else "rejected"
    sent = india.run("sight", "BESTARG.COM.", "--queue", "--allow-red", "--json")
    assert sent.exit_code == 0, sent.stderr
    assert sent.stderr.count("\n") == 1 and sent.stderr.startswith("warning: ")
    assert f"marked {status}" in sent.stderr
    assert set(sent.json()["decided_against"].values()) == {status}
    assert _sealed(india) == _expected(objects)


def test_an_undecided_value_has_no_warning(spellings: tuple[Agency, dict[str, Any]]) -> None:
    india, _ = spellings
    sent = india.run("sight", "bestarg.com", "--queue", "--allow-red", "--json")
    assert sent.exit_code == 0, sent.stderr
    assert sent.stderr == "" and sent.json()["decided_against"] == {}
