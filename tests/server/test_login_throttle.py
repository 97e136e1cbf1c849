"""Failed-login throttling: ten wrong passwords for one account from one address, or thirty
for any user names, then 429 with Retry-After until the window passes; other accounts and a
success are unaffected; concurrent guesses do not get past the limit."""

from __future__ import annotations

import collections
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from cti_exchange.server.login_throttle import ChecksBusy, CheckSlots, LoginThrottle, Throttled
from tests.conftest import run_cli

from .conftest import TAXII, Exchange, start_exchange


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


KEY = ("192.0.2.7", "cert-fr")


def test_the_pair_is_refused_after_max_failures_until_the_oldest_leaves_the_window() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(max_failures=3, window_seconds=60, clock=clock)
    for _ in range(3):
        assert throttle.retry_after(KEY) is None
        throttle.failed(KEY)
        clock.now += 10
    # failures at 1000, 1010, 1020; now 1030: the first leaves the window at 1060
    assert throttle.retry_after(KEY) == 30
    assert throttle.retry_after(("192.0.2.7", "cert-in")) is None  # another account
    assert throttle.retry_after(("198.51.100.1", "cert-fr")) is None  # another address
    clock.now = 1060
    assert throttle.retry_after(KEY) is None  # two failures left in the window
    throttle.failed(KEY)
    assert throttle.retry_after(KEY) == 10  # the 1010 failure leaves at 1070


def test_a_success_clears_the_pair() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(max_failures=3, window_seconds=60, clock=clock)
    for _ in range(2):
        throttle.failed(KEY)
    throttle.succeeded(KEY)
    throttle.failed(KEY)
    throttle.failed(KEY)
    assert throttle.retry_after(KEY) is None


def test_memory_stays_bounded_under_a_flood_of_new_pairs() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(max_failures=3, window_seconds=60, max_tracked=100, clock=clock)
    for n in range(10_000):
        clock.now += 0.001
        throttle.failed((f"203.0.{n // 256}.{n % 256}", f"user{n}"))
        assert len(throttle) <= 100 and throttle.addresses_tracked <= 100
    assert throttle.retry_after(("203.0.39.15", "user9999")) is None  # one failure: not locked


def test_an_address_is_refused_after_max_failures_across_all_usernames() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(max_failures=3, max_failures_per_address=5, window_seconds=60, clock=clock)
    for n in range(5):
        throttle.reserve(("192.0.2.7", f"invented-{n}"))
        clock.now += 1
    refused = throttle.refusal(("192.0.2.7", "cert-in"))  # any username, known or not
    assert refused is not None and refused.per_address and refused.wait == 55
    assert throttle.retry_after(("198.51.100.1", "invented-0")) is None  # another address
    clock.now = 1060  # the first failure left the window
    assert throttle.retry_after(("192.0.2.7", "cert-in")) is None


def test_an_attempt_is_counted_before_its_check_and_given_back_if_right() -> None:
    """Concurrent guesses each reserve a failure before their password is checked, so no more
    than max_failures of them are ever checked."""
    clock = FakeClock()
    throttle = LoginThrottle(max_failures=3, max_failures_per_address=5, window_seconds=60, clock=clock)
    reserved = [throttle.reserve(KEY) for _ in range(3)]  # three checks in flight at once
    with pytest.raises(Throttled) as refused:
        throttle.reserve(KEY)
    assert not refused.value.per_address
    # The last of them had the right password: the pair is cleared, and the address gets that
    # attempt back but keeps the two failures.
    throttle.succeeded(KEY, reserved[-1])
    for _ in range(3):
        throttle.reserve(("192.0.2.7", "cert-in"))
    with pytest.raises(Throttled) as refused:
        throttle.reserve(KEY)
    assert refused.value.per_address


def test_at_most_the_given_number_of_checks_run_at_once() -> None:
    slots = CheckSlots(slots=1)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with slots.check():
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        with pytest.raises(ChecksBusy), slots.check():
            pass
    finally:
        release.set()
        holder.join()
    with slots.check():  # free again
        pass


def test_the_server_answers_429_after_ten_wrong_passwords(fresh_exchange: Exchange) -> None:
    url = fresh_exchange.server.api_root_url
    wrong = ("cert-fr", "a wrong password, long enough")
    for _ in range(10):
        response = requests.get(url, auth=wrong, headers={"Accept": TAXII}, timeout=30)
        assert response.status_code == 401
    refused = requests.get(url, auth=wrong, headers={"Accept": TAXII}, timeout=30)
    assert refused.status_code == 429
    assert refused.headers["Content-Type"] == TAXII
    assert refused.json()["http_status"] == "429"
    assert 0 < int(refused.headers["Retry-After"]) <= 600
    # The right password is refused too while the pair is throttled: no guess gets through.
    right = ("cert-fr", fresh_exchange.passwords["cert-fr"])
    assert requests.get(url, auth=right, headers={"Accept": TAXII}, timeout=30).status_code == 429
    # Another account from the same address is not affected.
    other = ("cert-in", fresh_exchange.passwords["cert-in"])
    assert requests.get(url, auth=other, headers={"Accept": TAXII}, timeout=30).status_code == 200
    # Requests without credentials are 401, never counted (discovery probes, health checks).
    for _ in range(12):
        assert requests.get(url, headers={"Accept": TAXII}, timeout=30).status_code == 401


