"""Progress reported, not printed, by long operations (pip-audit's `_state.py` pattern).

The CLI plugs in a rich progress display on a terminal and nothing in cron; library callers
and tests pass nothing.
"""

from __future__ import annotations

from typing import Protocol


class ProgressReporter(Protocol):
    def step(self, message: str) -> None:
        """A new phase started (e.g. 'pulling from cert-in')."""

    def advance(self, count: int = 1) -> None:
        """Some units of the current phase are done (objects, envelopes)."""


class NoProgress:
    def step(self, message: str) -> None:
        pass

    def advance(self, count: int = 1) -> None:
        pass
