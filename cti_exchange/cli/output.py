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

    def heading(self, title: str, *, first: bool = False) -> None:
        """A titled table's title where plain output has none (piped, in a log, in cron's mail):
        a line of its own ("Sent envelopes:"), after a blank line unless `first`. Call it before
        `table(..., title=title)`, which shows the title itself on a terminal."""
        if self.json_mode or self.is_terminal:
            return
        if not first:
            self.line("")
        self.line(f"{title}:")

    def table(
        self,
        columns: Sequence[str],
        rows: Iterable[Sequence[Any]],
        *,
        title: str | None = None,
        optional: Sequence[str] = (),
    ) -> None:
        """Rows for a terminal (a table, or one record per block) or for a script (tab-separated
        lines, a header first).

        On a terminal a word (whatever has no space in it: an id, an indicator value, a hash, a
        key id, a fingerprint, a URL) is never broken: analysts read them out over the phone
        and paste them into the next command. Text wraps at its spaces only. Where the words do
        not fit side by side at the terminal's width, the `optional` columns (named in the
        order they may go) are left out, one at a time, with a note naming them; where that is
        not enough, each record is shown as `name: value` fields packed on lines of their own
        rather than a table cutting them. Scripts always get every column."""
        if self.json_mode:
            return
        cells = [["" if cell is None else str(cell) for cell in row] for row in rows]
        if self.is_terminal:
            shown = list(range(len(columns)))
            left_out: list[str] = []
            widths = _column_widths(columns, cells, self.console.width - _table_frame(len(columns)))
            if widths is not None or len(columns) == 2:
                pass  # fits; or field and value, which go on lines of their own
            elif len(empty := [i for i in shown if not any(i < len(row) and row[i] for row in cells)]) < len(
                shown
            ):
                shown = [i for i in shown if i not in empty]  # nothing in them: nothing to say
                widths = self._widths_of(columns, cells, shown) if empty else None
            for name in optional:
                if widths is not None:
                    break
                if name not in columns or columns.index(name) not in shown:
                    continue  # not in this table, or already gone (empty)
                shown.remove(columns.index(name))
                left_out.append(name)
                widths = self._widths_of(columns, cells, shown)
            if widths is None and len(columns) == 2:
                self._fields(cells, title=title)
            elif widths is None:
                self._blocks(columns, cells, title=title)
            else:
                kept = [columns[i] for i in shown]
                self._rich_table(kept, _only(cells, shown), widths, title=title)
                if left_out:
                    self.note(
                        f"not shown at this terminal's width: {', '.join(left_out)} (a wider terminal "
                        "shows them; --json has every field)"
                    )
        else:
            sys.stdout.write("\t".join(columns) + "\n")
            for row in cells:
                sys.stdout.write("\t".join(cell.replace("\t", " ") for cell in row) + "\n")

    def _widths_of(
        self, columns: Sequence[str], cells: list[list[str]], shown: list[int]
    ) -> list[int] | None:
        """`_column_widths` of the columns `shown` (their indexes) at this terminal's width."""
        kept = [columns[i] for i in shown]
        return _column_widths(kept, _only(cells, shown), self.console.width - _table_frame(len(kept)))

    def _rich_table(
        self, columns: Sequence[str], rows: list[list[str]], widths: list[int], *, title: str | None
    ) -> None:
        from rich.table import Table
        from rich.text import Text

        # Cells as Text, never as markup: they quote partners' values, names and refusal
        # details, where `[/x]` would stop the command and `[link=...]` would change what
        # the analyst sees. Each column is as wide as its longest word at least, so "fold"
        # never applies: text wraps at spaces.
        table = Table(title=Text(title) if title else None, show_lines=False)
        for column, width in zip(columns, widths, strict=True):
            table.add_column(column, overflow="fold", width=width)
        for row in rows:
            table.add_row(*(Text(cell) for cell in row))
        self.console.print(table)

    def _fields(self, rows: list[list[str]], *, title: str | None) -> None:
        """A two-column table (a field and its value) too wide for the terminal: one `field:
        value` line per row, the value whole."""
        from rich.text import Text

        if title:
            self.console.print(Text(title, style="italic"))
        for row in rows:
            text = Text()
            text.append(f"{row[0]}:", style="bold")
            text.append(f" {row[1]}" if len(row) > 1 and row[1] else "")
            self.console.print(text, soft_wrap=True)

    def _blocks(self, columns: Sequence[str], rows: list[list[str]], *, title: str | None) -> None:
        """One record per block: its fields as `name: value`, packed on lines as wide as the
        terminal, the block's first line flush left and the others indented. A field is
        never cut; text longer than a line wraps at its spaces; a single word longer than
        the terminal is written whole (the terminal folds it on screen, a copy takes it
        whole)."""
        from rich.text import Text

        width = self.console.width
        if title:
            self.console.print(Text(title, style="italic"))
        for row in rows:
            for line in _packed_fields(columns, row, width):
                text = Text()
                for label, value in line:
                    if label is None:
                        text.append(value)
                    else:
                        text.append(label, style="bold")
                        text.append(value)
                self.console.print(text, soft_wrap=True)


