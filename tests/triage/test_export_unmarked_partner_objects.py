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


def test_a_value_marked_in_one_spelling_keeps_that_marking(cert_in: Agency) -> None:
    # The default TLP is for a value no object of which is marked. An unmarked object holding
    # another spelling of a marked value (ALPHA.example beside alpha.example at TLP:CLEAR)
    # gave the merged value the default TLP:AMBER; an unmarked object of the same spelling
    # never did. Found by the model test (test_filters_against_a_model.py).
    marked, other_spelling = indicator("alpha.example", tlp="clear"), _unmarked("ALPHA.example")
    put(cert_in, [marked, other_spelling])
    assert cert_in.run("triage", "accept", marked["id"], other_spelling["id"]).exit_code == 0

    exported = cert_in.run("export", "--format", "csv")
    assert exported.exit_code == 0, exported.stderr
    (row,) = [line for line in exported.stdout.splitlines() if line.startswith("alpha.example,")]
    assert ",clear," in row.lower(), row
    assert "no TLP marking" not in exported.stderr
    # Unmarked in every spelling, the value still takes the default, counted once.
    lone = [_unmarked("BETA.example"), _unmarked("beta.example")]
    put(cert_in, lone)
    assert cert_in.run("triage", "accept", *(o["id"] for o in lone)).exit_code == 0
    again = cert_in.run("export", "--format", "csv")
    (beta,) = [line for line in again.stdout.splitlines() if line.startswith("beta.example,")]
    assert ",amber," in beta.lower(), beta
    assert "1 value carried no TLP marking" in again.stderr, again.stderr
