"""TLS verification, a private CA, mutual TLS and bearer tokens, through a TLS front end (the
proxy of tests/fault_proxy.py) in front of the real server."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PASSPHRASE
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
        # With `auth = bearer` what we send is a token, not a username and secret.
        assert "check the partner's TAXII token" in wrong.stderr, wrong.stderr
        assert "username" not in wrong.stderr
        # A token copied with its line end, or with a character no HTTP header can carry: one
        # line naming the variable, not an internal error, and never the token itself.
        for unusable in (f"{token}\nX-Injected: 1", "tok\u00e9n-\u20ac"):
            refused = exchange.fr.run(
                "push",
                str(write_iocs(tmp_path / "u.csv", 2)),
                "--to",
                "cert-in",
                env={"CTI_TAXII_TOKEN": unusable},
            )
            assert refused.exit_code == 2 and refused.stderr.count("\n") == 1, refused.stderr
            assert "CTI_TAXII_TOKEN" in refused.stderr
            assert (
                token not in refused.stderr
                and "X-Injected" not in refused.stderr
                and "tok\u00e9n" not in refused.stderr
            )
        right = exchange.fr.run(
            "push",
            str(write_iocs(tmp_path / "c.csv", 2)),
            "--to",
            "cert-in",
            env={"CTI_TAXII_TOKEN": token + "\n"},  # a trailing line end is only trimmed
        )
        assert right.exit_code == 0, right.stderr
        assert token not in right.stdout + right.stderr


def test_secret_file_must_be_private(exchange: Exchange, tmp_path: Path) -> None:
    (exchange.fr.home / "taxii.secret").chmod(0o644)
    result = exchange.fr.run("push", str(write_iocs(tmp_path / "a.csv", 2)), "--to", "cert-in")
    assert result.exit_code == 2 and "chmod 600" in result.stderr


def test_a_hand_edited_partner_entry_never_sends_our_own_secrets(exchange: Exchange, tmp_path: Path) -> None:
    """config.toml edited to name our passphrase or a key file as the partner's secret: refused
    before any request, so the partner's server never sees it."""
    passphrase_file = tmp_path / "passphrase"
    passphrase_file.write_text(PASSPHRASE + "\n")
    passphrase_file.chmod(0o600)
    env = {"CTI_EXCHANGE_PASSPHRASE_FILE": str(passphrase_file)}
    recorder = FaultProxy(exchange.server.url)  # forwards everything, and lists what it saw
    with recorder:
        exchange.wire(exchange.fr, exchange.india, f"{recorder.url}exchange/", retry_budget="0")
        config = exchange.fr.home / "config.toml"
        wired = config.read_text()
        secret_line = f'secret_file = "{exchange.fr.home / "taxii.secret"}"'
        assert secret_line in wired
        for edited, option in [
            ('secret_env = "CTI_EXCHANGE_PASSPHRASE"', "secret_env"),
            ('secret_file = "keys/private.jwe"', "secret_file"),
            (f'secret_file = "{exchange.fr.home}/keys/../keys/public.json"', "secret_file"),
            (f'secret_file = "{passphrase_file}"', "secret_file"),
        ]:
            config.write_text(wired.replace(secret_line, edited))
            pushed = exchange.fr.run(
                "push", str(write_iocs(tmp_path / "a.csv", 2)), "--to", "cert-in", env=env
            )
            assert pushed.exit_code == 2, (edited, pushed.stderr)
            assert pushed.stderr.count("\n") == 1 and "partner cert-in" in pushed.stderr
            assert f"{option} " in pushed.stderr and "config.toml" in pushed.stderr
            assert PASSPHRASE not in pushed.stdout + pushed.stderr
        assert recorder.script.seen == []  # not one request carried them
        config.write_text(wired)
        fixed = exchange.fr.run("push", str(write_iocs(tmp_path / "b.csv", 2)), "--to", "cert-in", env=env)
        assert fixed.exit_code == 0, fixed.stderr


