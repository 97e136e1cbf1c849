"""Ctrl-C or SIGTERM while the command is still importing its libraries (the first half second)
ends as during the command: one line, exit 130 or 143, no traceback.

Before, Ctrl-C there printed a KeyboardInterrupt traceback, and SIGTERM ended the process by
the signal without a word. The signal is sent by the process itself when it starts importing
`cti_exchange.cli.app`, so the test does not depend on the machine's speed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

_SIGNALLED_WHILE_IMPORTING = """
import builtins, os, signal, sys
real_import = builtins.__import__
def importing(name, *args, **kwargs):
    if name == "cti_exchange.cli.app":
        builtins.__import__ = real_import
        os.kill(os.getpid(), signal.{signal})
    return real_import(name, *args, **kwargs)
builtins.__import__ = importing
from cti_exchange.cli.entry import main
sys.argv = ["cti-exchange", "status"]
main()
"""


@pytest.mark.parametrize(
    ("signum", "code", "line"),
    [
        (
            signal.SIGINT,
            130,
            "cti-exchange: interrupted (SIGINT) outside the command's work; nothing was left half done\n",
        ),
        (
            signal.SIGTERM,
            143,
            "cti-exchange: terminated (SIGTERM) outside the command's work; nothing was left half done\n",
        ),
    ],
)
def test_a_signal_while_importing_ends_with_one_line(
    tmp_path: Path, signum: signal.Signals, code: int, line: str
) -> None:
    env = {**os.environ, "CTI_EXCHANGE_HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [sys.executable, "-c", _SIGNALLED_WHILE_IMPORTING.format(signal=signum.name)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        # As at a terminal: SIGINT and SIGTERM at their defaults, whatever the test runner has.
        preexec_fn=lambda: [signal.signal(s, signal.SIG_DFL) for s in (signal.SIGINT, signal.SIGTERM)],
    )
    assert result.returncode == code, result.stderr
    assert result.stderr == line
    assert result.stdout == ""


def test_a_sigterm_the_parent_ignores_stays_ignored(tmp_path: Path) -> None:
    """A parent that ignores SIGTERM means it: the command is not stopped by one."""
    env = {**os.environ, "CTI_EXCHANGE_HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [sys.executable, "-c", _SIGNALLED_WHILE_IMPORTING.format(signal="SIGTERM")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_IGN),
    )
    assert result.returncode == 2, result.stderr  # the command ran: no profile in that home
    assert "no agency profile" in result.stderr