_FIELD_GAP = "   "
_INDENT = "  "


def _only(cells: list[list[str]], shown: list[int]) -> list[list[str]]:
    """The cells of the columns `shown`, a row shorter than the header padded with ''."""
    return [[row[i] if i < len(row) else "" for i in shown] for row in cells]


def _table_frame(count: int) -> int:
    """The width a rich table of `count` columns takes besides its cells: a border on each
    side and between columns, a space of padding on each side of every cell."""
    return count + 1 + 2 * count


def _words(text: str) -> list[str]:
    return text.split()


def _column_widths(columns: Sequence[str], rows: list[list[str]], room: int) -> list[int] | None:
    """Each column's width, so that no word is broken: as wide as its longest line where the
    table fits, else as wide as its longest word plus a share of what is left. None where even
    the longest words do not fit side by side in `room`."""
    from rich.cells import cell_len

    least, most = [], []
    for index, column in enumerate(columns):
        cells = [column, *(row[index] for row in rows if index < len(row))]
        least.append(max((_unbroken(cell) for cell in cells), default=1))
        most.append(max((cell_len(line) for cell in cells for line in cell.splitlines()), default=1))
    least = [max(1, width) for width in least]
    most = [max(low, high) for low, high in zip(least, most, strict=True)]
    if sum(most) <= room:
        return most
    if sum(least) > room:
        return None
    # What is left goes to the columns that want least first: a date or a count gets its whole
    # line, and the long text of a description wraps, not every row's time.
    widths, spare = list(least), room - sum(least)
    for index in sorted(range(len(widths)), key=lambda i: most[i] - least[i]):
        given = min(spare, most[index] - least[index])
        widths[index] += given
        spare -= given
    return widths


# A cell this short is kept on one line, spaces and all (`2026-12-06 19:01`, `TLP:AMBER 1`):
# wrapped, every row would take two lines for a few characters.
_SHORT_CELL = 20


def _unbroken(cell: str) -> int:
    """The width `cell` needs so that nothing in it is broken: its longest word, or the whole
    of a short single-line cell."""
    from rich.cells import cell_len

    if "\n" not in cell and cell_len(cell) <= _SHORT_CELL:
        return cell_len(cell)
    return max((cell_len(word) for word in _words(cell)), default=1)


def _packed_fields(
    columns: Sequence[str], row: Sequence[str], width: int
) -> list[list[tuple[str | None, str]]]:
    """A record's lines for `_blocks`: each a list of (label, text) pieces (label None for a
    field's continuation or a gap). Empty fields are left out."""
    from rich.cells import cell_len

    lines: list[list[tuple[str | None, str]]] = []
    current: list[tuple[str | None, str]] = []
    used = 0
    for column, cell in zip(columns, row, strict=False):
        if not cell:
            continue
        label = f"{column}: " if column else ""
        size = cell_len(label) + cell_len(cell)
        indent = "" if not lines and not current else _INDENT
        if current and used + len(_FIELD_GAP) + size <= width:
            current.append((None, _FIELD_GAP))
            current.append((label, cell))
            used += len(_FIELD_GAP) + size
            continue
        if current:
            lines.append(current)
            current, used = [], 0
        if cell_len(indent) + size <= width:
            current = [(None, indent), (label, cell)] if indent else [(label, cell)]
            used = cell_len(indent) + size
            continue
        # Longer than a line: wrapped at its spaces, its continuation indented further.
        first = True
        for piece in _wrap_words(cell, width - cell_len(indent) - cell_len(label), width - 2 * len(_INDENT)):
            if first:
                lines.append([(None, indent), (label, piece)] if indent else [(label, piece)])
                first = False
            else:
                lines.append([(None, _INDENT * 2 + piece)])
    if current:
        lines.append(current)
    return lines


def _wrap_words(text: str, first: int, rest: int) -> list[str]:
    """`text` in lines at most `first`, then `rest`, cells wide, broken at spaces only (a word
    longer than a line stands alone on its line, whole)."""
    from rich.cells import cell_len

    lines: list[str] = []
    current = ""
    for word in _words(text):
        limit = first if not lines else rest
        if current and cell_len(current) + 1 + cell_len(word) > limit:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    lines.append(current)
    return lines


def _finite(value: Any) -> Any:
    """`value` with each NaN or infinity as the text `NaN`, `Infinity` or `-Infinity`."""
    if isinstance(value, float) and not math.isfinite(value):
        return json.dumps(value)
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value
