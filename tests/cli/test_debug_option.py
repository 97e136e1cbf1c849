"""`--debug` and CTI_EXCHANGE_DEBUG: Python tracebacks only when asked for."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import Agency


def test_debug_as_an_options_value_shows_no_traceback(cert_in: Agency) -> None:
    """`--debug` switches tracebacks on before the command name only: a note reading
    "--debug" is the note's text (scripts-and-cron walkthrough, stop 28: it printed one)."""
    env = {**os.environ, "CTI_EXCHANGE_HOME": str(cert_in.home), "CTI_EXCHANGE_ANALYST": "a"}
    env.pop("CTI_EXCHANGE_DEBUG", None)
    command = [sys.executable, "-m", "cti_exchange", "triage", "accept", "nosuch-xyz", "--note", "--debug"]
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    asked = [*command[:3], "--home", str(cert_in.home), "--debug", *command[3:]]
    debugged = subprocess.run(asked, capture_output=True, text=True, env=env)
    assert debugged.returncode == 2 and "Traceback" in debugged.stderr
