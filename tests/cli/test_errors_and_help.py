"""Errors are one line with a documented exit code; every command has --help with an example."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import tomli_w
import typer

from cti_exchange.cli.app import app, iter_commands
from tests.conftest import PASSPHRASE, Agency, run_cli
from tests.triage.conftest import indicator, put


def _all_command_paths() -> list[list[str]]:
    return [path for path, _ in iter_commands(typer.main.get_command(app))]


@pytest.mark.parametrize("path", _all_command_paths(), ids=lambda p: " ".join(p) or "(root)")
def test_every_command_has_help_with_an_example(path: list[str]) -> None:
    result = run_cli(*path, "--help")
    assert result.exit_code == 0
    assert "Example" in result.stdout, f"`{' '.join(path)} --help` has no example"


def test_missing_profile_says_how_to_fix(tmp_path: Path) -> None:
    result = run_cli("keys", "show", home=tmp_path / "nothing")
    assert result.exit_code == 2
    assert "cti-exchange init" in result.stderr and result.stderr.count("\n") == 1


def test_malformed_config_names_the_file(cert_fr: Agency) -> None:
    config = cert_fr.home / "config.toml"
    config.write_text(config.read_text() + "\n[broken\n")
    result = cert_fr.run("keys", "show")
    assert result.exit_code == 2
    assert str(config) in result.stderr and "invalid TOML" in result.stderr
    assert result.stderr.count("\n") == 1


def test_schema_violation_names_the_field(cert_fr: Agency) -> None:
    config = cert_fr.home / "config.toml"
    config.write_text(config.read_text().replace('default_tlp = "amber"', 'default_tlp = "purple"'))
    result = cert_fr.run("partners", "list")
    assert result.exit_code == 2
    assert "sharing.default_tlp" in result.stderr


def test_nan_in_the_config_names_the_field(partnered: tuple[Agency, Agency]) -> None:
    # TOML has nan, and NaN passes every JSON Schema bound: a nan timeout would wait for ever.
    cert_fr, _ = partnered
    assert (
        cert_fr.run("partners", "set", "cert-in", "--api-root", "https://taxii.example/api/").exit_code == 0
    )
    config = cert_fr.home / "config.toml"
    config.write_text(config.read_text() + "timeout_seconds = nan\n")  # in [partners.cert-in.taxii]
    result = cert_fr.run("partners", "list")
    assert result.exit_code == 2, result.stderr
    assert result.stderr.count("\n") == 1
    assert "partners.cert-in.taxii.timeout_seconds: nan is not a number" in result.stderr


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("operations.max_objects_per_run", 5, "must be at least 10"),
        ("operations.max_objects_per_run", 20_000_000, "must be at most 10000000"),
        ("operations.max_objects_per_run", "many", "must be integer"),
        ("partners.cert-in.taxii.max_response_bytes", 100, "must be at least 1024"),
        ("partners.cert-in.taxii.max_response_bytes", 2**29 + 1, "must be at most 536870912"),
    ],
)
def test_a_tuning_setting_out_of_range_names_the_file_and_the_field(
    partnered: tuple[Agency, Agency], field: str, value: object, said: str
) -> None:
    """config.toml's `operations.max_objects_per_run` and a partner's `max_response_bytes`,
    written by hand: one line naming the file, the field and its range, exit 2."""
    cert_fr, _ = partnered
    assert (
        cert_fr.run("partners", "set", "cert-in", "--api-root", "https://taxii.example/api/").exit_code == 0
    )
    config = cert_fr.home / "config.toml"
    data = tomllib.loads(config.read_text())
    *parents, name = field.split(".")
    table = data
    for parent in parents:
        table = table.setdefault(parent, {})
    table[name] = value
    config.write_text(tomli_w.dumps(data))
    result = cert_fr.run("pull")
    assert result.exit_code == 2, result.stderr
    assert result.stderr.count("\n") == 1
    assert f"{config}: {field}: {said}" in result.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    env = {"CTI_EXCHANGE_HOME": str(tmp_path / "none"), "PATH": "/usr/bin:/bin"}
    plain = subprocess.run(
        [sys.executable, "-m", "cti_exchange", "keys", "show"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    debug = subprocess.run(
        [sys.executable, "-m", "cti_exchange", "--debug", "keys", "show"],
        capture_output=True,
        text=True,
        env=env,
    )
    # The same exit code as without --debug (a cron line run with --debug to diagnose it keeps
    # the documented codes; it used to exit 1 for every error), and the one-line error last.
    assert debug.returncode == 2 and "Traceback" in debug.stderr
    assert debug.stderr.splitlines()[-1] == plain.stderr.splitlines()[-1]


def test_usage_error_exit_code() -> None:
    result = run_cli("keys", "rotate", "--use", "bogus")
    assert result.exit_code == 2
    unknown = run_cli("no-such-command")
    assert unknown.exit_code == 2 and "internal error" not in unknown.stderr
    bad_option = run_cli("keys", "show", "--no-such-option")
    assert bad_option.exit_code == 2 and "internal error" not in bad_option.stderr


@pytest.mark.parametrize(
    ("args", "says", "help_of"),
    [
        (["--no-such-option"], "No such option: --no-such-option", "cti-exchange"),
        (["no-such-command"], "No such command 'no-such-command'.", "cti-exchange"),
        (["triage", "list", "--limit", "x"], "'x' is not a valid int.", "cti-exchange triage list"),
        (["push"], "Missing argument 'inputs'.", "cti-exchange push"),
    ],
)
def test_a_usage_error_is_one_line_naming_the_help(args: list[str], says: str, help_of: str) -> None:
    """Click wrote the usage, a "Try" line and a blank line before the error: four lines
    where every other error is one."""
    result = run_cli(*args)
    assert result.exit_code == 2
    assert result.stderr.startswith("cti-exchange: error: ") and result.stderr.count("\n") == 1, result.stderr
    assert says in result.stderr and result.stderr.endswith(f"(see `{help_of} --help`)\n"), result.stderr


def test_a_command_group_alone_still_shows_its_help() -> None:
    result = run_cli("triage")
    assert result.exit_code == 2 and "Usage: cti-exchange triage" in result.stdout + result.stderr


def _with_tiny_file_size_limit() -> None:
    """In the child: writing past 64 KiB fails with EFBIG (as a full disk fails with ENOSPC)."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def test_a_full_disk_is_reported_as_such_not_as_a_bug(cert_in: Agency, tmp_path: Path) -> None:
    """A file that cannot be written for want of space: one line saying so, exit 2, nothing
    half-written left."""
    ingest = tmp_path / "many.txt"
    ingest.write_text("".join(f"host-{i}.example.org\n" for i in range(3000)))
    # No bytecode written: under the size limit CPython would leave truncated .pyc files.
    env = {
        "CTI_EXCHANGE_PASSPHRASE": PASSPHRASE,
        "PATH": "/usr/bin:/bin",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": os.environ["PYTHONPATH"],  # the suite's key derivation (tests/test_processes)
    }
    cli = [sys.executable, "-m", "cti_exchange", "--home", str(cert_in.home)]
    full = subprocess.run(
        [*cli, "convert", str(ingest), "-o", str(tmp_path / "out.json")],
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=_with_tiny_file_size_limit,
    )
    assert full.returncode == 2, full.stderr
    assert full.stderr.count("\n") == 1 and "cannot write to disk" in full.stderr
    assert "internal error" not in full.stderr and "Traceback" not in full.stderr
    assert not (tmp_path / "out.json").exists()


