"""The examples in --help can be pasted (found by a fresh-eyes review): click rewrapped each
epilog to the terminal's width, so 19 of 44 help pages cut their example over several lines
with no `\\`; the first line of the init example pasted ran `cti-exchange --home` alone, and
the `partners set` example broke its URL inside the host name. Every example is now shown as
lines a shell takes as they are: whole, or ending in ` \\` with the rest below."""

from __future__ import annotations

import importlib
import shlex
from typing import Any

import pytest
import typer

from cti_exchange.cli.app import COMMAND_MODULES, app, iter_commands
from tests.conftest import run_cli

ROOT_EXAMPLE = "cti-exchange --home ~/cert-fr init --agency cert-fr --name CERT-FR"


def _walk(command: Any, path: tuple[str, ...]) -> dict[tuple[str, ...], str]:
    found = {path: command.epilog or ""}
    for name, sub in getattr(command, "commands", {}).items():
        found.update(_walk(sub, (*path, name)))
    return found


def _written_examples() -> dict[tuple[str, ...], list[str]]:
    """Each command's examples as its module writes them (`Example: COMMAND` lines)."""
    epilogs: dict[tuple[str, ...], str] = {}
    for module_name in sorted(set(COMMAND_MODULES.values())):
        holder = typer.Typer(rich_markup_mode=None)
        importlib.import_module(f"cti_exchange.cli.{module_name}").register(holder)
        for name, command in typer.main.get_group(holder).commands.items():
            epilogs.update(_walk(command, (name,)))
    examples = {
        path: [
            line.partition(": ")[2]
            for line in epilog.replace("\b\n", "").splitlines()
            if line.startswith("Example") and line.partition(": ")[2].strip()
        ]
        for path, epilog in epilogs.items()
    }
    examples[()] = [ROOT_EXAMPLE]
    return examples


WRITTEN = _written_examples()


def _shown_examples(help_text: str) -> tuple[list[str], list[str]]:
    """The commands under the `Example...:` label of a help page, joined where a line ends in
    ` \\`, and the lines they were shown on."""
    lines = help_text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("Example"))
    shown: list[str] = []
    first = lines[start].partition(": ")[2]
    block = ([first] if first.strip() else []) + [
        line for line in _until_blank(lines[start + 1 :]) if not line.lstrip().startswith("Example")
    ]
    commands, pending = [], ""
    for line in block:
        shown.append(line)
        text = line.strip()
        if text.endswith(" \\"):
            pending += text[:-2] + " "
            continue
        commands.append(pending + text)
        pending = ""
    assert not pending, f"an example ends in a continuation: {block}"
    return commands, shown


def _until_blank(lines: list[str]) -> list[str]:
    taken = []
    for line in lines:
        if not line.strip():
            break
        taken.append(line)
    return taken


@pytest.mark.parametrize(
    "path",
    [path for path, _ in iter_commands(typer.main.get_command(app))],
    ids=lambda p: " ".join(p) or "(root)",
)
def test_every_help_example_can_be_pasted_at_80_columns(path: list[str]) -> None:
    result = run_cli(*path, "--help", env={"COLUMNS": "80"})
    assert result.exit_code == 0
    commands, shown = _shown_examples(result.stdout)
    written = WRITTEN[tuple(path)]
    # Each line the help shows is a whole command or ends in ` \`: pasted, the words are the
    # ones written (no word, URL or quoted note cut, nothing run half-typed).
    assert [shlex.split(c) for c in commands] == [shlex.split(c) for c in written], result.stdout
    crontab = [c for c in written if c[:1] == "*"]
    assert all(len(line) <= 78 for line in shown if not crontab), result.stdout


def test_no_example_uses_a_placeholder_the_command_refuses() -> None:
    """`--read-collection ID` is refused (a collection id is a UUID; docs/OPERATIONS.md)."""
    for path, examples in WRITTEN.items():
        for example in examples:
            words = shlex.split(example)
            for option in ("--read-collection", "--write-collection"):
                if option in words:
                    value = example.split(option, 1)[1].split()[0]
                    assert value.startswith('"$') or value.count("-") == 4, (path, example)
