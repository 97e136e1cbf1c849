"""A TLP stated in the head of a text list or CSV file marks the file's values that carry none.

Before, only a tlp column, a STIX marking or a MISP tag carried a TLP: our own plain export of
TLP:RED values, headed `# TLP:RED — ...`, pushed back was marked TLP:AMBER, the profile's
default, with only the generic "had no TLP" warning; a partner's RED indicators would have gone
out as AMBER.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cti_exchange.ingest import IngestOptions, ingest_files
from cti_exchange.stix.tlp import Tlp
from tests.conftest import Agency, CliResult
from tests.triage.conftest import FR_IDENTITY, identity, indicator, put

from .conftest import IngestText, indicators, make_context

Cli = Callable[..., CliResult]
RED_VALUES = ["red.example", "red2.example"]


@pytest.fixture
def red_export(partnered: tuple[Agency, Agency], tmp_path: Path) -> tuple[Agency, Path]:
    """CERT-In holding two TLP:RED domains from CERT-FR, exported as a plain list (the head
    `# TLP:RED — ...`), and pinned as CERT-FR's partner."""
    _, cert_in = partnered
    put(cert_in, [identity(FR_IDENTITY, "CERT-FR"), *(indicator(v, tlp="red") for v in RED_VALUES)])
    assert cert_in.run("triage", "accept", *RED_VALUES).exit_code == 0
    exported = tmp_path / "red.txt"
    options = ("--type", "domain-name", "--tlp", "red", "--i-understand-tlp", "-o", str(exported))
    result = cert_in.run("export", "--format", "plain", *options)
    assert result.exit_code == 0, result.stderr
    assert exported.read_text().startswith("# TLP:RED — ")
    return cert_in, exported


def _markings(bundle: dict[str, Any]) -> dict[str, str]:
    """Each indicator's name and the TLP level of its marking."""
    found = {}
    for obj in bundle["objects"]:
        if obj["type"] == "indicator":
            level = Tlp.from_marking_id(obj["object_marking_refs"][0])
            found[obj["name"]] = level.value if level is not None else "none"
    return found


def test_our_red_plain_export_pushed_back_is_red(red_export: tuple[Agency, Path]) -> None:
    cert_in, exported = red_export
    refused = cert_in.run("push", str(exported), "--to", "cert-fr", "--dry-run", "--json")
    # TLP:RED needs the partner's and the push's consent: the policy says so, naming RED.
    assert refused.exit_code == 8, refused.stderr
    report = refused.json()
    assert all("(TLP:RED)" in line for line in report["refused"]) and len(report["refused"]) == 2
    assert report["warnings_by_code"] == {"head-tlp": 1}
    (warning,) = report["warnings"]
    assert (warning["line"], warning["reason"]) == (
        1,
        "2 value(s) had no TLP of their own: marked TLP:RED, as the file's head states",
    )
    assert cert_in.run("partners", "set", "cert-fr", "--allow-red").exit_code == 0
    planned = cert_in.run("push", str(exported), "--to", "cert-fr", "--dry-run", "--allow-red")
    assert planned.exit_code == 0, planned.stderr
    assert "TLP:RED 2" in planned.stdout and "TLP:AMBER" not in planned.stdout + planned.stderr


def test_validate_and_convert_read_the_head(red_export: tuple[Agency, Path], tmp_path: Path) -> None:
    cert_in, exported = red_export
    checked = cert_in.run("validate", "--json", str(exported))
    assert checked.exit_code == 0, checked.stderr
    assert checked.json()["warnings_by_code"] == {"head-tlp": 1}
    out = tmp_path / "bundle.json"
    converted = cert_in.run("convert", str(exported), "-o", str(out))
    assert converted.exit_code == 0, converted.stderr
    assert _markings(json.loads(out.read_text())) == dict.fromkeys(RED_VALUES, "red")


