"""An API root URL that holds no TAXII 2.1 API root: a plain web server (`python -m http.server`
answering HTML), or a real TAXII server under a wrong path. pull, push, sync and doctor give the
same one-line diagnosis ("URL is not a TAXII 2.1 API root (it answered ...)"; check the
partner's api_root), exit 2 (settings to fix) at once, without retrying for the budget, and never
paste the web page into the message.

Before, `pull` exited 3 (authentication) blaming --read-collection with the raw HTML in the
line, and `doctor`/`push` retried for the whole budget and exited 7 blaming DNS and the firewall.

Through the CLI, against a real `http.server` and the real TAXII server on 127.0.0.1.
"""

from __future__ import annotations

import base64
import functools
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cti_exchange.server.provisioning import collection_id_for
from tests.conftest import Agency
from tests.exchange.conftest import Exchange, write_iocs


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def web_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A plain web server for a directory, as `python -m http.server` runs it: its URL and the
    directory it serves."""
    root = tmp_path / "www"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietFiles, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _point_at(agency: Agency, partner: str, api_root: str) -> None:
    # A retry budget long enough that retrying would show in the time taken.
    result = agency.run("partners", "set", partner, "--api-root", api_root, "--retry-budget", "30")
    assert result.exit_code == 0, result.stderr


def _runs(exchange: Exchange, tmp_path: Path) -> dict[str, tuple[Agency, tuple[str, ...]]]:
    csv = str(write_iocs(tmp_path / "a.csv", 2))
    return {
        "pull": (exchange.india, ("pull",)),
        "sync": (exchange.india, ("sync",)),
        "push": (exchange.india, ("push", csv, "--to", "cert-fr")),
        "doctor": (exchange.india, ("doctor",)),
    }


def _assert_not_an_api_root(exchange: Exchange, tmp_path: Path, url: str, answered: str) -> None:
    for name, (agency, args) in _runs(exchange, tmp_path).items():
        started = time.monotonic()
        result = agency.run(*args)
        took = time.monotonic() - started
        assert result.exit_code == 2, (name, result.stderr)
        line = result.stderr.splitlines()[-1]
        assert f"{url} is not a TAXII 2.1 API root (it answered {answered}" in line, (name, line)
        assert "api_root" in line and "--api-root URL" in line, (name, line)
        assert "--read-collection" not in line and "DNS" not in line, (name, line)
        assert "<" not in result.stderr and "still failing" not in line, (name, line)
        assert took < 15, (name, took)  # no retries for the 30 s budget


def test_a_plain_web_server_is_named_as_not_a_taxii_api_root(
    exchange: Exchange, web_server: tuple[str, Path], tmp_path: Path
) -> None:
    base, root = web_server
    url = f"{base}/exchange/"
    _point_at(exchange.india, "cert-fr", url)
    (root / "exchange").mkdir()  # an HTML directory listing, HTTP 200
    _assert_not_an_api_root(exchange, tmp_path, url, "HTTP 200, text/html")
    (root / "exchange").rmdir()  # the web server's HTML error page, HTTP 404
    _assert_not_an_api_root(exchange, tmp_path, url, 'HTTP 404, text/html;charset=utf-8: "Error response')


def test_a_wrong_path_on_a_real_taxii_server_is_the_api_root_not_the_collection(
    exchange: Exchange, tmp_path: Path
) -> None:
    url = exchange.server.url + "/wrong/"
    _point_at(exchange.india, "cert-fr", url)
    _assert_not_an_api_root(exchange, tmp_path, url, "HTTP 404, API root 'wrong' information not found")


def test_a_wrong_collection_under_the_right_api_root_still_names_the_collection(exchange: Exchange) -> None:
    """The API root is read before blaming it: where it answers, a 404 is the collection's."""
    wrong = collection_id_for("cert-de", "cert-in")
    result = exchange.india.run("partners", "set", "cert-fr", "--read-collection", wrong)
    assert result.exit_code == 0, result.stderr
    pulled = exchange.india.run("pull")
    assert pulled.exit_code == 3, pulled.stderr
    assert "--read-collection" in pulled.stderr and "API root" not in pulled.stderr


class _EchoingGateway(BaseHTTPRequestHandler):
    """A gateway's debug page, HTTP 200 in HTML, showing the request it was sent."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        shown = f"Authorization: {self.headers.get('Authorization')} Path: {self.path}"
        body = f"<html><body><h1>Gateway</h1><p>{shown}</p></body></html>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET


def test_a_page_echoing_our_authorization_header_is_quoted_without_it(
    exchange: Exchange, tmp_path: Path
) -> None:
    """The start of the page is quoted, our credentials in it redacted, as in every other
    server text we quote: it ends up on stderr, in cron mail and in doctor's JSON."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoingGateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/exchange/"
        _point_at(exchange.india, "cert-fr", url)
        password = exchange.passwords["cert-in"]
        basic = base64.b64encode(f"cert-in:{password}".encode()).decode()
        runs = _runs(exchange, tmp_path)
        runs["doctor"] = (exchange.india, ("doctor", "--json"))
        for name, (agency, args) in runs.items():
            result = agency.run(*args)
            assert result.exit_code == 2, (name, result.stderr)
            shown = result.stdout + result.stderr
            assert "is not a TAXII 2.1 API root" in shown, (name, shown)
            assert '"Gateway Authorization: Basic [redacted]' in shown.replace('\\"', '"'), (name, shown)
            assert basic not in shown and basic[:20] not in shown and password not in shown, (name, shown)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
