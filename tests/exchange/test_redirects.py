"""A partner's TAXII server (or whoever sits on a plain-HTTP loopback link) answering with a
redirect: the client does not follow it, says where it pointed, and does not retry it.

Both servers here are real `http.server`s on 127.0.0.1, started and stopped by each test."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import Agency
from tests.exchange.conftest import write_iocs


@dataclass
class Recorded:
    method: str
    path: str
    authorization: str | None
    body: bytes


@dataclass
class LoopbackServer:
    """Answers every request with `status` and `location`, and keeps what it was sent."""

    status: int
    location: str | None = None
    # As real servers send a redirect (nginx, Apache, load balancers): an HTML page.
    content_type: str = "application/taxii+json;version=2.1"
    payload: bytes = b'{"title":"moved"}'
    seen: list[Recorded] = field(default_factory=list)

    def __post_init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                owner.seen.append(Recorded(self.command, self.path, self.headers.get("Authorization"), body))
                self.send_response(owner.status)
                if owner.location is not None:
                    self.send_header("Location", owner.location.replace("{path}", self.path))
                self.send_header("Content-Type", owner.content_type)
                self.send_header("Content-Length", str(len(owner.payload)))
                self.end_headers()
                self.wfile.write(owner.payload)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture
def sink() -> Iterator[LoopbackServer]:
    """Another host (loopback by name, so plain HTTP to it is allowed) a redirect points at."""
    with LoopbackServer(200) as server:
        yield server


def _wire(agency: Agency, partner: str, api_root: str, tmp_path: Path, **extra: str) -> str:
    password = "taxii-password-of-cert-fr"
    secret = tmp_path / f"{agency.agency_id}.taxii.secret"
    secret.write_text(password)
    secret.chmod(0o600)
    args = ["partners", "set", partner, "--api-root", api_root, "--auth", "basic"]
    args += ["--username", agency.agency_id, "--secret-file", str(secret)]
    args += ["--read-collection", "8f0f5d2e-6c1a-4b5e-9d3f-2a7c1e4b6d01", "--timeout", "2"]
    args += ["--write-collection", "8f0f5d2e-6c1a-4b5e-9d3f-2a7c1e4b6d02"]
    for name, value in extra.items():
        args += [f"--{name.replace('_', '-')}", value]
    result = agency.run(*args)
    assert result.exit_code == 0, result.stderr
    return password


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_to_another_host_is_refused_not_followed_and_not_retried(
    partnered: tuple[Agency, Agency], sink: LoopbackServer, tmp_path: Path, status: int
) -> None:
    cert_fr, _ = partnered
    target = f"http://localhost:{sink.port}/elsewhere{{path}}"
    with LoopbackServer(status, target) as partner_server:
        password = _wire(cert_fr, "cert-in", f"{partner_server.url}exchange/", tmp_path, retry_budget="20")
        pushed = cert_fr.run("push", str(write_iocs(tmp_path / "a.csv", 2)), "--to", "cert-in")
    assert pushed.exit_code == 7, pushed.stderr
    assert pushed.stderr.count("\n") == 1 and "Traceback" not in pushed.stderr
    assert "cert-in" in pushed.stderr and f"HTTP {status}" in pushed.stderr
    assert f"http://localhost:{sink.port}/elsewhere/exchange/" in pushed.stderr
    assert "not followed" in pushed.stderr
    assert "`cti-exchange partners set cert-in --api-root URL`" in pushed.stderr  # not PARTNER
    assert password not in pushed.stdout + pushed.stderr
    assert sink.seen == []  # neither our credentials nor our envelopes went there
    assert len(partner_server.seen) == 1  # and a refused redirect is not tried again


def test_a_redirect_to_plain_http_elsewhere_is_refused_on_pull(
    partnered: tuple[Agency, Agency], tmp_path: Path
) -> None:
    """203.0.113.0/24 is TEST-NET-3: were the redirect followed, the pull would time out there."""
    cert_fr, _ = partnered
    location = "http://user:pw@203.0.113.9/taxii/?token=abc123"
    with LoopbackServer(302, location) as partner_server:
        _wire(cert_fr, "cert-in", f"{partner_server.url}exchange/", tmp_path, retry_budget="0")
        pulled = cert_fr.run("pull")
    assert pulled.exit_code != 0
    assert "cert-in" in pulled.stderr and "http://203.0.113.9/taxii/?..." in pulled.stderr
    assert "abc123" not in pulled.stderr and "pw@" not in pulled.stderr
    assert [r.method for r in partner_server.seen] == ["GET"]


def test_the_doctor_names_a_redirecting_server(partnered: tuple[Agency, Agency], tmp_path: Path) -> None:
    cert_fr, _ = partnered
    with LoopbackServer(308, "https://taxii.example.net/exchange/") as partner_server:
        _wire(cert_fr, "cert-in", f"{partner_server.url}exchange/", tmp_path)
        report = cert_fr.run("doctor", "--json")
    assert report.exit_code == 7, report.stderr
    checks = {c["name"]: c for c in report.json()["checks"]}
    reachable = checks["partner cert-in: reachable"]
    assert reachable["status"] == "fail"
    assert "https://taxii.example.net/exchange/" in reachable["detail"]
    assert len(partner_server.seen) == 1


NGINX_301 = (
    b"<html>\r\n<head><title>301 Moved Permanently</title></head>\r\n<body>\r\n"
    b"<center><h1>301 Moved Permanently</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


@pytest.mark.parametrize("command", ["pull", "push", "doctor"])
def test_a_redirect_sent_as_an_html_page_still_names_its_target(
    partnered: tuple[Agency, Agency], tmp_path: Path, command: str
) -> None:
    """nginx and Apache send a redirect as text/html: it is a redirect (exit 7, its target
    named), not "not a TAXII 2.1 API root" (exit 2), which drops where the server points."""
    cert_fr, _ = partnered
    target = "https://taxii.example.net/exchange/"
    args = {"pull": ("pull",), "push": ("push", str(write_iocs(tmp_path / "a.csv", 2)), "--to", "cert-in")}
    with LoopbackServer(301, target, content_type="text/html", payload=NGINX_301) as partner_server:
        _wire(cert_fr, "cert-in", f"{partner_server.url}exchange/", tmp_path, retry_budget="20")
        result = cert_fr.run(*args.get(command, ("doctor", "--json")))
    assert result.exit_code == 7, result.stderr
    said = result.stderr if command != "doctor" else result.json()["checks"]
    shown = str(said)
    assert f"redirected (HTTP 301) to {target}" in shown and "not followed" in shown, shown
    assert "not a TAXII 2.1 API root" not in shown and "nginx" not in shown, shown
    assert len(partner_server.seen) == 1
