"""`cti-exchange validate` and `convert` through the real CLI (typer's CliRunner)."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from cti_exchange.stix.tlp import Tlp, tlp_of
from cti_exchange.stix.validate import validate_bundle
from tests.conftest import Agency, CliResult

from .conftest import CORPUS, oasis_validate

Cli = Callable[..., CliResult]


def _file(tmp_path: Path, name: str, content: str) -> str:
    path = tmp_path / name
    path.write_text(content)
    return str(path)


def test_validate_without_a_profile(cli: Cli, tmp_path: Path) -> None:
    conti = str(CORPUS / "iocs" / "unit42-Conti_IOCs.txt")
    result = cli("validate", conti, home=tmp_path / "no-profile")
    assert result.exit_code == 0, result.stderr
    assert "placeholder identity" in result.stderr
    assert "all accepted: 54 objects" in result.stdout
    assert "TLP:AMBER, the default" in result.stderr


def test_validate_exit_codes_and_json(cli: Cli, tmp_path: Path) -> None:
    some = _file(tmp_path, "some.txt", "1.2.3.4\nnot-an-indicator\n")
    result = cli("validate", "--json", some, home=tmp_path / "none")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["verdict"] == "some rejected" and report["rejected"] == 1
    assert report["rejections"][0] == {
        "file": some,
        "line": 2,
        "value": "not-an-indicator",
        "code": "unrecognised",
        "reason": "not a recognised indicator",
    }
    # The rejections are in the JSON, not "above" (nothing is printed above with --json).
    assert "see the rejections in the JSON report" in result.stderr and "above" not in result.stderr
    nothing = _file(tmp_path, "nothing.txt", "nothing-here\n")
    result = cli("validate", nothing, home=tmp_path / "none")
    assert result.exit_code == 6 and "see the rejections and warnings above" in result.stderr
    result = cli("validate", "--json", nothing, home=tmp_path / "none")
    assert result.exit_code == 6 and "and warnings in the JSON report" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("cti-exchange: error: nothing usable")


def test_validate_strict_and_format_options(cli: Cli, tmp_path: Path) -> None:
    listing = _file(tmp_path, "list.csv", "10.0.0.1\n192.0.2.44\n")
    assert cli("validate", listing, home=tmp_path / "none").exit_code == 0
    assert cli("validate", "--strict", listing, home=tmp_path / "none").exit_code == 1
    forced = cli("validate", "--format", "stix", listing, home=tmp_path / "none")
    assert forced.exit_code == 6 and "malformed JSON" in forced.stderr


def test_tlp_option_rejects_clear_and_unknown(cli: Cli, tmp_path: Path) -> None:
    listing = _file(tmp_path, "list.txt", "192.0.2.44\n")
    for value in ("clear", "white", "purple"):
        result = cli("validate", "--tlp", value, listing, home=tmp_path / "none")
        assert result.exit_code == 2, value


def test_convert_writes_a_valid_bundle_with_our_identity(cli: Cli, cert_fr: Agency, tmp_path: Path) -> None:
    inputs = [
        str(CORPUS / "iocs" / "unit42-venomrat_iocs.csv"),
        str(CORPUS / "stix21" / "oasis-indicator-for-malicious-url.json"),
    ]
    out = tmp_path / "bundle.json"
    result = cert_fr.run("convert", *inputs, "-o", str(out), "--tlp", "green")
    assert result.exit_code == 0, result.stderr
    assert "Wrote" in result.stdout
    bundle = json.loads(out.read_bytes())
    assert validate_bundle(bundle) == []
    oasis_validate(bundle)
    identity = bundle["objects"][0]
    assert identity["type"] == "identity" and identity["name"] == "CERT-FR"
    ours = [o for o in bundle["objects"] if o.get("created_by_ref") == identity["id"]]
    assert len(ours) > 600
    assert {tlp_of(o) for o in ours} == {Tlp.GREEN}


def test_a_bundle_we_converted_converts_again_without_touching_our_identity(
    cert_fr: Agency, tmp_path: Path
) -> None:
    """Pushing a bundle made by `convert` warned that "1 object(s) had no TLP marking" and "no
    created_by_ref": our own identity, which was then marked with the default TLP and
    attributed to itself."""
    first = tmp_path / "first.json"
    source = _file(tmp_path, "iocs.csv", "value,tlp\nevil.example,green\n")
    assert cert_fr.run("convert", source, "-o", str(first)).exit_code == 0
    again = cert_fr.run("convert", str(first), "-o", str(tmp_path / "again.json"), "--json")
    assert again.exit_code == 0, again.stderr
    assert again.json()["warnings"] == []
    identity = next(
        o for o in json.loads((tmp_path / "again.json").read_bytes())["objects"] if o["type"] == "identity"
    )
    assert "object_marking_refs" not in identity and "created_by_ref" not in identity


def test_convert_needs_a_profile_and_writes_nothing_when_nothing_is_usable(
    cli: Cli, cert_fr: Agency, tmp_path: Path
) -> None:
    listing = _file(tmp_path, "list.txt", "192.0.2.44\n")
    out = tmp_path / "out.json"
    no_profile = cli("convert", listing, "-o", str(out), home=tmp_path / "none")
    assert no_profile.exit_code == 2 and "no agency profile" in no_profile.stderr
    nothing = _file(tmp_path, "nothing.txt", "nothing-here\n")
    result = cert_fr.run("convert", nothing, "-o", str(out))
    assert result.exit_code == 6 and not out.exists()


@pytest.mark.parametrize("target", ["a-directory", "a-fifo", "missing/out.json"])
def test_convert_refuses_an_output_it_cannot_write_before_reading(
    cert_fr: Agency, tmp_path: Path, target: str
) -> None:
    """`-o` naming a directory ended with "internal error: IsADirectoryError" (exit 70) after
    the whole input was read; a device or a FIFO was renamed over (`-o /dev/null` as root
    replaced /dev/null with a regular file). A FIFO stands for the device here: harmless."""
    (tmp_path / "a-directory").mkdir()
    os.mkfifo(tmp_path / "a-fifo")
    listing = _file(tmp_path, "l.txt", "hxxp://evil[.]example/x\n")
    output = str(tmp_path / target)
    result = cert_fr.run("convert", listing, "-o", output)
    assert result.exit_code == 2, result.stderr
    assert result.stderr.count("\n") == 1 and f"cannot write {output}" in result.stderr
    assert "internal error" not in result.stderr
    assert stat.S_ISFIFO((tmp_path / "a-fifo").lstat().st_mode)
    assert sorted(p.name for p in (tmp_path / "a-directory").iterdir()) == []


def test_convert_json_report(cert_fr: Agency, tmp_path: Path) -> None:
    out = tmp_path / "b.json"
    listing = _file(tmp_path, "l.txt", "hxxp://evil[.]example/x\n")
    result = cert_fr.run("convert", "--json", listing, "-o", str(out))
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["accepted_by_type"] == {"url": 1} and report["output"] == str(out)
    assert report["bytes"] == out.stat().st_size


def test_help_has_examples(cli: Cli) -> None:
    for command in ("validate", "convert"):
        result = cli(command, "--help")
        assert "  Example:\n    cti-exchange " + command in result.stdout  # cli/app.py format_examples


def test_convert_to_stdout_keeps_the_report_on_stderr(cert_fr: Agency, tmp_path: Path) -> None:
    listing = _file(tmp_path, "l.txt", "evil[.]example\n")
    result = cert_fr.run("convert", listing, "-o", "-")
    assert result.exit_code == 0, result.stderr
    bundle = json.loads(result.stdout)
    assert [o["type"] for o in bundle["objects"]][-1] == "indicator"
    assert "all accepted: 1 object;" in result.stderr


def test_ids_quoted_from_an_input_cannot_drive_the_terminal(cli: Cli, tmp_path: Path) -> None:
    """A MISP uuid or a STIX id is quoted in reports and errors: escape sequences in it (clear
    the screen, set the window title, fake a verdict on a new line) are shown escaped."""
    event = {
        "Event": {
            "info": "x",
            "uuid": "\u001b[2J\u001b[31mFAKE: all accepted\nline2",
            "Attribute": [
                {"type": "ip-dst", "value": "not an ip", "uuid": "\u001b]0;pwn\u0007", "to_ids": True},
                {"type": "domain", "value": "evil.example", "to_ids": True},
            ],
        }
    }
    misp = _file(tmp_path, "event.json", json.dumps(event))
    bundle = {
        "type": "bundle",
        "id": "bundle--6d3c4f1e-5b2a-4c9d-8e7f-1a2b3c4d5e6f",
        "objects": [{"type": "indicator", "spec_version": "2.1", "id": "\u001b[31mindicator--x\nfake"}],
    }
    stix = _file(tmp_path, "bundle.json", json.dumps(bundle))
    for source in (misp, stix):
        result = cli("validate", source, home=tmp_path / "none")
        shown = result.stdout + result.stderr
        assert result.exit_code in (1, 6), shown
        assert "\x1b" not in shown and "\x07" not in shown, shown
        assert "\\x1b" in shown


def test_nothing_usable_from_a_misp_event_names_include_non_ids(cli: Cli, tmp_path: Path) -> None:
    """Every attribute of the Bespin event has to_ids false: validate said "nothing usable in
    the input; see the rejections and warnings above" without the option that reads them."""
    bespin = str(CORPUS / "misp" / "eset-sshdoor-bespin.misp.json")
    result = cli("validate", bespin, home=tmp_path / "none")
    assert result.exit_code == 6
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("cti-exchange: error: nothing usable in the input")
    assert "3 MISP attribute(s) with to_ids false were skipped: --include-non-ids reads them" in last
    assert cli("validate", "--include-non-ids", bespin, home=tmp_path / "none").exit_code != 6
    plain = cli("validate", _file(tmp_path, "nothing.txt", "nothing-here\n"), home=tmp_path / "none")
    assert plain.exit_code == 6 and "include-non-ids" not in plain.stderr


