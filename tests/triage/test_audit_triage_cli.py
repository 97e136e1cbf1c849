"""Audit regressions for `triage show` and the decision commands through the CLI."""

from __future__ import annotations

import pytest

from tests.conftest import Agency
from tests.triage.conftest import indicator, put, stix_object

IND = "indicator--aaaaaaaa-0000-4000-8000-000000000001"
MAL = "malware--bbbbbbbb-0000-4000-8000-000000000001"
INF = "infrastructure--eeeeeeee-0000-4000-8000-000000000001"


@pytest.mark.parametrize(
    "padded", [" indicator--aaaaaaaa", "indicator--aaaaaaaa ", "\tindicator--aaaaaaaa\n"]
)
def test_an_ambiguous_prefix_with_spaces_around_it_is_refused(cert_in: Agency, padded: str) -> None:
    put(
        cert_in,
        [
            indicator("one.example", object_id=IND),
            indicator("two.example", object_id="indicator--aaaaaaaa-0000-4000-8000-000000000002"),
        ],
    )
    shown = cert_in.run("triage", "show", padded)
    assert shown.exit_code == 2 and "names several objects" in shown.stderr, shown.stdout
    decided = cert_in.run("triage", "reject", padded)
    assert decided.exit_code == 2 and "names several objects" in decided.stderr, decided.stdout
    statuses = {i["value"]: i["status"] for i in cert_in.run("triage", "list", "--json").json()["items"]}
    assert statuses == {"one.example": "new", "two.example": "new"}
    # A full id with spaces around it still names its object.
    assert cert_in.run("triage", "accept", f" {IND} ").exit_code == 0


def test_show_escapes_every_partner_supplied_cell(cert_in: Agency) -> None:
    put(
        cert_in,
        [
            indicator("c2.example", object_id=IND),
            stix_object("malware", MAL, name="Bad", is_family=True),
            stix_object("infrastructure", INF, name="C2 box"),
            stix_object(
                "relationship",
                "relationship--ffffffff-0000-4000-8000-000000000001",
                relationship_type="indicates\x1b[2J",
                source_ref=IND,
                target_ref=MAL,
            ),
            stix_object(
                "relationship",
                "relationship--ffffffff-0000-4000-8000-000000000002",
                relationship_type="uses\x1b]0;pwned\x07",
                source_ref=MAL,
                target_ref=INF,
            ),
        ],
    )
    shown = cert_in.run("triage", "show", IND)
    assert shown.exit_code == 0, shown.stderr
    assert "\x1b" not in shown.stdout and "\x07" not in shown.stdout
    assert "indicates\\x1b[2J" in shown.stdout and "uses\\x1b]0;pwned\\x07" in shown.stdout
