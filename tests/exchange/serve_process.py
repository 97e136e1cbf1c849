"""`cti-exchange serve` in a child process, for the tests of the command itself: bound to
127.0.0.1 on a free port, waited for until it answers, stopped with SIGTERM by the test."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import requests

from tests.conftest import PASSPHRASE, Agency

TAXII = "application/taxii+json;version=2.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_port_url() -> str:
    """An api_root on loopback where nothing listens: a partner's server that is down."""
    return f"http://127.0.0.1:{free_port()}/exchange/"


def serve_command(agency: Agency, *options: str) -> list[str]:
    return [sys.executable, "-m", "cti_exchange", "--home", str(agency.home), "serve", *options]


def serve_env() -> dict[str, str]:
    return {**os.environ, "CTI_EXCHANGE_PASSPHRASE": PASSPHRASE}


@contextmanager
def serving(
    agency: Agency, *options: str, stderr: list[str] | None = None, port: int | None = None
) -> Iterator[str]:
    """`serve --port N` (a free port unless `port`) until it answers; yields the API root URL.
    What the server wrote on stderr is appended to `stderr` once it stopped, if given."""
    port = port or free_port()
    server = subprocess.Popen(
        serve_command(agency, "--port", str(port), *options),
        env=serve_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}/exchange/"
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(url, headers={"Accept": TAXII}, timeout=2).status_code == 401:
                    break
            except requests.ConnectionError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "the server did not answer"
            time.sleep(0.2)
        yield url
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=30)
        if stderr is not None:
            stderr.append(err.decode())


def start_on_port_zero(agency: Agency) -> tuple[subprocess.Popen[str], list[str]]:
    """`serve --port 0` started, and its stderr read up to the "Serving ..." line that names
    the port it bound (the lines read so far). The caller stops it."""
    server = subprocess.Popen(
        serve_command(agency, "--port", "0"),
        env=serve_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert server.stderr is not None  # stderr=PIPE
    lines: list[str] = []
    while not (lines and lines[-1].startswith("Serving")):
        line = server.stderr.readline()
        if not line:
            server.kill()
            server.wait()
            raise AssertionError("the server ended before it said where it listens:\n" + "".join(lines))
        lines.append(line)
    return server, lines
