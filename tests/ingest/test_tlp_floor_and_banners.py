"""Three ways a file's TLP was lost on ingest, through the CLI (docs/INGEST.md, "A TLP in the
file's head").

1. A plain-text list headed by a common banner (`TLP:RED - do not share`, `[TLP:RED]`,
   `Traffic Light Protocol: RED`, a title line above `TLP:RED`) went out as the default
   TLP:AMBER with exit 0: the banner was "prose". Now it marks the file; and any other line
   naming a level (not taken as the marking) refuses the whole file, exit 6.
2. A CSV/TSV with a tlp column but an unknown value-column name was read as a text list: the
   tlp column dropped, the values AMBER, the other cells descriptions. Now it is refused.
3. A tlp cell weaker than the head's TLP lowered its row. Now the head is a floor.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cti_exchange.stix.tlp import Tlp
from tests.conftest import Agency

VALUES = "evil147[.]com\n45.77.1.40\n"


def _convert(agency: Agency, path: Path) -> tuple[int, dict[str, str], dict[str, Any], Path]:
    """(exit code, each indicator's name and TLP level, the JSON report, the bundle path)."""
    out = path.with_suffix(".bundle.json")
    result = agency.run("convert", "--json", str(path), "-o", str(out))
    markings: dict[str, str] = {}
    if out.exists():
        for obj in json.loads(out.read_text())["objects"]:
            if obj["type"] == "indicator":
                level = Tlp.from_marking_id(obj["object_marking_refs"][0])
                markings[obj["name"]] = level.value if level is not None else "none"
    return result.exit_code, markings, result.json(), out


@pytest.mark.parametrize(
    "banner",
    [
        "TLP:RED - do not share outside CERT-FR",
        "TLP: RED (do not share)",
        "Traffic Light Protocol: RED",
        "TLP:RED // internal",
        "// TLP:RED",
        "- TLP:RED",
        "[TLP:RED]",
        "**TLP:RED**",
        "TLP:RED \u2014 for the eyes of CERT-FR only",
        "Indicators - Operation X\nTLP:RED\n",  # a title line above the marking
    ],
)
def test_a_banner_in_a_text_lists_head_marks_its_values(cert_fr: Agency, tmp_path: Path, banner: str) -> None:
    listing = tmp_path / "iocs.txt"
    listing.write_text(f"{banner}\n{VALUES}")
    code, markings, report, _ = _convert(cert_fr, listing)
    assert code == 0, report
    assert markings == {"evil147.com": "red", "45.77.1.40": "red"}
    assert report["rejections"] == []
    assert "head-tlp" in report["warnings_by_code"]


@pytest.mark.parametrize(
    ("content", "line"),
    [
        ("TLP:RED do not share\n" + VALUES, 1),  # no separator: a value may follow the level
        ("Shared with partners under TLP:RED.\n" + VALUES, 1),  # prose naming a level
        ('# see "TLP:RED" below\n' + VALUES, 1),  # quoted in a comment
        (VALUES + "# TLP:RED\n", 3),  # below the first value
        (VALUES + "TLP:RED\nbad[.]example\n", 3),
        ("evil147[.]com\tfrom the TLP:RED report\n45.77.1.40\n", 1),  # beside a value
        (VALUES + "45.77.1.41 seen in a Traffic Light Protocol: AMBER+STRICT feed\n", 3),
        ("# TLP:GREEN\n" + VALUES + "[TLP:RED]\n", 4),
    ],
)
def test_any_other_line_naming_a_level_refuses_the_file(
    cert_fr: Agency, tmp_path: Path, content: str, line: int
) -> None:
    listing = tmp_path / "iocs.txt"
    listing.write_text(content)
    code, markings, report, out = _convert(cert_fr, listing)
    assert code == 6 and not out.exists() and markings == {}
    (rejection,) = report["rejections"]
    assert (rejection["line"], rejection["code"]) == (line, "unreadable-file")
    assert "the file is not read, so that its values cannot go out under a weaker TLP" in rejection["reason"]
    assert "put the marking on a line of its own before the first value" in rejection["reason"]
    human = cert_fr.run("validate", str(listing))
    assert human.exit_code == 6
    assert [x for x in human.stderr.splitlines() if x.startswith("rejected:")] == [
        f"rejected: {listing}, line {line}: {rejection['reason']}"
    ]


def test_prose_naming_tlp_without_a_level_and_rules_with_their_own_tlp_are_read(
    cert_fr: Agency, tmp_path: Path
) -> None:
    listing = tmp_path / "iocs.txt"
    listing.write_text(
        "# TLP:AMBER\n# TLP 2.0 (see first.org/tlp)\nAbout TLP: see first.org\n"
        + VALUES
        + "# what TLP means for these: ask us\n"
        + 'alert dns $HOME_NET any -> any any (msg:"x"; dns.query; content:"r.example"; sid:1; '
        "rev:1; metadata:tlp red;)\n"
    )
    code, markings, report, _ = _convert(cert_fr, listing)
    assert code == 0, report
    assert markings["evil147.com"] == "amber" and markings["45.77.1.40"] == "amber"
    assert sorted(markings.values()) == ["amber", "amber", "red"]


@pytest.mark.parametrize(
    "column",
    [
        "Threat Indicator",
        "Artifact",
        "Data",
        "Entity",
        "Destination",
        "Server",
        "C&C",
        "Remote Address",
        "Network Indicator",
        "md5sum",
    ],
)
def test_a_table_with_a_tlp_column_but_no_indicator_column_is_refused(
    cert_fr: Agency, tmp_path: Path, column: str
) -> None:
    table = tmp_path / "ti.tsv"
    table.write_text(
        f"{column}\tTLP\tAnalyst note\n45.77.1.2\tred\tsource is our liaison at X\n"
        "bad[.]example\tred\tdo not share\n"
    )
    code, markings, report, out = _convert(cert_fr, table)
    assert code == 6 and not out.exists() and markings == {}
    assert report["formats"] == {str(table): "csv"}
    (rejection,) = report["rejections"]
    assert rejection["code"] == "unreadable-file"
    assert rejection["reason"].startswith(f"no indicator column in the header ({column}, TLP, Analyst note)")
    assert "its tlp column marks nothing without one" in rejection["reason"]
    assert "'value'" in rejection["reason"] or "rename the column" in rejection["reason"]


def test_a_tlp_cell_never_lowers_the_heads_tlp(cert_fr: Agency, tmp_path: Path) -> None:
    table = tmp_path / "hc.csv"
    table.write_text(
        "# TLP:RED\nvalue,tlp\ncell-green.example.net,green\ncell-red.example.net,red\nno-cell.example.net,\n"
    )
    code, markings, report, _ = _convert(cert_fr, table)
    assert code == 0, report
    assert markings == dict.fromkeys(
        ["cell-green.example.net", "cell-red.example.net", "no-cell.example.net"], "red"
    )
    floor = [w for w in report["warnings"] if w["code"] == "head-tlp-floor"]
    assert [(w["line"], w["reason"].split(":")[0]) for w in floor] == [(3, "its own TLP, TLP")]
    assert "TLP:GREEN, is weaker than the file's head (TLP:RED, line 1): marked TLP:RED" in floor[0]["reason"]
    stricter = tmp_path / "amber.csv"
    stricter.write_text("# TLP:AMBER\nvalue,tlp\nup.example.net,red\n")
    assert _convert(cert_fr, stricter)[1] == {"up.example.net": "red"}


def test_our_exports_tally_of_levels_keeps_each_rows_own(cert_fr: Agency, tmp_path: Path) -> None:
    """Our CSV export of several levels heads the file with the strictest and tallies them
    (`# TLP: green 1, red 1`): its rows keep their own levels when read back."""
    table = tmp_path / "export.csv"
    table.write_text(
        "# TLP:RED \u2014 for the eyes and ears of individual recipients only\n"
        "# TLP: green 1, red 1\nvalue,type,tlp\ng.example.net,domain-name,green\n"
        "r.example.net,domain-name,red\n"
    )
    code, markings, report, _ = _convert(cert_fr, table)
    assert code == 0, report
    assert markings == {"g.example.net": "green", "r.example.net": "red"}
    # A level the tally does not list is raised all the same.
    table.write_text("# TLP:RED\n# TLP: green 1, red 1\nvalue,tlp\nc.example.net,clear\n")
    assert _convert(cert_fr, table)[1] == {"c.example.net": "red"}