def test_a_tlp_option_weaker_than_the_head_is_refused(red_export: tuple[Agency, Path]) -> None:
    """Lowering a TLP is for whoever set it: --tlp amber on a file headed TLP:RED is refused
    (exit 2, one line naming the file and the line), by every command that reads inputs."""
    cert_in, exported = red_export
    commands = [
        ("validate", str(exported)),
        ("convert", str(exported), "-o", str(exported.with_suffix(".json"))),
        ("push", str(exported), "--to", "cert-fr", "--dry-run"),
    ]
    for command in commands:
        result = cert_in.run(*command, "--tlp", "amber")
        assert result.exit_code == 2, (command, result.stderr)
        assert result.stderr == (
            f"cti-exchange: error: {exported}, line 1: the file's head marks it TLP:RED; --tlp "
            "amber would lower its values to TLP:AMBER; leave out --tlp, or give --tlp red or "
            "stricter (a TLP is lowered only by whoever set it: edit the file's head to do so)\n"
        ), command
    assert not exported.with_suffix(".json").exists()


def test_a_tlp_option_as_strict_or_stricter_applies(cli: Cli, tmp_path: Path) -> None:
    listing = tmp_path / "amber.txt"
    listing.write_text("# TLP:AMBER\nevil.example\n")
    same = cli("validate", "--json", "--tlp", "amber", str(listing), home=tmp_path / "none")
    assert same.exit_code == 0 and same.json()["warnings_by_code"] == {"head-tlp": 1}
    stricter = cli("validate", "--json", "--tlp", "red", str(listing), home=tmp_path / "none")
    assert stricter.exit_code == 0
    (warning,) = stricter.json()["warnings"]
    assert (warning["code"], warning["reason"]) == (
        "default-tlp",
        "1 value(s) had no TLP: marked TLP:RED, as --tlp asks",
    )


def test_the_head_wins_over_the_profile_default_and_a_stricter_tlp_cell_over_the_head(
    cert_fr: Agency, tmp_path: Path
) -> None:
    """The profile's default is AMBER: the head's GREEN marks the rows without a tlp cell, a
    stricter cell marks its own row, and a weaker one (CLEAR) is raised to the head's GREEN,
    with a warning: the head is a floor (test_tlp_floor_and_banners.py)."""
    table = tmp_path / "iocs.csv"
    table.write_text(
        "# TLP:GREEN\nvalue,type,tlp\ngreen.example,domain,\nred.example,domain,red\nclear.example,domain,clear\n"
    )
    out = tmp_path / "bundle.json"
    result = cert_fr.run("convert", str(table), "-o", str(out), "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["warnings"] == [
        {
            "file": str(table),
            "line": 5,
            "code": "head-tlp-floor",
            "reason": "its own TLP, TLP:CLEAR, is weaker than the file's head (TLP:GREEN, line 1): "
            "marked TLP:GREEN, as the head is a floor (to share it at TLP:CLEAR, lower the head, "
            "and mark the stricter values in their own TLP)",
        },
        {
            "file": str(table),
            "line": 1,
            "code": "head-tlp",
            "reason": "1 value(s) had no TLP of their own: marked TLP:GREEN, as the file's head states",
        },
    ]
    assert _markings(json.loads(out.read_text())) == {
        "green.example": "green",
        "red.example": "red",
        "clear.example": "green",
    }


@pytest.mark.parametrize(
    ("head", "level"),
    [
        ("# TLP:RED", "red"),
        ("# TLP: AMBER+STRICT", "amber+strict"),
        ("## tlp amber strict", "amber+strict"),
        ("# TLP:AMBER + STRICT - recipients' organisation only", "amber+strict"),
        ("# TLP:CLEAR", "clear"),
        ("# TLP:WHITE", "clear"),  # TLP 1.0's WHITE is TLP 2.0's CLEAR
        ("# Classification: TLP:RED", "red"),
        ("# Shared with CERT partners under TLP:GREEN.", "green"),
        ("# TLP 2.0: AMBER", "amber"),
        ("TLP:GREEN", "green"),  # a line that is a marking alone, without '#'
        ("Classification: TLP:AMBER+STRICT", "amber+strict"),
        ("# Advisory 2026-11\n#\n# TLP:RED\n", "red"),
        ("# TLP:RED — for the eyes and ears of individual recipients only\n# TLP: amber 1, red 2", "red"),
    ],
)
def test_analysts_spellings_of_a_head(ingest_text: IngestText, head: str, level: str) -> None:
    for name, body in (("iocs.txt", "evil.example\n"), ("iocs.csv", "value,type\nevil.example,domain\n")):
        result = ingest_text(f"{head}\n{body}", name)
        assert result.rejections == [], (name, result.rejections)
        (obj,) = indicators(result)
        assert obj["object_marking_refs"] == [Tlp.parse(level).marking_id], name
        assert [w.code for w in result.warnings] == ["head-tlp"], name


