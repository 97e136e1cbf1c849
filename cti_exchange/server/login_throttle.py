"""Failed-login throttling for the exchange server.

scrypt makes each guess cost about 0.1 s, but an unthrottled server still lets a client guess
as fast as it can pay for it. After `max_failures` failed logins for one username from one
client address within `window_seconds`, further attempts for that pair are refused with 429
and a Retry-After saying when the oldest of those failures leaves the window, without
checking the password (no scrypt either, so a flood of guesses cannot load the CPU).

Keyed by (address, username), so a stranger failing against one account from elsewhere does
not lock out the partner that owns it; behind a reverse proxy the address is the client the
proxy names in X-Forwarded-For (`serve --trusted-proxy`, docs/SERVER.md). A success clears
the pair. Memory is bounded: at most `max_tracked` pairs are remembered.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

MAX_FAILURES = 10
WINDOW_SECONDS = 600.0
MAX_TRACKED = 10_000

Key = tuple[str, str]  # (client address, username)


class LoginThrottle:
    def __init__(
        self,
        *,
        max_failures: int = MAX_FAILURES,
        window_seconds: float = WINDOW_SECONDS,
        max_tracked: int = MAX_TRACKED,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self.max_tracked = max_tracked
        self._clock = clock
        self._failures: dict[Key, deque[float]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many (address, username) pairs are remembered."""
        return len(self._failures)

    def retry_after(self, key: Key) -> float | None:
        """Seconds until `key` may try again, or None if it may try now."""
        now = self._clock()
        with self._lock:
            times = self._failures.get(key)
            if times is None:
                return None
            self._expire(times, now)
            if not times:
                del self._failures[key]
                return None
            if len(times) < self.max_failures:
                return None
            return max(times[0] + self.window_seconds - now, 0.0) or None

    def failed(self, key: Key) -> None:
        now = self._clock()
        with self._lock:
            times = self._failures.get(key)
            if times is None:
                if len(self._failures) >= self.max_tracked:
                    self._make_room(now)
                times = self._failures[key] = deque(maxlen=self.max_failures)
            self._expire(times, now)
            times.append(now)

    def succeeded(self, key: Key) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def _expire(self, times: deque[float], now: float) -> None:
        while times and times[0] <= now - self.window_seconds:
            times.popleft()

    def _make_room(self, now: float) -> None:
        """Forgets expired pairs, then (under a flood of new pairs) the least recent half."""
        for key in [k for k, t in self._failures.items() if not t or t[-1] <= now - self.window_seconds]:
            del self._failures[key]
        if len(self._failures) >= self.max_tracked:
            by_last = sorted(self._failures, key=lambda k: self._failures[k][-1])
            for key in by_last[: len(by_last) // 2 + 1]:
                del self._failures[key]
