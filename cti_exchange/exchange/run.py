"""One run of pull, sync or push: the caller's progress reporter, and the TAXII servers the run
found out of reach (taxii/servers.py), shared by every partner's client in it.

`RunProgress.of(reporter)` is what each step calls: a sync passes its RunProgress on to its
pull and its posting, so they share one; a pull or a push alone makes its own.
"""

from __future__ import annotations

from cti_exchange.progress import NoProgress, ProgressReporter
from cti_exchange.taxii.servers import ServersThisRun


class RunProgress:
    """A ProgressReporter that also says, while a request is retried, which server is failing
    and for how long it will be tried, then goes back to the step under way. The CLI's
    reporter shows it on a terminal only (nothing in cron, pipes or --json); the sync log gets
    one line per failing request (servers.py)."""

    def __init__(self, reporter: ProgressReporter | None = None) -> None:
        self._reporter = reporter or NoProgress()
        self._step: str | None = None
        self._count = 0
        self.servers = ServersThisRun(notify=self._reporter.step, recovered=self._back_to_step)

    @classmethod
    def of(cls, reporter: ProgressReporter | None) -> RunProgress:
        return reporter if isinstance(reporter, RunProgress) else cls(reporter)

    def step(self, message: str) -> None:
        self._step, self._count = message, 0
        self._reporter.step(message)

    def advance(self, count: int = 1) -> None:
        self._count += count
        self._reporter.advance(count)

    def _back_to_step(self) -> None:
        if self._step is not None:
            self._reporter.step(self._step)
            if self._count:
                self._reporter.advance(self._count)