@pytest.mark.parametrize(
    "line",
    [
        "# TLP 2.0 (see first.org/tlp)",
        "# no TLP marking",  # our export's head when nothing in it is marked
        '#   domain-name "tlp-red.example TLP:RED": invalid-value: not a valid domain-name',
        "# TLP:REDACTED",
        "# evil.example # xtlp:red",
        "# TLP: amber 1, red 2",  # our export's tally: how many of each, not a marking
    ],
)
def test_what_is_not_a_tlp_marking(ingest_text: IngestText, line: str) -> None:
    """Beside a head's `# TLP:GREEN`, none of these states another level (which would refuse
    the file as stating two) or replaces it."""
    result = ingest_text(f"# TLP:GREEN\n{line}\nevil.example\n")
    (obj,) = indicators(result)
    assert obj["object_marking_refs"] == [Tlp.GREEN.marking_id]
    assert [w.code for w in result.warnings] == ["head-tlp"]


def test_a_head_stating_two_tlps_refuses_the_file(cli: Cli, tmp_path: Path) -> None:
    listing = tmp_path / "two.txt"
    listing.write_text("# TLP:AMBER\n# IOCs of the campaign\n# TLP:RED\nevil.example\n")
    result = cli("validate", "--json", str(listing), home=tmp_path / "none")
    assert result.exit_code == 6
    (rejection,) = result.json()["rejections"]
    assert rejection == {
        "file": str(listing),
        "line": 3,
        "code": "unreadable-file",
        "reason": "the file's head states two TLPs, TLP:AMBER (line 1) and TLP:RED (line 3); keep "
        "the one that applies to the file's values (a CSV file can mark rows differently in a "
        "tlp column)",
    }
    one_line = tmp_path / "one-line.csv"
    one_line.write_text("# TLP:GREEN, TLP:AMBER for the C2\nvalue\nevil.example\n")
    assert cli("validate", str(one_line), home=tmp_path / "none").exit_code == 6


def test_a_tlp_marking_below_the_first_value_refuses_the_file(cli: Cli, tmp_path: Path) -> None:
    """Before, the marking was rejected and the rest went out: red.example as TLP:GREEN, exit 1.
    Now the whole file is refused (test_tlp_floor_and_banners.py)."""
    listing = tmp_path / "iocs.txt"
    listing.write_text("# TLP:GREEN\nevil.example\n\n# TLP:RED\nred.example\nTLP:RED\n")
    result = cli("validate", "--json", str(listing), home=tmp_path / "none")
    assert result.exit_code == 6
    report = result.json()
    assert [(r["line"], r["code"]) for r in report["rejections"]] == [(4, "unreadable-file")]
    assert report["rejections"][0]["reason"].startswith(
        "TLP:RED below the first value (line 2) marks nothing: the file is not read"
    )


def test_a_marking_line_above_a_csv_header_keeps_it_csv(cli: Cli, tmp_path: Path) -> None:
    """`TLP:AMBER` above the header made the file a text list: the header became a rejected
    value, and every row a rejected line."""
    table = tmp_path / "iocs.csv"
    table.write_text("TLP:RED\n\nvalue,type,description\nevil.example,domain,C2\n")
    result = cli("validate", "--json", str(table), home=tmp_path / "none")
    assert result.exit_code == 0, result.stdout
    report = result.json()
    assert report["formats"] == {str(table): "csv"}
    assert report["warnings_by_code"] == {"head-tlp": 1}


def test_a_csv_file_read_in_parts_takes_the_head_in_every_part(tmp_path: Path) -> None:
    table = tmp_path / "big.csv"
    rows = "".join(f"host{i}.example,domain\n" for i in range(3000))
    table.write_text("# TLP:RED\nvalue,type\n" + rows)
    result = ingest_files([table], make_context(), IngestOptions(workers=3, parallel_min_bytes=1024))
    assert result.accepted_by_type == {"domain-name": 3000}
    assert {o["object_marking_refs"][0] for o in indicators(result)} == {Tlp.RED.marking_id}
    assert result.warnings_by_code == {"head-tlp": 1}
    assert "3,000 value(s) had no TLP of their own" in result.warnings[0].reason
