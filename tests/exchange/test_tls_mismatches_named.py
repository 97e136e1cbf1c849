"""TLS and scheme mismatches are named, in the same words by push, pull and doctor: http:// to a
port that speaks TLS ("speaks TLS: use https://", exit 2), https:// to one that speaks plain
HTTP ("TLS handshake failed: the server speaks plain HTTP", exit 2), and a certificate that
does not verify ("certificate verify failed: ..." and the --ca-bundle fix, exit 7), none retried.

Before: "connection closed without an answer" after retries, "no answer in time" after waiting,
a raw Python repr with unbalanced parentheses, and doctor's fix "check DNS, firewall".

Through the CLI, against the real TAXII server and a TLS front end (tests/fault_proxy.py) in
front of it, on 127.0.0.1.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Agency
from tests.exchange.conftest import Exchange, write_iocs
from tests.fault_proxy import FaultProxy
from tests.tls_material import Pki, make_pki


@pytest.fixture
def tls_front(exchange: Exchange, tmp_path: Path) -> Iterator[tuple[FaultProxy, Pki]]:
    pki = make_pki(tmp_path / "pki")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    with FaultProxy(exchange.server.url, tls=context) as proxy:
        yield proxy, pki


def _said_everywhere(
    exchange: Exchange, tmp_path: Path, api_root: str, words: str, fix: str, code: int, timeout: str = "3"
) -> None:
    fr: Agency = exchange.fr
    exchange.wire(fr, exchange.india, api_root, retry_budget="30", timeout=timeout)
    for args in (
        ("push", str(write_iocs(tmp_path / "a.csv", 2)), "--to", "cert-in"),
        ("pull",),
    ):
        started = time.monotonic()
        result = fr.run(*args)
        assert result.exit_code == code, (args, result.stderr)
        line = result.stderr.splitlines()[-1]
        assert words in line and fix in line, (args, line)
        assert "SSLError" not in line and "still failing" not in line, (args, line)
        assert time.monotonic() - started < 20, args  # not retried for the 30 s budget
    doctor = fr.run("doctor", "--json")
    assert doctor.exit_code == code, doctor.stderr
    reachable = {c["name"]: c for c in doctor.json()["checks"]}["partner cert-in: reachable"]
    assert reachable["status"] == "fail" and words in reachable["detail"], reachable
    assert fix in reachable["fix"] and "DNS" not in reachable["fix"], reachable


def test_http_to_a_tls_port(exchange: Exchange, tls_front: tuple[FaultProxy, Pki], tmp_path: Path) -> None:
    proxy, _ = tls_front
    url = proxy.url.replace("https://", "http://") + "exchange/"
    _said_everywhere(exchange, tmp_path, url, "speaks TLS: use https://", "--api-root URL", 2)


def test_https_to_a_plain_http_port(exchange: Exchange, tmp_path: Path) -> None:
    url = exchange.server.url.replace("http://", "https://") + "/exchange/"
    words = "TLS handshake failed: the server speaks plain HTTP"
    # The handshake waits for the partner's timeout (the server waits for the end of a request
    # line): 1 s instead of 3, three times.
    _said_everywhere(exchange, tmp_path, url, words, "use http:// for this loopback server", 2, timeout="1")


def test_a_certificate_that_does_not_verify(
    exchange: Exchange, tls_front: tuple[FaultProxy, Pki], tmp_path: Path
) -> None:
    proxy, _ = tls_front
    words = "certificate verify failed: unable to get local issuer certificate"
    _said_everywhere(exchange, tmp_path, f"{proxy.url}exchange/", words, "--ca-bundle", 7)
