"""Failed-login throttling for the exchange server.

scrypt makes each guess cost about 0.1 s of CPU and 32 MiB, but an unthrottled server still
lets a client guess as fast as it can pay for it, and makes the server pay as much. Three
budgets of failed logins:

* `max_failures` (10) per (client address, username) over a sliding window of
  `window_seconds` (10 minutes): a password is not guessed faster than that from one
  address. Keyed by the pair, so a stranger failing against one account from elsewhere does
  not lock out the partner that owns it.
* `max_failures_per_address` (30) per client address, whatever the username, over the same
  window: a client inventing a new username for every guess (each checked against a decoy
  hash at full cost) is stopped too.
* `max_failed_checks` (60) password checks over `checks_window_seconds` (1 minute) for the
  whole server, whatever the addresses: a flood from many addresses (a botnet, or an IPv6
  network) cannot make the server run scrypt more than that. Over it, credentials that were
  already checked are still served (they cost no scrypt); others are told to come back (503).

Over the first two, attempts are refused with 429 and a Retry-After saying when the oldest
failure leaves the window, without checking the password (no scrypt either). An attempt is
counted as a failure *before* its password is checked (`reserve`) and given back if the
password was right (`succeeded`), so concurrent guesses cannot all pass the check before the
first failure is recorded. A success clears its pair; the address budget keeps the others'
failures. The client address is an IPv4 address, or the /64 network of an IPv6 address
(`address_bucket`): one IPv6 host usually has a whole /64 to pick addresses from. Behind a
reverse proxy the address is the client the proxy names in X-Forwarded-For (`serve
--trusted-proxy`, docs/SERVER.md). Memory is bounded: at most `max_tracked` pairs and as
many addresses are remembered.

`CheckSlots` bounds how many password checks run at once, so a flood from many addresses
cannot take all the CPU for scrypt; a check that finds no free slot is refused at once
instead of holding a worker thread while it waits.
"""

from __future__ import annotations

import ipaddress
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
MAX_FAILED_CHECKS = 60
CHECKS_WINDOW_SECONDS = 60.0
MAX_CONCURRENT_CHECKS = 2
IPV6_BUCKET_PREFIX = 64

Key = tuple[str, str]  # (client address, username)
_K = TypeVar("_K", bound=Hashable)


class Throttled(Exception):
    """Too many failed logins: try again in `wait` seconds. `per_address`: from the client's
    address, whatever the user name; `server_wide`: on the whole server, from any address."""

    def __init__(self, wait: float, *, per_address: bool, server_wide: bool = False) -> None:
        super().__init__(f"retry in {wait:.0f} s")
        self.wait = wait
        self.per_address = per_address
        self.server_wide = server_wide


class ChecksBusy(Exception):
    """Every password-check slot is taken."""


def address_bucket(address: str) -> str:
    """The client as the throttle counts it: an IPv4 address as it is (an IPv4-mapped IPv6
    address as its IPv4 address), an IPv6 address as its /64 network, anything else (no
    address at all) as given."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, IPV6_BUCKET_PREFIX), strict=False))
    return str(ip)


class LoginThrottle:
    def __init__(
        self,
        *,
        max_failures: int = MAX_FAILURES,
        max_failures_per_address: int = MAX_FAILURES_PER_ADDRESS,
        window_seconds: float = WINDOW_SECONDS,
        max_tracked: int = MAX_TRACKED,
        max_failed_checks: int = MAX_FAILED_CHECKS,
        checks_window_seconds: float = CHECKS_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.max_failures_per_address = max_failures_per_address
        self.window_seconds = window_seconds
        self.max_tracked = max_tracked
        self.max_failed_checks = max_failed_checks
        self.checks_window_seconds = checks_window_seconds
        self._clock = clock
        self._failures: dict[Key, deque[float]] = {}
        self._by_address: dict[str, deque[float]] = {}
        self._checks: deque[float] = deque(maxlen=max_failed_checks)
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

    def reserve_check(self) -> float:
        """Counts one password check against the server-wide budget before it runs; the time it
        was counted at, to give to `check_succeeded`. Throttled (server_wide) if the budget
        is spent."""
        now = self._clock()
        with self._lock:
            _expire(self._checks, now, self.checks_window_seconds)
            if len(self._checks) >= self.max_failed_checks:
                wait = max(self._checks[0] + self.checks_window_seconds - now, 0.0)
                raise Throttled(max(wait, 1.0), per_address=False, server_wide=True)
            self._checks.append(now)
        return now

    def check_succeeded(self, reserved_at: float) -> None:
        """Gives back to the server-wide budget the check counted at `reserved_at`."""
        with self._lock:
            if reserved_at in self._checks:
                self._checks.remove(reserved_at)

    def failed(self, key: Key) -> None:
        """Records a failure that was not reserved."""
        with self._lock:
            self._record(key, self._clock())

    def address_failed(self, address: str) -> None:
        """Records a failure against the address only (a user name no account can have: no
        pair is remembered for it)."""
        now = self._clock()
        with self._lock:
            _append(
                self._by_address,
                address,
                self.max_failures_per_address,
                self.window_seconds,
                self.max_tracked,
                now,
            )

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
    """At most `slots` password checks at once; a check that finds every slot taken gets
    ChecksBusy at once (answered 503 with Retry-After), never waits for one.

    Waiting would hold one of waitress's few worker threads: under a flood of wrong logins
    from many addresses, every worker ends up waiting for a slot and requests whose
    credentials were already checked (no scrypt) queue behind them. Refused at once, a flood
    costs the workers almost nothing beyond the `slots` checks running; the few checks of a
    normal start (each partner's first request after a restart) that collide are retried by
    the client after Retry-After.
    """

    def __init__(self, slots: int = MAX_CONCURRENT_CHECKS) -> None:
        self._slots = threading.BoundedSemaphore(slots)

    @contextmanager
    def check(self) -> Iterator[None]:
        if not self._slots.acquire(blocking=False):
            raise ChecksBusy
        try:
            yield
        finally:
            self._slots.release()
