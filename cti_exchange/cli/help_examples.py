r"""Examples in --help, laid out to be pasted.

Click rewraps an epilog to the terminal's width: an example came out over several lines with
no `\\`, and the first line pasted ran `cti-exchange --home` alone. Every epilog is written as
`Example: COMMAND` lines (other lines are prose) and shown as a paragraph click leaves alone
(`\b`): each command on lines of its own, cut between options with a shell continuation.
"""

from __future__ import annotations

import re
from typing import Any

_EXAMPLE_WIDTH = 76  # click's help is 78 wide at most, the epilog indented by 2
_COMMAND_INDENT = "  "
_CONTINUATION_INDENT = _COMMAND_INDENT + "    "
_SHELL_OPERATORS = frozenset({"&&", "||", "|", ";", ">", ">>", "<", "2>"})
_ENVIRONMENT_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def format_epilogs(command: Any) -> None:
    """`format_examples` applied to the epilog of `command` and of every command below it."""
    if command.epilog:
        command.epilog = format_examples(command.epilog)
    for sub in getattr(command, "commands", {}).values():
        format_epilogs(sub)


def format_examples(epilog: str) -> str:
    """An epilog of `Example: COMMAND` lines (`Example (crontab): LINE` too) and prose lines,
    as --help shows it: each label on a line, each command below it on lines that can be
    pasted into a shell (cut before an option, each line but the last ending in ` \\`), the
    prose after them, wrapped by click."""
    examples: list[tuple[str, str]] = []
    prose: list[str] = []
    for line in epilog.replace("\b\n", "").splitlines():
        label, colon, command = line.partition(": ")
        if colon and label.startswith("Example") and command.strip():
            examples.append((label, command.strip()))
        elif line.strip():
            prose.append(line.strip())
    lines: list[str] = []
    for index, (label, command) in enumerate(examples):
        if index == 0 or label != examples[index - 1][0]:
            plural = sum(1 for other, _ in examples if other == label) > 1 and label == "Example"
            lines.append(("Examples" if plural else label) + ":")
        lines.extend(_command_lines(command))
    parts = ["\b\n" + "\n".join(lines)] if lines else []
    if prose:
        parts.append(" ".join(prose))
    return "\n\n".join(parts)


def _command_lines(command: str) -> list[str]:
    """`command` on lines at most _EXAMPLE_WIDTH wide where it can be: broken only before an
    option or a shell operator (an option stays with its value), every line but the last
    ending in a shell continuation. A crontab line (starting with `*` or a digit) is never
    broken: cron takes no continuation."""
    if len(_COMMAND_INDENT + command) <= _EXAMPLE_WIDTH or command[:1] in "*0123456789@":
        return [_COMMAND_INDENT + command]
    units: list[str] = []  # what a line may start with: a word of the head, an option with its values
    in_head, break_after = True, -1
    for word in _shell_words(command):
        starts = (word.startswith("-") and word != "-") or word in _SHELL_OPERATORS
        if starts or in_head or not units:
            units.append(word)
            in_head = in_head and not starts
            if in_head and _ENVIRONMENT_ASSIGNMENT.match(word):
                break_after = len(units) - 1  # the variables on a line, the command below
        else:
            units[-1] += " " + word
    lines: list[str] = []
    current = _COMMAND_INDENT
    for index, unit in enumerate(units):
        candidate = f"{current} {unit}" if current.strip() else current + unit
        if current.strip() and (index == break_after + 1 or len(candidate) + len(" \\") > _EXAMPLE_WIDTH):
            lines.append(current + " \\")
            current = _CONTINUATION_INDENT + unit
        else:
            current = candidate
    lines.append(current)
    return lines


def _shell_words(command: str) -> list[str]:
    """`command` split at its spaces outside quotes, each word as written (quotes kept)."""
    words: list[str] = []
    current, quote = "", ""
    for char in command:
        if quote:
            current += char
            if char == quote:
                quote = ""
        elif char in "'\"":
            current += char
            quote = char
        elif char == " ":
            if current:
                words.append(current)
            current = ""
        else:
            current += char
    if current:
        words.append(current)
    return words
