"""`-` reads the input from standard input (`grep -o ... | cti-exchange validate -`): validate,
convert and push take it like a file, name it `-` in every message and leave no copy behind
(push: tests/exchange/test_push_stdin.py)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cti_exchange.cli.stdin_input import STDIN, spooled_inputs
from cti_exchange.errors import ExitCode, UsageError
from tests.conftest import Agency, CliResult

Cli = Callable[..., CliResult]
# Pasted from a report: defanged, with a line of prose.
PIPED = "evil[.]example.org\nhxxp://198.51.100.7/gate.php\nThe actor then moved laterally.\n203.0.113.9\n"


@pytest.fixture
def spool_dir(tmp_path: Path) -> Iterator[Path]:
    """The directory standard input is spooled under, watched for leftovers."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    kept, tempfile.tempdir = tempfile.tempdir, str(folder)
    try:
        yield folder
    finally:
        tempfile.tempdir = kept


def test_validate_reads_standard_input_and_names_it_dash(cli: Cli, tmp_path: Path, spool_dir: Path) -> None:
    result = cli("validate", "-", home=tmp_path / "none", input=PIPED)
    assert result.exit_code == 0, result.stderr
    assert "-: read as text" in result.stdout
    assert "all accepted: 3 objects" in result.stdout
    assert "-: 1 line was skipped as prose" in result.stderr  # a reader's own remark, relabelled
    assert str(spool_dir) not in result.stdout + result.stderr  # the private copy is never named

    report = cli("validate", "--json", "-", home=tmp_path / "none", input=PIPED).json()
    assert report["formats"] == {"-": "text"}
    assert report["accepted_by_type"] == {"domain-name": 1, "url": 1, "ipv4-addr": 1}
    assert {w["file"] for w in report["warnings"]} == {"-"}
    assert list(spool_dir.iterdir()) == []  # removed when the command ends


def test_a_rejection_in_piped_json_names_dash(cli: Cli, tmp_path: Path, spool_dir: Path) -> None:
    result = cli("validate", "-", home=tmp_path / "none", input='{"type": "bundle", "id": "bundle--1"')
    assert result.exit_code == ExitCode.INPUT
    assert "rejected: -: truncated JSON" in result.stderr
    assert str(spool_dir) not in result.stderr and "stdin" not in result.stderr


def test_standard_input_beside_files(cli: Cli, tmp_path: Path, spool_dir: Path) -> None:
    listing = tmp_path / "more.txt"
    listing.write_text("198.51.100.23\n")
    report = cli("validate", "--json", str(listing), "-", home=tmp_path / "none", input=PIPED).json()
    assert report["formats"] == {str(listing): "text", "-": "text"}
    assert report["objects"] == 4


def test_convert_writes_the_bundle_of_what_was_piped(
    cert_fr: Agency, tmp_path: Path, spool_dir: Path
) -> None:
    out = tmp_path / "bundle.json"
    result = cert_fr.run("convert", "-", "-o", str(out), input=PIPED)
    assert result.exit_code == 0, result.stderr
    assert "Wrote 3 objects" in result.stdout  # and the identity, markings with them
    assert "evil.example.org" in out.read_text()
    assert list(spool_dir.iterdir()) == []


def test_dash_twice_is_refused(cli: Cli, tmp_path: Path) -> None:
    result = cli("validate", "-", "-", home=tmp_path / "none", input=PIPED)
    assert result.exit_code == ExitCode.USAGE
    assert "given twice" in result.stderr and "Traceback" not in result.stderr


def test_a_terminal_on_standard_input_is_refused_not_waited_on() -> None:
    """`cti-exchange validate -` typed without a pipe would wait for a paste that ends with
    Ctrl-D; the analyst meant a file or forgot the pipe."""
    leader, follower = os.openpty()
    try:
        with os.fdopen(follower, "rb", buffering=0) as terminal:
            assert terminal.isatty()
            with (
                pytest.raises(UsageError, match="standard input is a terminal"),
                spooled_inputs([STDIN], terminal),
            ):
                pass
    finally:
        os.close(leader)