def test_the_default_tlp_warning_names_where_each_format_carries_a_tlp(cli: Cli, tmp_path: Path) -> None:
    """Every format was told to "set another with --tlp or a tlp column": a text list, a STIX
    bundle or a MISP event has no column."""
    inputs = {
        "iocs/unit42-Conti_IOCs.txt": "(set another with --tlp)",
        "iocs/unit42-venomrat_iocs.csv": "(set another with --tlp or a tlp column)",
        "stix21/oasis-indicator-for-malicious-url.json": "(set another with --tlp or a TLP marking on the objects)",
        "misp/eset-cloudmensis.misp.json": "(set another with --tlp or a tlp: tag on the event or attribute)",
    }
    for name, expected in inputs.items():
        result = cli("validate", str(CORPUS / name), home=tmp_path / "none")
        (line,) = [line for line in result.stderr.splitlines() if "the default (set another" in line]
        assert line.endswith(expected), (name, line)


def test_a_tlp_given_with_the_option_is_not_called_the_default(cli: Cli, tmp_path: Path) -> None:
    """`--tlp amber` was announced as "marked TLP:AMBER, the default (set another with --tlp)"."""
    iocs = str(CORPUS / "iocs/unit42-Conti_IOCs.txt")
    given = cli("validate", "--tlp", "amber", iocs, home=tmp_path / "none")
    (line,) = [line for line in given.stderr.splitlines() if "had no TLP" in line]
    assert line.endswith("marked TLP:AMBER, as --tlp asks"), line
    assert "the default" not in given.stderr


def test_counts_of_one_are_said_in_the_singular(cli: Cli, tmp_path: Path) -> None:
    """`1 objects`, `1 warnings`, `1 lines were skipped as prose ...: lines 1`."""
    listing = _file(tmp_path, "one.txt", "Some prose here\nevil[.]example\n")
    result = cli("validate", listing, home=tmp_path / "no-profile")
    assert "1 line was skipped as prose" in result.stderr and ": line 1" in result.stderr
    assert "all accepted: 1 object; 0 rejected; 2 warnings" in result.stdout
