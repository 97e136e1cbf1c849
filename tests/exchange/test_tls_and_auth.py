"""TLS verification, a private CA, mutual TLS and bearer tokens, through a TLS front end (the
proxy of tests/fault_proxy.py) in front of the real server."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.exchange.conftest import Exchange, received_values, write_iocs
from tests.fault_proxy import FaultProxy
from tests.tls_material import Pki, make_pki


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


def _server_context(pki: Pki, *, require_client_cert: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(pki.ca_cert)
    return context


@pytest.fixture
def tls_front(exchange: Exchange, pki: Pki) -> Iterator[FaultProxy]:
    proxy = FaultProxy(exchange.server.url, tls=_server_context(pki, require_client_cert=False))
    with proxy:
        yield proxy


def test_tls_verification_is_on_and_a_private_ca_can_be_trusted(
    exchange: Exchange, tls_front: FaultProxy, pki: Pki, tmp_path: Path
) -> None:
    url = f"{tls_front.url}exchange/"
    exchange.wire(exchange.fr, exchange.india, url, retry_budget="0")
    refused = exchange.fr.run("push", str(write_iocs(tmp_path / "a.csv", 3)), "--to", "cert-in")
    assert refused.exit_code == 7
    assert refused.stderr.count("\n") == 1  # no traceback; the certificate is not trusted

    exchange.wire(exchange.fr, exchange.india, url, ca_bundle=str(pki.ca_cert))
    exchange.wire(exchange.india, exchange.fr, url, ca_bundle=str(pki.ca_cert))
    retried = exchange.fr.run("push", str(write_iocs(tmp_path / "a.csv", 3)), "--to", "cert-in")
    assert retried.exit_code == 0, retried.stderr
    assert exchange.india.run("pull").exit_code == 0
    assert len(received_values(exchange.india)) == 3


def test_mutual_tls(exchange: Exchange, pki: Pki, tmp_path: Path) -> None:
    proxy = FaultProxy(exchange.server.url, tls=_server_context(pki, require_client_cert=True))
    with proxy:
        url = f"{proxy.url}exchange/"
        exchange.wire(exchange.fr, exchange.india, url, ca_bundle=str(pki.ca_cert), retry_budget="0")
        without = exchange.fr.run("push", str(write_iocs(tmp_path / "a.csv", 2)), "--to", "cert-in")
        assert without.exit_code == 7
        exchange.wire(
            exchange.fr,
            exchange.india,
            url,
            ca_bundle=str(pki.ca_cert),
            client_cert=str(pki.client_cert),
            client_key=str(pki.client_key),
        )
        with_cert = exchange.fr.run("push", str(write_iocs(tmp_path / "a.csv", 2)), "--to", "cert-in")
        assert with_cert.exit_code == 0, with_cert.stderr


def test_bearer_token_from_environment(exchange: Exchange, tmp_path: Path) -> None:
    token = "bearer-token-for-the-gateway"
    gateway = FaultProxy(
        exchange.server.url, bearer=token, upstream_basic=("cert-fr", exchange.passwords["cert-fr"])
    )
    with gateway:
        exchange.fr.run(
            "partners",
            "set",
            "cert-in",
            "--api-root",
            f"{gateway.url}exchange/",
            "--auth",
            "bearer",
            "--secret-env",
            "CTI_TAXII_TOKEN",
        )
        (exchange.fr.home / "taxii.secret").unlink()  # only the environment holds the token now
        missing = exchange.fr.run("push", str(write_iocs(tmp_path / "a.csv", 2)), "--to", "cert-in")
        assert missing.exit_code == 2 and missing.stderr.count("\n") == 1
        wrong = exchange.fr.run(
            "push",
            str(write_iocs(tmp_path / "b.csv", 2)),
            "--to",
            "cert-in",
            env={"CTI_TAXII_TOKEN": "wrong"},
        )
        assert wrong.exit_code == 3
        right = exchange.fr.run(
            "push",
            str(write_iocs(tmp_path / "c.csv", 2)),
            "--to",
            "cert-in",
            env={"CTI_TAXII_TOKEN": token},
        )
        assert right.exit_code == 0, right.stderr
        assert token not in right.stdout + right.stderr


def test_secret_file_must_be_private(exchange: Exchange, tmp_path: Path) -> None:
    (exchange.fr.home / "taxii.secret").chmod(0o644)
    result = exchange.fr.run("push", str(write_iocs(tmp_path / "a.csv", 2)), "--to", "cert-in")
    assert result.exit_code == 2 and "chmod 600" in result.stderr
