"""Decisions are on what partners share, not on what goes along with it (found on a
walkthrough): `triage accept marking-definition--...` and `triage accept identity--...`
succeeded, though the list leaves such objects out."""

from __future__ import annotations

from tests.conftest import Agency
from tests.triage.conftest import indicator, put, stix_object

VENDOR = "identity--22222222-3333-4444-8555-666666666666"


def test_a_decision_on_an_identity_is_refused(cert_in: Agency) -> None:
    put(
        cert_in,
        [
            stix_object("identity", VENDOR, name="A vendor", identity_class="organization"),
            indicator("kept.example"),
        ],
    )
    refused = cert_in.run("triage", "accept", VENDOR, "kept.example")
    assert refused.exit_code == 2 and refused.stderr.count("\n") == 1
    assert f"{VENDOR} is an identity: decisions are on what partners share" in refused.stderr
    # All or none: the indicator named with it is not decided either.
    assert cert_in.run("triage", "show", "kept.example", "--json").json()["status"] == "new"
    assert cert_in.run("triage", "accept", "kept.example").exit_code == 0
