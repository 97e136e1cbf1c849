"""Moving the whole process's clock, as /tmp/wt-ops/future.py did: every `utc_now()` reads
`cti_exchange.clock.datetime`, replaced here by a subclass whose `now` is shifted."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

import cti_exchange.clock as clock

_REAL = clock.datetime


def clock_shifter(monkeypatch: pytest.MonkeyPatch) -> Callable[[timedelta], None]:
    """shift(delta) moves every utc_now() in the process by `delta` from now on (undone with
    the monkeypatch)."""

    def shift(delta: timedelta) -> None:
        class Shifted(_REAL):
            @classmethod
            def now(cls, tz: Any = None) -> Shifted:
                moment = _REAL.now(tz) + delta
                return cls(*moment.timetuple()[:6], moment.microsecond, moment.tzinfo)

        monkeypatch.setattr(clock, "datetime", Shifted)

    return shift
