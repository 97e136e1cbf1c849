"""A marking-definition that is neither TLP nor defined among the objects shared counts as TLP:RED
on the way out (found on a walkthrough): ingest kept an object marked with
`marking-definition--99999999-...` (defined nowhere) with a warning, added the default TLP:AMBER,
and `push` sent it under AMBER, while the partner reads a marking it has no definition for as
TLP:RED (docs/TRIAGE.md). A defined statement marking still goes (test_definitions_travel.py).
Through the CLI, against the real TAXII server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cti_exchange.stix.tlp import Tlp
from tests.exchange.conftest import Exchange, store_rows
from tests.exchange.test_definitions_travel import STATEMENT, _indicator, statement_marking

UNKNOWN = "marking-definition--99999999-9999-4999-8999-999999999999"


def _bundle(tmp_path: Path, objects: list[dict[str, Any]]) -> Path:
    path = tmp_path / "bundle.json"
    path.write_text(
        json.dumps(
            {"type": "bundle", "id": "bundle--00000000-0000-4000-8000-000000000009", "objects": objects}
        )
    )
    return path


def _objects() -> list[dict[str, Any]]:
    return [
        statement_marking(),
        # No TLP of its own: ingest adds the default (AMBER), which is what made it leave.
        _indicator(1, "unknown.example", object_marking_refs=[UNKNOWN]),
        _indicator(
            2,
            "granular.example",
            object_marking_refs=[Tlp.GREEN.marking_id],
            granular_markings=[{"marking_ref": UNKNOWN, "selectors": ["pattern"]}],
        ),
        _indicator(3, "stated.example", object_marking_refs=[Tlp.GREEN.marking_id, STATEMENT]),
        _indicator(4, "plain.example", object_marking_refs=[Tlp.GREEN.marking_id]),
    ]


def _received(exchange: Exchange) -> list[tuple[Any, ...]]:
    pulled = exchange.india.run("pull")
    assert pulled.exit_code == 0, pulled.stderr
    return store_rows(
        exchange.india, "SELECT value, tlp FROM objects WHERE type = 'indicator' ORDER BY value"
    )


def test_an_unknown_marking_is_refused_as_tlp_red_and_says_how_to_fix_it(
    exchange: Exchange, tmp_path: Path
) -> None:
    bundle = _bundle(tmp_path, _objects())
    # convert's output stays local: a warning, saying what sharing will make of it.
    converted = exchange.fr.run("convert", str(bundle), "-o", str(tmp_path / "out.json"))
    assert converted.exit_code == 0, converted.stderr
    assert "counted as TLP:RED when shared" in converted.stdout + converted.stderr

    refused = exchange.fr.run("push", str(bundle), "--to", "cert-in")
    assert refused.exit_code == 8, (refused.stdout, refused.stderr)
    assert "tlp-red-needs-partner-and-flag" in refused.stderr
    assert f"unknown marking-definition {UNKNOWN}" in refused.stderr
    assert "include its definition or remove the reference" in refused.stderr
    assert "indicator--00000000-0000-4000-8000-000000000001" in refused.stderr
    assert "indicator--00000000-0000-4000-8000-000000000002" in refused.stderr
    assert _received(exchange) == []

    # --skip-refused sends the rest: the defined statement marking keeps working.
    skipped = exchange.fr.run("push", str(bundle), "--to", "cert-in", "--skip-refused")
    assert skipped.exit_code == 0, (skipped.stdout, skipped.stderr)
    assert _received(exchange) == [("plain.example", "green"), ("stated.example", "green")]


def test_with_a_partner_allowing_red_and_allow_red_it_goes_and_both_sides_read_red(
    exchange: Exchange, tmp_path: Path
) -> None:
    assert exchange.fr.run("partners", "set", "cert-in", "--allow-red", "--max-tlp", "red").exit_code == 0
    bundle = _bundle(tmp_path, [_indicator(1, "unknown.example", object_marking_refs=[UNKNOWN])])
    without_flag = exchange.fr.run("push", str(bundle), "--to", "cert-in")
    assert without_flag.exit_code == 8, (without_flag.stdout, without_flag.stderr)
    pushed = exchange.fr.run("push", str(bundle), "--to", "cert-in", "--allow-red")
    assert pushed.exit_code == 0, (pushed.stdout, pushed.stderr)
    assert _received(exchange) == [("unknown.example", "red")]
    # The sent log records it as RED too: a queued copy is held back if the partner's entry
    # stops allowing RED before it leaves (delivery_refusal).
    assert store_rows(exchange.fr, "SELECT tlp FROM sent_envelopes") == [("red",)]


def test_an_object_marked_by_a_definition_that_is_itself_refused_is_refused_too(
    exchange: Exchange, tmp_path: Path
) -> None:
    """A statement marking-definition that itself refers to an unknown marking is TLP:RED and
    stays behind: an object it marks would reach the partner with an undefined marking."""
    statement = {**_objects()[0], "object_marking_refs": [UNKNOWN]}
    bundle = _bundle(
        tmp_path,
        [
            statement,
            _indicator(3, "stated.example", object_marking_refs=[Tlp.GREEN.marking_id, STATEMENT]),
            _indicator(4, "plain.example", object_marking_refs=[Tlp.GREEN.marking_id]),
        ],
    )
    pushed = exchange.fr.run("push", str(bundle), "--to", "cert-in", "--skip-refused")
    assert pushed.exit_code == 0, (pushed.stdout, pushed.stderr)
    assert _received(exchange) == [("plain.example", "green")]
