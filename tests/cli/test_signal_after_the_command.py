"""SIGTERM or Ctrl-C once the command has ended (its output written, its exit code decided)
changes nothing: the process exits with the command's own code, without a word
(cli/entry.py, `CtiGroup.invoke`).

Before, a signal in the last ~150 ms, while Python shut down, ended a finished command by the
signal itself (-15, -2: what a shell shows as 143 or 130, "interrupted"), with nothing on
stderr; one while atexit callbacks ran printed a traceback (crash walkthrough, D3). The
process sends the signal to itself at those two moments, so the test does not depend on the
machine's speed: from an atexit callback, and from an object torn down with a module, after
Python has put the default handlers back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import PASSPHRASE, Agency

_SIGNALLED_AFTER_THE_COMMAND = """
import atexit, os, signal, sys, time
def send():
    os.kill(os.getpid(), signal.{signal})
    time.sleep(0.2)  # delivered at once to ourselves; a handler would run in here
if "{moment}" == "atexit":
    atexit.register(send)
else:
    class TornDownLast:
        def __del__(self):
            send()
    import cti_exchange.cli.entry as entry
    entry._torn_down_last = TornDownLast()  # cleared with the module, late in the shutdown
from cti_exchange.cli.entry import main
sys.argv = ["cti-exchange", *{args!r}]
main()
"""


def _run(agency: Agency, signum: signal.Signals, moment: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CTI_EXCHANGE_HOME": str(agency.home), "CTI_EXCHANGE_PASSPHRASE": PASSPHRASE}
    env.pop("CTI_EXCHANGE_FAILPOINT", None)
    return subprocess.run(
        [
            sys.executable,
            "-c",
            _SIGNALLED_AFTER_THE_COMMAND.format(signal=signum.name, moment=moment, args=args),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        # As at a terminal: SIGINT and SIGTERM at their defaults, whatever the test runner has.
        preexec_fn=lambda: [signal.signal(s, signal.SIG_DFL) for s in (signal.SIGINT, signal.SIGTERM)],
    )


@pytest.mark.parametrize("moment", ["atexit", "shutdown"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_after_a_finished_command_leaves_its_exit_code(
    cert_in: Agency, signum: signal.Signals, moment: str
) -> None:
    result = _run(cert_in, signum, moment, "status", "--json")
    assert result.returncode == 0, (result.returncode, result.stderr)
    assert result.stderr == ""
    assert "last_pull" in json.loads(result.stdout)  # the whole output


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_after_a_failed_command_leaves_its_exit_code_and_line(
    cert_in: Agency, signum: signal.Signals
) -> None:
    result = _run(
        cert_in, signum, "shutdown", "triage", "show", "indicator--00000000-0000-4000-8000-000000000000"
    )
    assert result.returncode not in (0, 130, 143, -signum), (result.returncode, result.stderr)
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("cti-exchange: error: ")
