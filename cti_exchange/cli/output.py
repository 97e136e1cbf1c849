"""Rendering for humans and for scripts.

On a terminal: rich tables and colours. Without one (pipes, cron): plain tab-separated lines,
no colours, no progress bars. With --json: one JSON document on stdout and nothing else there.

`-o -` means stdout for the commands that stream data there (export, convert, keys export); a
reader that stops early (`export | head -1`) ends each of them the same way, through
`reader_went_away`. Commands that write files only refuse `-o -` (`refuse_stdout`) rather than
create a file named `-`.
"""

from __future__ import annotations

import io
import json
import math
import os
import select
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from cti_exchange.errors import ExitCode, UsageError
from cti_exchange.untrusted_text import escape_controls

if TYPE_CHECKING:
    from rich.console import Console


def _console(*, stderr: bool) -> Console:
    # rich is imported only when a terminal will see its output: cron runs and scripts
    # (and `triage list` in a pipe) start without it.
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def reader_went_away() -> NoReturn:
    """The reader of stdout or of a FIFO stopped early (`export | head`): quiet, and the
    status a shell reports for a process ended by SIGPIPE, as `cat` or `grep` would give."""
    _discard_stdout()
    raise typer.Exit(ExitCode.BROKEN_PIPE)


def drop_stdout_if_reader_gone() -> None:
    """Before ending with an error: output still buffered for a reader that went away is
    dropped, so the error's own exit code stands (not CPython's 120 when the flush at exit
    fails on the closed pipe)."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _discard_stdout()
    except (OSError, ValueError):
        pass  # the error being reported matters more than this output


def _discard_stdout() -> None:
    try:  # what is still buffered for the closed pipe goes nowhere (Python docs, "SIGPIPE")
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, io.UnsupportedOperation):
        pass  # not a real descriptor (a test runner's capture)


def stdout_reader_gone() -> bool:
    """Whether stdout is a pipe whose reader has closed it: the write end of such a pipe polls
    as an error (POLLERR). A broken pipe elsewhere (a socket) is not taken for it."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, io.UnsupportedOperation):
        return False


@contextmanager
def streaming_to_stdout() -> Iterator[None]:
    """Around a write of data to stdout (`-o -`): a reader that stops early ends the command
    through `reader_went_away`, not as an internal error."""
    try:
        yield
    except BrokenPipeError:
        reader_went_away()


def refuse_stdout(output: Path | None, reason: str) -> None:
    """For a command that writes a file only: `-o -` is a usage error, not a file named `-`."""
    if output is not None and str(output) == "-":
        raise UsageError(
            f"-o - (stdout) is not supported: {reason}", hint="give a file path (./- for a file named '-')"
        )


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
        """The command's result as JSON (only in --json mode): RFC 8259 JSON always. A NaN or
        an infinity (read from a store edited by hand, say) is written as its text, never as
        the bare `NaN` Python's json module writes and jq and strict parsers refuse."""
        try:
            text = json.dumps(payload, indent=2, sort_keys=True, default=str, allow_nan=False)
        except ValueError:
            text = json.dumps(_finite(payload), indent=2, sort_keys=True, default=str, allow_nan=False)
        sys.stdout.write(text + "\n")

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

    def reject(self, text: str) -> None:
        """An input item that was left out: its own word, apart from warnings (the summary
        counts them apart too)."""
        text = escape_controls(text)  # rejections quote input files
        if self.stderr_is_terminal:
            self.stderr.print(f"rejected: {text}", style="red", markup=False)
        else:
            sys.stderr.write(f"rejected: {text}\n")

    def table(
        self, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None
    ) -> None:
        if self.json_mode:
            return
        rows = [["" if cell is None else str(cell) for cell in row] for row in rows]
        if self.is_terminal:
            from rich.table import Table
            from rich.text import Text

            # Cells as Text, never as markup: they quote partners' values, names and refusal
            # details, where `[/x]` would stop the command and `[link=...]` would change what
            # the analyst sees.
            table = Table(title=Text(title) if title else None, show_lines=False)
            for column in columns:
                table.add_column(column, overflow="fold")
            for row in rows:
                table.add_row(*(Text(cell) for cell in row))
            self.console.print(table)
        else:
            sys.stdout.write("\t".join(columns) + "\n")
            for row in rows:
                sys.stdout.write("\t".join(cell.replace("\t", " ") for cell in row) + "\n")


def _finite(value: Any) -> Any:
    """`value` with each NaN or infinity as the text `NaN`, `Infinity` or `-Infinity`."""
    if isinstance(value, float) and not math.isfinite(value):
        return json.dumps(value)
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value
