"""What a client can make the server hold before it is authenticated, and what a page
weighs: idle connections do not take the server offline, an oversized body is refused from
its Content-Length without being received, a URL without its trailing slash is a TAXII 404
(no redirect), and a page of objects stops at max_content_length in bytes as served.

Real server on 127.0.0.1, raw sockets where the point is what the server does before a
request is complete."""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from cti_exchange.server.provisioning import DEFAULT_MAX_CONTENT_LENGTH, provision
from cti_exchange.server.runner import (
    BODY_SLACK_BYTES,
    CHANNEL_TIMEOUT_SECONDS,
    CONNECTION_LIMIT,
    waitress_settings,
)

from .conftest import AGENCIES, SANDBOX_ID, TAXII, Exchange, StixFactory, exchange_layout, start_exchange
from .test_errors import assert_taxii_error

IDLE_CONNECTIONS = 150  # over waitress's default connection_limit of 100


def _address(exchange: Exchange) -> tuple[str, int]:
    url = urlsplit(exchange.server.url)
    return url.hostname or "", url.port or 80


def test_waitress_limits_are_set_explicitly() -> None:
    settings = waitress_settings(DEFAULT_MAX_CONTENT_LENGTH)
    assert settings["connection_limit"] == CONNECTION_LIMIT >= 1000
    assert settings["channel_timeout"] == CHANNEL_TIMEOUT_SECONDS <= 30
    assert settings["asyncore_use_poll"] is True  # select() stops at descriptor 1023
    assert settings["max_request_body_size"] == DEFAULT_MAX_CONTENT_LENGTH + BODY_SLACK_BYTES


def test_idle_connections_do_not_take_the_server_offline(fresh_exchange: Exchange) -> None:
    """Connections whose headers never end used up waitress's 100 connections: later clients
    waited until the idle ones timed out (120 s)."""
    idle: list[socket.socket] = []
    try:
        for _ in range(IDLE_CONNECTIONS):
            sock = socket.create_connection(_address(fresh_exchange), timeout=10)
            sock.sendall(b"GET /taxii2/ HTTP/1.1\r\nHost: x\r\n")  # never finished
            idle.append(sock)
        response = requests.get(
            fresh_exchange.server.api_root_url,
            auth=("cert-fr", fresh_exchange.passwords["cert-fr"]),
            headers={"Accept": TAXII},
            timeout=20,
        )
        assert response.status_code == 200
    finally:
        for sock in idle:
            sock.close()


def test_a_body_over_the_limit_is_refused_from_its_content_length(fresh_exchange: Exchange) -> None:
    """Refused as soon as the headers arrive, before any of the body is received or stored
    (waitress spooled bodies up to twice max_content_length + 1 MiB before the app, and its
    401, saw them)."""
    declared = 2 * DEFAULT_MAX_CONTENT_LENGTH
    with socket.create_connection(_address(fresh_exchange), timeout=10) as sock:
        sock.sendall(
            f"POST /exchange/collections/{SANDBOX_ID}/objects/ HTTP/1.1\r\nHost: x\r\n"
            f"Content-Type: {TAXII}\r\nAccept: {TAXII}\r\nContent-Length: {declared}\r\n\r\n".encode()
        )
        answer = sock.recv(4096)  # no body sent: an answer now means it was not waited for
    assert answer.startswith(b"HTTP/1.1 413 "), answer


def test_a_url_without_its_trailing_slash_is_a_taxii_404_not_a_redirect(exchange: Exchange) -> None:
    root = exchange.server.url.rstrip("/")
    collection = exchange.collection_url(SANDBOX_ID).rstrip("/")
    for url in (f"{root}/taxii2", f"{root}/exchange", f"{collection}", f"{collection}/objects"):
        for user in (None, "cert-fr"):
            response = exchange._session(user).get(
                url, headers={"Accept": TAXII, "Host": "evil.example"}, allow_redirects=False, timeout=30
            )
            body = assert_taxii_error(response, 404)
            assert "Location" not in response.headers
            assert "end with '/'" in body["description"]
    # The URLs with their slash are served as before.
    assert exchange.get(f"{root}/taxii2/", user="cert-fr").status_code == 200


def test_a_page_of_objects_stops_at_max_content_length_in_bytes_as_served(
    tmp_path: Path, stix: StixFactory
) -> None:
    """Emoji are 4 bytes in UTF-8, one character in SQLite's length() and 12 bytes in
    Flask's default JSON (a \\uXXXX surrogate pair): pages were served up to 12 times larger
    than max_content_length. Now they are served in UTF-8 and cut by bytes."""
    budget = 64 * 1024
    running = start_exchange(tmp_path / "exchange", max_content_length=budget)
    try:
        url = running.collection_url(SANDBOX_ID) + "objects/"
        posted = [stix.indicator(description="\U0001f600" * 5000) for _ in range(5)]  # 20 KB each
        for obj in posted:
            body = json.dumps({"objects": [obj]}, ensure_ascii=False).encode()
            assert len(body) < budget
            assert running.post(url, body, user="cert-fr").status_code == 202

        pages: list[requests.Response] = []
        params: dict[str, Any] = {}
        while True:
            response = running.get(url, user="cert-fr", params=params)
            assert response.status_code == 200
            pages.append(response)
            page = response.json()
            if not page.get("more"):
                break
            params["next"] = page["next"]
        served = [o for page in pages for o in page.json()["objects"]]
        assert served == posted  # every object once, in order, as posted
        assert len(pages) == 2
        assert all(len(page.content) <= budget + 1024 for page in pages), [len(p.content) for p in pages]
        assert "\U0001f600".encode() in pages[0].content  # UTF-8, not \ud83d\ude00
    finally:
        running.close()
        running.server.stop()


def test_a_public_address_without_a_trusted_proxy_is_served_with_a_warning(tmp_path: Path) -> None:
    data_dir = tmp_path / "exchange"
    provision(data_dir, exchange_layout(), passwords={a: secrets.token_urlsafe(18) for a, _ in AGENCIES})
    ready = tmp_path / "ready.json"
    command = [sys.executable, "-m", "cti_exchange.server", "--data", str(data_dir), "--host", "0.0.0.0"]
    command += ["--allow-public", "--port", "0", "--ready-file", str(ready), "--stop-with-parent"]
    server = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not ready.exists() and server.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists()
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    assert "WARNING: serving plain HTTP on 0.0.0.0" in stderr
    assert "--trusted-proxy" in stderr
