"""ServerProcess: the child-process server the tests, the demo and the benchmarks use."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cti_exchange.errors import NetworkError
from cti_exchange.server.runner import ServerProcess

from .conftest import TAXII, Exchange


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "State:\tZ" in state  # exited, waiting for a parent that is gone to reap it


def test_restart_keeps_the_port_and_sigterm_exits_cleanly(fresh_exchange: Exchange) -> None:
    server = fresh_exchange.server
    url, pid = server.url, server.pid
    assert url.startswith("http://127.0.0.1:")
    server.restart()
    assert server.url == url and server.pid != pid
    assert server.stop() == 0
    assert not server.running
    assert not list(fresh_exchange.data_dir.glob(".server-ready-*"))
    assert server.log_path.is_file()


def test_a_server_that_cannot_start_says_why(tmp_path: Path) -> None:
    with pytest.raises(NetworkError, match="no TAXII server database"):
        ServerProcess(tmp_path / "not-provisioned").start()


def test_the_server_stops_when_its_parent_is_killed(fresh_exchange: Exchange) -> None:
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from cti_exchange.server.runner import ServerProcess\n"
        "server = ServerProcess(Path(sys.argv[1])).start()\n"
        "print(server.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    fresh_exchange.server.stop()
    parent = subprocess.Popen(
        [sys.executable, "-c", script, str(fresh_exchange.data_dir)], stdout=subprocess.PIPE
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert not gone(child)
    finally:
        parent.send_signal(signal.SIGKILL)  # no atexit, no cleanup: only the pipe closes
        parent.wait()
    deadline = time.monotonic() + 15
    while not gone(child):
        if time.monotonic() > deadline:
            os.kill(child, signal.SIGKILL)
            pytest.fail("the server outlived its parent")
        time.sleep(0.05)


def test_discovery_over_plain_requests_has_the_taxii_media_type(fresh_exchange: Exchange) -> None:
    response = fresh_exchange.get(fresh_exchange.server.discovery_url, user="cert-in")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == TAXII
    assert response.json()["api_roots"] == ["/exchange/"]
