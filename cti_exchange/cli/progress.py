"""A rich progress display on a terminal, nothing otherwise (cron, pipes, --json)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cti_exchange.cli.output import Output
from cti_exchange.progress import NoProgress, ProgressReporter


class RichProgress:
    def __init__(self, progress: Any) -> None:
        self._progress = progress
        self._task = progress.add_task("starting", total=None)
        self._count = 0

    def step(self, message: str) -> None:
        self._count = 0
        self._progress.update(self._task, description=message, completed=0)

    def advance(self, count: int = 1) -> None:
        self._count += count
        self._progress.update(self._task, completed=self._count)


@contextmanager
def progress_for(out: Output) -> Iterator[ProgressReporter]:
    if out.json_mode or not out.stderr_is_terminal:
        yield NoProgress()
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),  # names files and partners
        TextColumn("{task.completed}"),
        TimeElapsedColumn(),
        console=out.stderr,
        transient=True,
    ) as progress:
        yield RichProgress(progress)
