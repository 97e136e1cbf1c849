"""A title line above a CSV file's header row, as spreadsheets export one (`IOCs for campaign
X`): the file is read as CSV, the title is part of its head, and a warning says it is not shared.

Before, the title made the file a text list: the header and every row were rejected as
unrecognised indicators, and nothing was usable (exit 6).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cti_exchange.stix.tlp import Tlp
from tests.conftest import CliResult

from .conftest import IngestText, indicators

Cli = Callable[..., CliResult]
ROWS = "type,value,description\ndomain,evil-x.com,c2\nipv4,203.0.113.9,scanner\n"


def _validate(cli: Cli, tmp_path: Path, content: str) -> CliResult:
    path = tmp_path / "iocs.csv"
    path.write_text(content)
    return cli("validate", "--json", str(path), home=tmp_path / "no-profile")


def _levels(content: str, ingest_text: IngestText) -> dict[str, str]:
    """Each indicator's name and the TLP level it was marked with."""
    found = {}
    for obj in indicators(ingest_text(content, name="iocs.csv")):
        level = Tlp.from_marking_id(obj["object_marking_refs"][0])
        assert level is not None
        found[obj["name"]] = level.value
    return found


def test_a_title_above_the_header_is_read_as_the_head(cli: Cli, tmp_path: Path) -> None:
    result = _validate(cli, tmp_path, "IOCs for campaign X, March 2026\n\n" + ROWS)
    report = result.json()
    assert result.exit_code == 0, result.stderr
    assert report["formats"] == {str(tmp_path / "iocs.csv"): "csv"}
    assert report["accepted_by_type"] == {"domain-name": 1, "ipv4-addr": 1}
    assert report["rejected"] == 0
    (title,) = [w for w in report["warnings"] if w["code"] == "title-line"]
    assert title["line"] == 1
    assert "'IOCs for campaign X, March 2026' is read as the file's title" in title["reason"]


def test_up_to_three_title_lines_and_comments_between(cli: Cli, tmp_path: Path) -> None:
    content = "Acme SOC\n# exported from the SIEM\nIOC export\nCampaign X\n" + ROWS
    report = _validate(cli, tmp_path, content).json()
    assert report["accepted_by_type"] == {"domain-name": 1, "ipv4-addr": 1}
    assert [w["line"] for w in report["warnings"] if w["code"] == "title-line"] == [1, 3, 4]


def test_a_marking_below_the_title_marks_the_rows(ingest_text: IngestText) -> None:
    content = "IOCs for campaign X\nTLP:RED\ntype,value,tlp\ndomain,evil-x.com,green\nipv4,203.0.113.9,\n"
    assert _levels(content, ingest_text) == {"evil-x.com": "red", "203.0.113.9": "red"}


def test_a_title_naming_a_tlp_still_refuses_the_file(cli: Cli, tmp_path: Path) -> None:
    """Fail closed: which level the title means is for a person to say."""
    result = _validate(cli, tmp_path, "IOCs for campaign X (TLP:RED)\n" + ROWS)
    assert result.exit_code == 6
    assert result.json()["objects"] == 0
    assert "names TLP:RED but is not a marking" in result.json()["rejections"][0]["reason"]


def test_a_line_holding_an_indicator_is_no_title(cli: Cli, tmp_path: Path) -> None:
    """As a title its indicator would be dropped with the title: the file stays a text list,
    which shares nothing from it (exit 6) rather than lose the value without a word."""
    result = _validate(cli, tmp_path, "C2 at 198.51.100.7 seen\n" + ROWS)
    assert result.exit_code == 6
    assert result.json()["formats"] == {str(tmp_path / "iocs.csv"): "text"}


def test_four_lines_above_the_header_are_not_titles(cli: Cli, tmp_path: Path) -> None:
    report = _validate(cli, tmp_path, "one\ntwo\nthree\nfour\n" + ROWS).json()
    assert report["formats"] == {str(tmp_path / "iocs.csv"): "text"}


def test_a_line_that_may_say_how_to_handle_the_file_is_no_title(cli: Cli, tmp_path: Path) -> None:
    """Dropped as a title, "AMBER indicators" would have let the rows go out at a weaker
    default TLP: a person must say what such a line means."""
    for line in (
        "AMBER indicators - campaign X",
        "RED - do not share",
        "PAP:RED",
        "CONFIDENTIAL // internal",
    ):
        result = _validate(cli, tmp_path, f"{line}\n" + ROWS)
        assert result.json()["formats"] == {str(tmp_path / "iocs.csv"): "text"}, line
        assert result.exit_code == 6, line
