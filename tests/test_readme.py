"""The README's two commands are the ones users and CI run, and its command reference matches
`--help`. Regenerate the reference with `python -m tests.test_readme --update`."""

from __future__ import annotations

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
START, END = "<!-- commands:start -->", "<!-- commands:end -->"


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    return [c.strip() for c in re.findall(r"```sh\n(.+?)\n\s*```", section, flags=re.S)]


def command_reference() -> str:
    import typer

    from cti_exchange.cli.app import app, iter_commands

    lines = ["| command | what it does |", "| --- | --- |"]
    for path, command in iter_commands(typer.main.get_command(app)):
        if not path or hasattr(command, "list_commands"):
            continue  # the root and groups: their commands are listed
        summary = (command.help or "").strip().split("\n\n")[0]
        first = " ".join(summary.split()).split(". ")[0].rstrip(".")
        lines.append(f"| `cti-exchange {' '.join(path)}` | {first} |")
    return "\n".join(lines)


def _current_reference() -> str:
    text = (REPO / "README.md").read_text()
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def test_readme_has_exactly_two_setup_commands() -> None:
    commands = _readme_commands()
    assert len(commands) == 2
    assert "cti-exchange demo" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    assert _readme_commands()[1].strip() in ci.splitlines()


def test_command_reference_matches_help() -> None:
    assert _current_reference() == command_reference(), (
        "README.md's command reference is stale: run `python -m tests.test_readme --update`"
    )


def test_the_home_option_works_where_getting_started_puts_it(tmp_path: Path) -> None:
    """Getting started said "or --home DIR on every command", and `cti-exchange keys show
    --home DIR` is refused ("No such option: --home"): --home goes before the command. The
    form the README gives is run as written."""
    from tests.conftest import run_cli

    section = (REPO / "README.md").read_text().split("## Getting started as an agency", 1)[1]
    (line,) = [line for line in section.splitlines() if line.startswith("export CTI_EXCHANGE_HOME=")]
    assert "# or: " in line, line
    form = line.split("# or:", 1)[1].strip()
    assert form.startswith("cti-exchange --home DIR COMMAND"), form
    home = tmp_path / "cert-fr"
    args = form.split()[1:3] + ["init", "--agency", "cert-fr", "--name", "CERT-FR"]
    assert run_cli(*[str(home) if a == "DIR" else a for a in args]).exit_code == 0
    assert (home / "config.toml").is_file()


if __name__ == "__main__" and "--update" in sys.argv:
    readme = REPO / "README.md"
    text = readme.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{command_reference()}\n{END}{tail}")
    print("README.md command reference updated")
