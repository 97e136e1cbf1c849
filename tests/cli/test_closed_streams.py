"""A standard stream closed by whoever started us reads and writes as /dev/null, and stderr
that cannot be written (closed, `/dev/full`) leaves the documented exit code alone (error-hunt
walkthrough, stop 27).

Before: stdout closed (`cti-exchange status >&-`) made every command an internal error (exit
70) and `--version` a traceback; stdin closed made `validate -` exit 70; stderr closed or full
turned every documented exit code into 1. The real entry point runs in a process of its own,
the streams closed by the shell as an operator's cron line would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Agency

_RUN = "from cti_exchange.cli.entry import main; import sys; sys.argv[0] = 'cti-exchange'; main()"


def _shell(
    tmp_path: Path, args: str, redirection: str, home: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CTI_EXCHANGE_HOME": str(home or tmp_path / "no-home")}
    command = f'exec {sys.executable} -c "{_RUN}" {args} {redirection}'
    return subprocess.run(["/bin/sh", "-c", command], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("args", "redirection", "code"),
    [
        ("--version", ">&-", 0),
        ("status", ">&-", 0),
        ("export --json", ">&-", 2),  # the usual usage error, not a traceback
        ("validate -", "<&-", 6),  # nothing to read: nothing usable
        ("validate {empty}", "2>&-", 6),
        ("validate {empty}", "2>/dev/full", 6),
        ("validate {missing}", "2>/dev/full", 2),
        # The root's own --version and --help, written before any command runs (scripts-and-
        # cron walkthrough, stop 28: a traceback and exit 1, where a subcommand's gave 2).
        ("--version", ">/dev/full", 2),
        ("--help", ">/dev/full", 2),
    ],
)
def test_closed_or_full_standard_streams_keep_the_documented_exit_code(
    cert_in: Agency, tmp_path: Path, args: str, redirection: str, code: int
) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    args = args.format(empty=empty, missing=tmp_path / "missing.csv")

    result = _shell(tmp_path, args, redirection, home=cert_in.home)

    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "internal error" not in result.stderr


def test_a_closed_stdout_is_not_taken_by_the_next_file_opened(cert_in: Agency, tmp_path: Path) -> None:
    # What the command prints must not land in a file it opens while descriptor 1 is free.
    out = tmp_path / "bundle.json"
    iocs = tmp_path / "iocs.txt"
    iocs.write_text("198.51.100.7\nevil.example\n")

    result = _shell(tmp_path, f"convert {iocs} -o {out}", ">&-", home=cert_in.home)

    assert result.returncode == 0, result.stderr
    bundle = out.read_text()
    assert bundle.startswith("{") and "Wrote" not in bundle


@pytest.mark.parametrize("args", ["--help", "--version", "status --help"])
def test_the_roots_help_and_version_to_a_reader_gone_end_as_cat_would(tmp_path: Path, args: str) -> None:
    """`cti-exchange --help | (exec 0<&-)`: exit 141, as every subcommand gives; the root's
    own options left the exit to click, which gives 1 for a closed pipe."""
    env = {**os.environ, "CTI_EXCHANGE_HOME": str(tmp_path / "no-home")}
    command = f'{sys.executable} -c "{_RUN}" {args} | (exec 0<&-; sleep 0.2); echo "rc=$?"'
    script = f"set -o pipefail 2>/dev/null; {command}"
    result = subprocess.run(["/bin/bash", "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in result.stderr
    assert result.stdout.strip() == "rc=141", result.stderr
