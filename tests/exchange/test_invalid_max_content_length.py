"""A TAXII server whose API root announces an invalid `max_content_length` (-1, 0, a string, a
float, more than JSON counts exactly): the API root's answer is invalid, and push and doctor
say so, exit 7 (the server is failing; the URL is right), the envelopes kept in the outbox and
posted once the server is mended.

Before, -1 was trusted: push failed with "3,907 bytes, more than cert-fr's server accepts (-1)"
and exit 1, and sealing again to fit -1 bytes was tried.

Through the CLI, against the real TAXII server behind tests/fault_proxy.py rewriting its API
root answer, on 127.0.0.1.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.exchange.conftest import Exchange, received_values, write_iocs
from tests.fault_proxy import FaultProxy, Headers


def _announce(proxy: FaultProxy, value: object) -> None:
    def rewrite(
        method: str, path: str, status: int, headers: Headers, body: bytes
    ) -> tuple[int, Headers, bytes]:
        if method != "GET" or path.rstrip("/") != "/exchange" or status != 200:
            return status, headers, body
        answer = {**json.loads(body), "max_content_length": value}
        kept = [(k, v) for k, v in headers if k.lower() not in ("content-length", "content-encoding")]
        return status, kept, json.dumps(answer).encode()

    proxy.script.rewrite = rewrite


@pytest.mark.parametrize(
    ("value", "shown"),
    [(-1, "-1"), (0, "0"), ("lots", "'lots'"), (1048576.5, "1048576.5"), (2**60, str(2**60))],
    ids=["minus-one", "zero", "string", "float", "beyond-json-integers"],
)
def test_an_invalid_max_content_length_is_an_invalid_api_root_answer(
    exchange: Exchange, fault_proxy: FaultProxy, tmp_path: Path, value: object, shown: str
) -> None:
    fr = exchange.fr
    _announce(fault_proxy, value)
    pushed = fr.run("push", str(write_iocs(tmp_path / "a.csv", 3)), "--to", "cert-in")
    assert pushed.exit_code == 7, pushed.stderr
    line = pushed.stderr.splitlines()[-1]
    assert f"the server's API root is invalid (max_content_length {shown}, not a positive" in line, line
    assert "tell the server's operator" in line and "more than" not in line, line

    doctor = fr.run("doctor", "--json")
    assert doctor.exit_code == 7, doctor.stderr
    reachable = {c["name"]: c for c in doctor.json()["checks"]}["partner cert-in: reachable"]
    assert reachable["status"] == "fail" and f"max_content_length {shown}" in reachable["detail"]
    assert "tell the server's operator" in reachable["fix"] and "DNS" not in reachable["fix"]

    fault_proxy.script.rewrite = None  # the server mended: what waited is posted
    synced = fr.run("sync")
    assert synced.exit_code == 0, synced.stderr
    pulled = exchange.india.run("pull")
    assert pulled.exit_code == 0, pulled.stderr
    assert len(received_values(exchange.india)) == 3