def _closed_pipe() -> int:
    """The write end of a pipe whose reader has already gone, as `| head -1` leaves it."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    return write_end


@pytest.mark.parametrize(
    "command",
    [
        ["export", "--any-status"],
        ["convert", "{iocs}", "-o", "-"],
        ["keys", "export", "-o", "-"],
        ["triage", "list"],  # what the other commands print, as `triage list | head` reads it
        ["triage", "list", "--json"],
        ["audit", "show"],
    ],
    ids=" ".join,
)
def test_a_closed_stdout_ends_a_stream_quietly(cert_in: Agency, tmp_path: Path, command: list[str]) -> None:
    """Every command that streams data to stdout ends like `cat` does when its reader stops
    early: nothing on stderr, the status a shell reports for SIGPIPE."""
    put(cert_in, [indicator("evil.example")])
    iocs = tmp_path / "iocs.txt"
    iocs.write_text("evil.example\n")
    args = [part.format(iocs=iocs) for part in command]
    stdout = _closed_pipe()
    try:
        process = subprocess.run(
            [sys.executable, "-m", "cti_exchange", "--home", str(cert_in.home), *args],
            stdout=stdout,
            stderr=subprocess.PIPE,
            # PYTHONPATH kept: the suite's key derivation (tests/test_processes/sitecustomize.py)
            env={
                "CTI_EXCHANGE_PASSPHRASE": PASSPHRASE,
                "PATH": "/usr/bin:/bin",
                "PYTHONPATH": os.environ["PYTHONPATH"],
            },
            timeout=120,
        )
    finally:
        os.close(stdout)
    assert process.returncode == 141, process.stderr
    assert process.stderr == b""


_FAILS_AFTER_SOME_OUTPUT = """
import sys, types
from cti_exchange.cli import app as cli_app
from cti_exchange.errors import UsageError

def register(app):
    @app.command("spill")
    def spill():
        sys.stdout.write("a first line, still in the buffer\\n")
        raise UsageError("failed after some output")

module = types.ModuleType("cti_exchange.cli.spill_cmd")
module.register = register
sys.modules[module.__name__] = module
cli_app.COMMAND_MODULES["spill"] = "spill_cmd"
cli_app.main()
"""


def test_an_error_after_some_output_keeps_its_exit_code_on_a_closed_stdout() -> None:
    """A command that printed a little, then failed, while its reader had gone: the error's
    exit code and one line, not CPython's 120 and "Exception ignored ... BrokenPipeError"
    from the flush at exit."""
    stdout = _closed_pipe()
    try:
        process = subprocess.run(
            [sys.executable, "-c", _FAILS_AFTER_SOME_OUTPUT, "spill"],
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            env={"PATH": "/usr/bin:/bin"},  # stdout buffered, as for users (no PYTHONUNBUFFERED)
            timeout=120,
        )
    finally:
        os.close(stdout)
    assert process.returncode == 2, process.stderr
    assert process.stderr == "cti-exchange: error: failed after some output\n"


@pytest.mark.parametrize(
    "command",
    [
        ["audit", "export", "--since", "2026-01-01", "--until", "2026-12-31"],
        ["seal", "bundle.json", "--to", "cert-fr"],
        ["open", "envelope.json"],
    ],
    ids=" ".join,
)
def test_commands_that_write_files_only_refuse_stdout(
    cert_in: Agency, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    """`-o -` is stdout where a command streams; elsewhere a one-line error, not a file named `-`."""
    monkeypatch.chdir(tmp_path)
    result = cert_in.run(*command, "-o", "-")
    assert result.exit_code == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "-o - (stdout) is not supported" in result.stderr
    assert not (tmp_path / "-").exists()
