"""Failed-login throttling for the exchange server.

scrypt makes each guess cost about 0.1 s of CPU and 32 MiB, but an unthrottled server still
lets a client guess as fast as it can pay for it, and makes the server pay as much. Two
budgets of failed logins, over a sliding window of `window_seconds` (10 minutes):

* `max_failures` (10) per (client address, username): a password is not guessed faster
  than that from one address. Keyed by the pair, so a stranger failing against one account
  from elsewhere does not lock out the partner that owns it.
* `max_failures_per_address` (30) per client address, whatever the username: a client
  inventing a new username for every guess (each checked against a decoy hash at full
  cost) is stopped too.

Over either budget, attempts are refused with 429 and a Retry-After saying when the oldest
failure leaves the window, without checking the password (no scrypt either). An attempt is
counted as a failure *before* its password is checked (`reserve`) and given back if the
password was right (`succeeded`), so concurrent guesses cannot all pass the check before the
first failure is recorded. A success clears its pair; the address budget keeps the others'
failures. Behind a reverse proxy the address is the client the proxy names in
X-Forwarded-For (`serve --trusted-proxy`, docs/SERVER.md). Memory is bounded: at most
`max_tracked` pairs and as many addresses are remembered.

`CheckSlots` bounds how many password checks run at once, so a flood from many addresses
cannot take all the CPU for scrypt.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import TypeVar

MAX_FAILURES = 10
MAX_FAILURES_PER_ADDRESS = 30
WINDOW_SECONDS = 600.0
MAX_TRACKED = 10_000
MAX_CONCURRENT_CHECKS = 2
CHECK_WAIT_SECONDS = 1.0

Key = tuple[str, str]  # (client address, username)
_K = TypeVar("_K", bound=Hashable)


class Throttled(Exception):
    """Too many failed logins: try again in `wait` seconds."""

    def __init__(self, wait: float, *, per_address: bool) -> None:
        super().__init__(f"retry in {wait:.0f} s")
        self.wait = wait
        self.per_address = per_address


class ChecksBusy(Exception):
    """Every password-check slot stayed taken for as long as a check may wait."""


class LoginThrottle:
    def __init__(
        self,
        *,
        max_failures: int = MAX_FAILURES,
        max_failures_per_address: int = MAX_FAILURES_PER_ADDRESS,
        window_seconds: float = WINDOW_SECONDS,
        max_tracked: int = MAX_TRACKED,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.max_failures_per_address = max_failures_per_address
        self.window_seconds = window_seconds
        self.max_tracked = max_tracked
        self._clock = clock
        self._failures: dict[Key, deque[float]] = {}
        self._by_address: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many (address, username) pairs are remembered."""
        return len(self._failures)

    @property
    def addresses_tracked(self) -> int:
        return len(self._by_address)

    def retry_after(self, key: Key) -> float | None:
        """Seconds until `key` may try again, or None if it may try now."""
        refusal = self.refusal(key)
        return None if refusal is None else refusal.wait

    def refusal(self, key: Key) -> Throttled | None:
        """Why and how long `key` may not try now, or None if it may."""
        with self._lock:
            return self._throttled(key, self._clock())

    def reserve(self, key: Key) -> float:
        """Counts one attempt for `key` as failed before its password is checked; the time it
        was counted at, to give to `succeeded`. Throttled if `key` may not try now."""
        now = self._clock()
        with self._lock:
            throttled = self._throttled(key, now)
            if throttled is not None:
                raise throttled
            self._record(key, now)
        return now

    def failed(self, key: Key) -> None:
        """Records a failure that was not reserved."""
        with self._lock:
            self._record(key, self._clock())

    def succeeded(self, key: Key, reserved_at: float | None = None) -> None:
        """Clears the pair, and gives the address back the attempt reserved at `reserved_at`."""
        with self._lock:
            self._failures.pop(key, None)
            times = self._by_address.get(key[0])
            if reserved_at is not None and times is not None and reserved_at in times:
                times.remove(reserved_at)

    def _throttled(self, key: Key, now: float) -> Throttled | None:
        pair_wait = _wait(self._failures, key, self.max_failures, self.window_seconds, now)
        address_wait = _wait(
            self._by_address, key[0], self.max_failures_per_address, self.window_seconds, now
        )
        if pair_wait is None and address_wait is None:
            return None
        if address_wait is not None and (pair_wait is None or address_wait >= pair_wait):
            return Throttled(address_wait, per_address=True)
        assert pair_wait is not None
        return Throttled(pair_wait, per_address=False)

    def _record(self, key: Key, now: float) -> None:
        _append(self._failures, key, self.max_failures, self.window_seconds, self.max_tracked, now)
        _append(
            self._by_address,
            key[0],
            self.max_failures_per_address,
            self.window_seconds,
            self.max_tracked,
            now,
        )


def _expire(times: deque[float], now: float, window: float) -> None:
    while times and times[0] <= now - window:
        times.popleft()


def _wait(table: dict[_K, deque[float]], key: _K, limit: int, window: float, now: float) -> float | None:
    """Seconds until `key` is back under `limit` failures, or None if it is under now."""
    times = table.get(key)
    if times is None:
        return None
    _expire(times, now, window)
    if not times:
        del table[key]
        return None
    if len(times) < limit:
        return None
    return max(times[0] + window - now, 0.0) or None


def _append(
    table: dict[_K, deque[float]], key: _K, limit: int, window: float, max_tracked: int, now: float
) -> None:
    times = table.get(key)
    if times is None:
        if len(table) >= max_tracked:
            _make_room(table, now, window, max_tracked)
        times = table[key] = deque(maxlen=limit)
    _expire(times, now, window)
    times.append(now)


def _make_room(table: dict[_K, deque[float]], now: float, window: float, max_tracked: int) -> None:
    """Forgets expired keys, then (under a flood of new keys) the least recent half."""
    for key in [k for k, t in table.items() if not t or t[-1] <= now - window]:
        del table[key]
    if len(table) >= max_tracked:
        by_last = sorted(table, key=lambda k: table[k][-1])
        for key in by_last[: len(by_last) // 2 + 1]:
            del table[key]


class CheckSlots:
    """At most `slots` password checks at once; a check waits up to `wait_seconds` for a free
    slot, then ChecksBusy (answered 503 with Retry-After).

    The wait lets the few checks of a normal start (each partner's first request after a
    restart) queue up instead of failing; under a flood from many addresses it bounds the CPU
    and memory scrypt takes (32 MiB per check), so that requests whose credentials were
    already checked, which cost no scrypt, are still served.
    """

    def __init__(self, slots: int = MAX_CONCURRENT_CHECKS, wait_seconds: float = CHECK_WAIT_SECONDS) -> None:
        self.wait_seconds = wait_seconds
        self._slots = threading.BoundedSemaphore(slots)

    @contextmanager
    def check(self) -> Iterator[None]:
        if not self._slots.acquire(timeout=self.wait_seconds):
            raise ChecksBusy
        try:
            yield
        finally:
            self._slots.release()