def _failures_then_refused(url: str, forwarded_for: str) -> None:
    wrong = ("cert-fr", "a wrong password, long enough")
    headers = {"Accept": TAXII, "X-Forwarded-For": forwarded_for}
    for _ in range(10):
        assert requests.get(url, auth=wrong, headers=headers, timeout=30).status_code == 401
    assert requests.get(url, auth=wrong, headers=headers, timeout=30).status_code == 429


def test_behind_a_trusted_proxy_clients_are_throttled_apart(tmp_path: Path) -> None:
    """`serve --trusted-proxy`: the test client plays the proxy on 127.0.0.1; a client
    guessing one account's password does not lock out the same account from another client."""
    running = start_exchange(tmp_path / "exchange", trusted_proxy="127.0.0.1")
    try:
        url = running.server.api_root_url
        _failures_then_refused(url, "203.0.113.5")
        right = ("cert-fr", running.passwords["cert-fr"])
        elsewhere = {"Accept": TAXII, "X-Forwarded-For": "198.51.100.8"}
        assert requests.get(url, auth=right, headers=elsewhere, timeout=30).status_code == 200
        # The proxy appends the client it saw; only that last hop counts, so a client cannot
        # escape its throttle by sending a forged X-Forwarded-For of its own.
        forged = {"Accept": TAXII, "X-Forwarded-For": "192.0.2.99, 203.0.113.5"}
        assert requests.get(url, auth=right, headers=forged, timeout=30).status_code == 429
    finally:
        running.close()
        running.server.stop()


def test_without_a_trusted_proxy_x_forwarded_for_is_ignored(fresh_exchange: Exchange) -> None:
    url = fresh_exchange.server.api_root_url
    _failures_then_refused(url, "203.0.113.5")
    right = ("cert-fr", fresh_exchange.passwords["cert-fr"])
    spoofed = {"Accept": TAXII, "X-Forwarded-For": "198.51.100.8"}
    assert requests.get(url, auth=right, headers=spoofed, timeout=30).status_code == 429


def test_a_trusted_proxy_must_be_an_address(tmp_path: Path) -> None:
    result = run_cli("serve", "--trusted-proxy", "proxy.example", home=tmp_path / "home")
    assert result.exit_code == 2
    assert "--trusted-proxy 'proxy.example' is not an IP address" in result.stderr
    assert not (tmp_path / "home" / "taxii-server").exists()


def test_concurrent_wrong_passwords_do_not_get_past_the_limit(fresh_exchange: Exchange) -> None:
    url = fresh_exchange.server.api_root_url

    def guess(n: int) -> int:
        wrong = ("cert-fr", f"a wrong password, long enough {n}")
        return requests.get(url, auth=wrong, headers={"Accept": TAXII}, timeout=60).status_code

    with ThreadPoolExecutor(40) as pool:
        codes = collections.Counter(pool.map(guess, range(40)))
    # At most ten were checked (401); the others were refused unchecked (429), or told to
    # come back (503) if they found no free check slot (counted as failures all the same).
    assert set(codes) <= {401, 429, 503}
    assert codes[401] <= 10 and codes[429] >= 20, codes
    right = ("cert-fr", fresh_exchange.passwords["cert-fr"])
    assert requests.get(url, auth=right, headers={"Accept": TAXII}, timeout=30).status_code == 429


def test_inventing_user_names_does_not_escape_the_throttle(tmp_path: Path) -> None:
    """Each unknown user name costs a full scrypt check against the decoy hash: an address gets
    thirty failures in the window, whatever the names, then 429 without any check."""
    running = start_exchange(tmp_path / "exchange", trusted_proxy="127.0.0.1")
    try:
        url = running.server.api_root_url
        guesser = {"Accept": TAXII, "X-Forwarded-For": "203.0.113.5"}
        for _ in range(30):
            invented = (secrets.token_hex(8), "any password at all")
            assert requests.get(url, auth=invented, headers=guesser, timeout=30).status_code == 401
        refused = requests.get(url, auth=(secrets.token_hex(8), "x" * 20), headers=guesser, timeout=30)
        assert refused.status_code == 429
        assert 0 < int(refused.headers["Retry-After"]) <= 600
        assert "from this address" in refused.json()["description"]
        # The whole address is refused, a real account included; another client is not.
        right = ("cert-in", running.passwords["cert-in"])
        assert requests.get(url, auth=right, headers=guesser, timeout=30).status_code == 429
        elsewhere = {"Accept": TAXII, "X-Forwarded-For": "198.51.100.8"}
        assert requests.get(url, auth=right, headers=elsewhere, timeout=30).status_code == 200
    finally:
        running.close()
        running.server.stop()
