"""Rendering for humans and for scripts.

On a terminal: rich tables and colours. Without one (pipes, cron): plain tab-separated lines,
no colours, no progress bars. With --json: one JSON document on stdout and nothing else there.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from cti_exchange.untrusted_text import escape_controls

if TYPE_CHECKING:
    from rich.console import Console


def _console(*, stderr: bool) -> Console:
    # rich is imported only when a terminal will see its output: cron runs and scripts
    # (and `triage list` in a pipe) start without it.
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


class Output:
    def __init__(self, *, json_mode: bool = False) -> None:
        self.json_mode = json_mode

    @cached_property
    def console(self) -> Console:
        return _console(stderr=False)

    @cached_property
    def stderr(self) -> Console:
        return _console(stderr=True)

    @property
    def is_terminal(self) -> bool:
        return sys.stdout.isatty()

    @property
    def stderr_is_terminal(self) -> bool:
        return sys.stderr.isatty()

    def data(self, payload: Any) -> None:
        """The command's result as JSON (only in --json mode)."""
        sys.stdout.write(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")

    def line(self, text: str = "", *, style: str | None = None) -> None:
        if self.json_mode:
            return
        if self.is_terminal:
            self.console.print(text, style=style, markup=False)
        else:
            sys.stdout.write(text + "\n")

    def note(self, text: str) -> None:
        """Progress and advice: stderr, so stdout stays clean for data."""
        if self.stderr_is_terminal:
            self.stderr.print(text, style="dim", markup=False)
        else:
            sys.stderr.write(text + "\n")

    def warn(self, text: str) -> None:
        text = escape_controls(text)  # warnings quote partner data and input files
        if self.stderr_is_terminal:
            self.stderr.print(f"warning: {text}", style="yellow", markup=False)
        else:
            sys.stderr.write(f"warning: {text}\n")

    def table(
        self, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None
    ) -> None:
        if self.json_mode:
            return
        rows = [["" if cell is None else str(cell) for cell in row] for row in rows]
        if self.is_terminal:
            from rich.table import Table

            table = Table(title=title, show_lines=False)
            for column in columns:
                table.add_column(column, overflow="fold")
            for row in rows:
                table.add_row(*row)
            self.console.print(table)
        else:
            sys.stdout.write("\t".join(columns) + "\n")
            for row in rows:
                sys.stdout.write("\t".join(cell.replace("\t", " ") for cell in row) + "\n")
