"""A crash while the keys are unlocked must not leave them (and the passphrase, and partners'
TAXII secrets) in a core file: the command sets its core size to 0 and, on Linux, makes
itself not dumpable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Agency
from tests.exchange.serve_process import start_on_port_zero


def test_a_running_command_can_write_no_core_file(partnered: tuple[Agency, Agency]) -> None:
    server, _ = start_on_port_zero(partnered[1])  # the real entry point, running
    try:
        limits = Path(f"/proc/{server.pid}/limits").read_text()
    finally:
        server.terminate()
        server.wait(timeout=30)
    core = next(line for line in limits.splitlines() if line.startswith("Max core file size"))
    assert core.split()[4:6] == ["0", "0"], core


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
def test_the_entry_point_makes_the_process_not_dumpable() -> None:
    probe = (
        "import ctypes; from cti_exchange.cli.entry import _no_core_dumps; "
        "libc = ctypes.CDLL(None); before = libc.prctl(3, 0, 0, 0, 0); _no_core_dumps(); "
        "print(before, libc.prctl(3, 0, 0, 0, 0))"  # PR_GET_DUMPABLE
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["1", "0"]
