"""A partner's indicator without any TLP marking (another implementation may send one) was
exported headed "no TLP marking" and passed every --max-tlp, though our own unmarked input is
marked with the profile's default TLP on ingest (found on a walkthrough). An export now takes
such a value at the profile's default (TLP:AMBER here) for its head, the TLP gate and
--max-tlp."""

from __future__ import annotations

from typing import Any

from tests.conftest import Agency
from tests.triage.conftest import indicator, put


def _unmarked(value: str) -> dict[str, Any]:
    obj = indicator(value)
    del obj["object_marking_refs"]
    return obj


def test_an_unmarked_value_goes_out_at_the_default_tlp(cert_in: Agency) -> None:
    bare, green = _unmarked("bare.example"), indicator("green.example", tlp="green")
    put(cert_in, [bare, green])
    assert cert_in.run("triage", "accept", bare["id"], green["id"]).exit_code == 0

    exported = cert_in.run("export")
    assert exported.exit_code == 0, exported.stderr
    assert exported.stdout.startswith("# TLP:AMBER")
    assert "bare.example" in exported.stdout.splitlines()
    assert "1 value carried no TLP marking" in exported.stderr

    at_most_green = cert_in.run("export", "--max-tlp", "green")
    assert at_most_green.exit_code == 0, at_most_green.stderr
    assert at_most_green.stdout.startswith("# TLP:GREEN")
    lines = at_most_green.stdout.splitlines()
    assert "green.example" in lines and "bare.example" not in lines