def test_a_missing_ca_bundle_or_client_certificate_is_a_configuration_error(
    exchange: Exchange, tls_front: FaultProxy, pki: Pki, tmp_path: Path
) -> None:
    url = f"{tls_front.url}exchange/"
    missing = tmp_path / "no-such-ca.pem"
    exchange.wire(exchange.fr, exchange.india, url, ca_bundle=str(missing), retry_budget="0")
    no_ca = exchange.fr.run("push", str(write_iocs(tmp_path / "a.csv", 2)), "--to", "cert-in")
    assert no_ca.exit_code == 2, no_ca.stderr  # not 70, an internal error
    assert no_ca.stderr.count("\n") == 1
    assert "partner cert-in" in no_ca.stderr and "--ca-bundle" in no_ca.stderr
    assert str(missing) in no_ca.stderr

    exchange.wire(
        exchange.fr, exchange.india, url, ca_bundle=str(pki.ca_cert), client_cert=str(tmp_path / "no.crt")
    )
    no_cert = exchange.fr.run("push", str(write_iocs(tmp_path / "b.csv", 2)), "--to", "cert-in")
    assert no_cert.exit_code == 2 and "--client-cert" in no_cert.stderr and "no.crt" in no_cert.stderr

    exchange.wire(
        exchange.fr,
        exchange.india,
        url,
        client_cert=str(pki.client_cert),
        client_key=str(tmp_path / "no.key"),
    )
    no_key = exchange.fr.run("push", str(write_iocs(tmp_path / "c.csv", 2)), "--to", "cert-in")
    assert no_key.exit_code == 2 and "client key" in no_key.stderr and "no.key" in no_key.stderr
    assert no_key.stderr.count("\n") == 1


def test_the_client_private_key_must_be_private(exchange: Exchange, pki: Pki, tmp_path: Path) -> None:
    proxy = FaultProxy(exchange.server.url, tls=_server_context(pki, require_client_cert=True))
    with proxy:
        url = f"{proxy.url}exchange/"
        exchange.wire(
            exchange.fr,
            exchange.india,
            url,
            ca_bundle=str(pki.ca_cert),
            client_cert=str(pki.client_cert),
            client_key=str(pki.client_key),
        )
        pki.client_key.chmod(0o644)
        loose = exchange.fr.run("push", str(write_iocs(tmp_path / "a.csv", 2)), "--to", "cert-in")
        assert loose.exit_code == 2 and loose.stderr.count("\n") == 1
        assert "client key" in loose.stderr and "chmod 600" in loose.stderr
        assert proxy.script.seen == []
        pki.client_key.chmod(0o600)
        private = exchange.fr.run("push", str(write_iocs(tmp_path / "b.csv", 2)), "--to", "cert-in")
        assert private.exit_code == 0, private.stderr


def test_a_client_certificate_holding_its_key_must_be_private(
    exchange: Exchange, pki: Pki, tmp_path: Path
) -> None:
    """Without --client-key, the --client-cert file holds the private key too (PEM, both)."""
    combined = tmp_path / "client-with-key.pem"
    combined.write_bytes(pki.client_cert.read_bytes() + pki.client_key.read_bytes())
    combined.chmod(0o644)
    proxy = FaultProxy(exchange.server.url, tls=_server_context(pki, require_client_cert=True))
    with proxy:
        url = f"{proxy.url}exchange/"
        exchange.wire(exchange.fr, exchange.india, url, ca_bundle=str(pki.ca_cert), client_cert=str(combined))
        loose = exchange.fr.run("push", str(write_iocs(tmp_path / "a.csv", 2)), "--to", "cert-in")
        assert loose.exit_code == 2 and "chmod 600" in loose.stderr and str(combined) in loose.stderr
        combined.chmod(0o600)
        private = exchange.fr.run("push", str(write_iocs(tmp_path / "b.csv", 2)), "--to", "cert-in")
        assert private.exit_code == 0, private.stderr
