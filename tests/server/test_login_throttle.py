"""Failed-login throttling: ten wrong passwords for one account from one address, then 429
with Retry-After until the window passes; other accounts and a success are unaffected."""

from __future__ import annotations

from pathlib import Path

import requests

from cti_exchange.server.login_throttle import LoginThrottle
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
        throttle.failed(("203.0.113.9", f"user{n}"))
        assert len(throttle) <= 100
    assert throttle.retry_after(("203.0.113.9", "user9999")) is None  # one failure: not locked


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
