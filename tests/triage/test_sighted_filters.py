"""`triage list --sighted` applies the filters that say something about a sighting (sender,
time, its own TLP and confidence, revoked or not) and refuses the others, naming the option,
instead of silently ignoring them."""

from __future__ import annotations

from pathlib import Path

import pytest

from cti_exchange.profile.model import identity_id_for
from cti_exchange.stix.tlp import Tlp
from tests.conftest import Agency
from tests.triage.conftest import put
from tests.triage.test_sighting_targets import _pushed, _sighting


@pytest.fixture
def sighted(partnered: tuple[Agency, Agency], tmp_path: Path) -> Agency:
    """CERT-FR shared evil.example with CERT-In, which sent three sightings of it: RED with
    confidence 10, CLEAR with confidence 90, and one it revoked since."""
    fr, _ = partnered
    ids = _pushed(fr, tmp_path, ["evil.example"], "cert-in")
    by = identity_id_for("cert-in")
    red = _sighting(ids["evil.example"], by, count=1) | {
        "object_marking_refs": [Tlp.parse("red").marking_id],
        "confidence": 10,
    }
    clear = _sighting(ids["evil.example"], by, count=2) | {
        "object_marking_refs": [Tlp.parse("clear").marking_id],
        "confidence": 90,
    }
    revoked = _sighting(ids["evil.example"], by, count=3) | {"revoked": True}
    put(fr, [red, clear, revoked], partner="cert-in")
    return fr


def _counts(agency: Agency, *args: str) -> list[int]:
    listed = agency.run("triage", "list", "--sighted", "--json", *args)
    assert listed.exit_code == 0, listed.stderr
    return sorted(s["count"] for s in listed.json()["sightings"])


def test_sighted_applies_the_filters_about_a_sighting(sighted: Agency) -> None:
    assert _counts(sighted) == [1, 2]  # the revoked one is left out
    assert _counts(sighted, "--include-revoked") == [1, 2, 3]
    assert _counts(sighted, "--tlp", "clear") == [2]
    assert _counts(sighted, "--max-tlp", "green") == [2]
    assert _counts(sighted, "--min-confidence", "50") == [2]
    assert _counts(sighted, "--partner", "cert-in", "--tlp", "red") == [1]
    assert _counts(sighted, "--partner", "cert-uk") == []


@pytest.mark.parametrize(
    "args",
    [
        ["--type", "malware"],
        ["--status", "rejected"],
        ["--search", "evil"],
        ["--expired"],
        ["--not-expired"],
        ["--sort", "value"],
        ["--asc"],
        ["--count"],
    ],
)
def test_sighted_refuses_the_filters_it_cannot_apply(sighted: Agency, args: list[str]) -> None:
    refused = sighted.run("triage", "list", "--sighted", *args)
    assert refused.exit_code == 2
    option = args[0].replace("--asc", "--asc/--desc")
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and option in lines[0] and "--sighted" in lines[0], refused.stderr
