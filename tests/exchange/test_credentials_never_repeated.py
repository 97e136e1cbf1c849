"""Our TAXII credentials never leave in what we print, log or record, even when a server (a
misconfigured gateway, or a hostile one) quotes them back in an error, and never go to a proxy
from the environment over plain HTTP."""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import quote

import pytest

from tests.conftest import Agency
from tests.exchange.conftest import Exchange, write_iocs
from tests.fault_proxy import FaultProxy, Headers


def _forms(agency: Agency, exchange: Exchange) -> list[str]:
    secret = exchange.passwords[agency.agency_id]
    basic = base64.b64encode(f"{agency.agency_id}:{secret}".encode()).decode()
    return [secret, basic, quote(secret, safe="")]


def _quoting(forms: list[str], status: int) -> object:
    def rewrite(
        method: str, path: str, code: int, headers: Headers, body: bytes
    ) -> tuple[int, Headers, bytes]:
        if "/collections/" not in path:
            return code, headers, body
        text = json.dumps(
            {
                "title": "refused",
                "description": f"Authorization: Basic {forms[1]} ({forms[0]}, {forms[2]}) refused",
            }
        ).encode()
        kept = [(k, v) for k, v in headers if k.lower() not in ("content-length", "content-encoding")]
        return status, [*kept, ("Content-Length", str(len(text)))], text

    return rewrite


def _everything_said(agency: Agency) -> str:
    conn = sqlite3.connect(agency.home / "store.sqlite")
    try:
        audit = " ".join(str(row[0]) for row in conn.execute("SELECT details FROM audit_log"))
    finally:
        conn.close()
    log = agency.home / "logs" / "cti-exchange.log"
    return audit + (log.read_text() if log.exists() else "")


@pytest.mark.parametrize("status", [403, 400])
def test_a_server_quoting_our_credentials_in_an_error_is_not_repeated(
    exchange: Exchange, fault_proxy: FaultProxy, tmp_path: Path, status: int
) -> None:
    india = exchange.india
    forms = _forms(india, exchange)
    fault_proxy.script.rewrite = _quoting(forms, status)  # type: ignore[assignment]
    said = []
    for command in (
        ("pull",),
        ("sync", "--json"),
        ("doctor",),
        ("push", str(write_iocs(tmp_path / "a.csv", 2)), "--to", "cert-fr"),
    ):
        result = india.run(*command)
        # A refusal, each check run to its end (exit 70 was doctor failing before it quoted).
        assert result.exit_code not in (0, 70), (command, result.stderr)
        assert "[redacted]" in result.stdout + result.stderr, command  # the server text is quoted
        said.append(result.stdout + result.stderr)
    everything = "\n".join(said) + _everything_said(india)
    for form in forms:
        assert form not in everything


class _CapturingProxy(BaseHTTPRequestHandler):
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        _CapturingProxy.seen.append(self.headers.get("Authorization", ""))
        self.send_response(502)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def capturing_proxy() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CapturingProxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_plain_http_to_loopback_ignores_a_proxy_from_the_environment(
    exchange: Exchange, capturing_proxy: str
) -> None:
    _CapturingProxy.seen.clear()
    env = {name: capturing_proxy for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY")}
    env |= {"no_proxy": "", "NO_PROXY": ""}
    pulled = exchange.india.run("pull", env=env)
    assert pulled.exit_code == 0, pulled.stderr
    assert _CapturingProxy.seen == []
