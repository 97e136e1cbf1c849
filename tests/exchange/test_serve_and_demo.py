"""`cti-exchange serve` provisions from the profile; `cti-exchange demo` runs the whole exchange."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time

import requests

from tests.conftest import PASSPHRASE, Agency, run_cli

TAXII = "application/taxii+json;version=2.1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_demo_delivers_every_indicator_verified() -> None:
    result = run_cli("demo", "--json")
    assert result.exit_code == 0, result.stderr
    summary = result.json()
    assert summary["all_arrived"] and summary["sent"] == summary["received"] == 16
    assert {i["ioc_type"] for i in summary["indicators"]} == {
        "ipv4-addr",
        "domain-name",
        "url",
        "sha256",
    }


def test_serve_provisions_accounts_from_the_profile(partnered: tuple[Agency, Agency]) -> None:
    cert_fr, _ = partnered
    port = _free_port()
    env = {**os.environ, "CTI_EXCHANGE_PASSPHRASE": PASSPHRASE}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cti_exchange",
            "--home",
            str(cert_fr.home),
            "serve",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert server.stderr is not None  # stderr=PIPE
        credentials = cert_fr.home / "taxii-server" / "credentials"
        url = f"http://127.0.0.1:{port}/exchange/"
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(url, headers={"Accept": TAXII}, timeout=2).status_code == 401:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, (
                server.stderr.read().decode() if server.poll() is not None else "no answer"
            )
            time.sleep(0.2)
        for agency in ("cert-fr", "cert-in"):
            secret = credentials / f"{agency}.secret"
            assert stat.S_IMODE(secret.stat().st_mode) == 0o600
            password = secret.read_text().strip()
            ok = requests.get(url, auth=(agency, password), headers={"Accept": TAXII}, timeout=5)
            assert ok.status_code == 200, ok.text
            listed = requests.get(
                f"{url}collections/", auth=(agency, password), headers={"Accept": TAXII}, timeout=5
            ).json()["collections"]
            assert len(listed) == 2  # its inbound (read) and outbound (write) collection
        config = (cert_fr.home / "taxii-server").glob("*.json")
        assert not any(password in p.read_text() for p in config)  # only hashes are stored
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def test_serve_refuses_a_public_address_without_consent(partnered: tuple[Agency, Agency]) -> None:
    cert_fr, _ = partnered
    result = cert_fr.run("serve", "--host", "0.0.0.0", "--port", str(_free_port()))
    assert result.exit_code == 2 and "0.0.0.0" in result.stderr
