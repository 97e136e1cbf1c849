"""SIGTERM (`systemctl stop`, `timeout`, systemd's TimeoutStartSec) takes the path of Ctrl-C:
the command unwinds (rollbacks, lock release), says `terminated (SIGTERM)` on stderr, exits 143,
`sync` logs its ending, and a run again loses and doubles nothing.

The end-to-end tests stop a real `cti-exchange sync` process while it waits on the real TAXII
server, held up by the fault proxy (tests/fault_proxy.py) in front of it.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NoReturn

import pytest

from cti_exchange.server.provisioning import collection_id_for
from tests.conftest import PASSPHRASE, Agency, CliResult, run_cli
from tests.exchange.conftest import Exchange, received_values, running_exchange, write_iocs
from tests.exchange.serve_process import start_on_port_zero
from tests.fault_proxy import FaultProxy

TERMINATED = "cti-exchange: terminated (SIGTERM)"
LOGGED = "sync ended: terminated by SIGTERM (exit 143)"


def _log_text(agency: Agency) -> str:
    log = agency.home / "logs" / "cti-exchange.log"
    return log.read_text() if log.exists() else ""


def _rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


class Hold:
    """A fault-proxy rule: the `nth` request matching `wanted` waits until released, then is
    forwarded (`fault` None: the server acts on it after its client is gone) or faulted."""

    def __init__(self, wanted: Any, nth: int, fault: str | None = None) -> None:
        self.wanted, self.nth, self.fault = wanted, nth, fault
        self.matched = 0
        self.held, self.release = threading.Event(), threading.Event()

    def __call__(self, method: str, path: str, number: int) -> str | None:
        if not self.wanted(method, path):
            return None
        self.matched += 1
        if self.matched != self.nth:
            return None
        self.held.set()
        self.release.wait(60)
        return self.fault


def _as_a_foreground_command() -> None:
    """In the child, before exec: Ctrl-C reaches the command as at a terminal. A process
    started with SIGINT ignored passes that on through exec, and Python then installs no
    KeyboardInterrupt handler: a test run launched in the background (`... &` from a script,
    where the shell ignores SIGINT for background jobs) made the Ctrl-C case fail, the sync
    ignoring the signal as such a shell intends."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextmanager
def _sync_process(agency: Agency, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`cti-exchange sync` in a process of its own (as cron or systemd runs it); killed on the
    way out if the test left it running."""
    env = {**os.environ, "CTI_EXCHANGE_PASSPHRASE": PASSPHRASE, "PYTHONUNBUFFERED": "1"}
    env.pop("CTI_EXCHANGE_FAILPOINT", None)
    with (tmp_path / "sync.out").open("wb") as out, (tmp_path / "sync.err").open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "cti_exchange", "--home", str(agency.home), "sync"],
            env=env,
            stdout=out,
            stderr=err,
            preexec_fn=_as_a_foreground_command,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def _terminate_when_held(
    process: subprocess.Popen[bytes],
    hold: Hold,
    tmp_path: Path,
    signum: signal.Signals = signal.SIGTERM,
    code: int = 143,
) -> str:
    """`signum` once the process waits on the held request; its exit code must be `code`."""
    deadline = time.monotonic() + 90
    while not hold.held.wait(0.2):
        assert process.poll() is None, (tmp_path / "sync.err").read_text()
        assert time.monotonic() < deadline, "the held request never came"
    time.sleep(0.3)  # well inside the blocking read (the partner's --timeout is 10 s)
    process.send_signal(signum)
    process.wait(timeout=60)
    stderr = (tmp_path / "sync.err").read_text()
    assert process.returncode == code, stderr
    return stderr


def _assert_terminated_cleanly(
    stderr: str, agency: Agency, said: str = TERMINATED, logged: str = LOGGED
) -> None:
    assert "Traceback" not in stderr, stderr
    assert stderr.splitlines()[-1].startswith(said), stderr
    assert stderr.count(said) == 1
    assert logged in _log_text(agency)


def _objects_path(method: str, path: str) -> bool:
    return "/objects/" in path and "/versions/" not in path


def test_sigterm_while_sync_posts_exits_143_logs_and_the_rerun_doubles_nothing(
    partnered: tuple[Agency, Agency], tmp_path: Path
) -> None:
    """The second envelope's POST is held; SIGTERM; the held POST then reaches the server after
    its client is gone (it never learnt it succeeded). The next sync posts what is left, and the
    partner gets every indicator once."""
    fr, india = partnered
    # About 5 KB per envelope of 4 indicators: one envelope per POST.
    with (
        running_exchange(tmp_path, fr, india, max_content_length=8192) as exchange,
        FaultProxy(exchange.server.url) as proxy,
    ):
        exchange.through(proxy)
        expected: set[str] = set()
        for n in range(3):
            iocs = write_iocs(tmp_path / f"q{n}.csv", 4, start=4 * n)
            expected |= {line.split(",")[0] for line in iocs.read_text().splitlines()[1:]}
            queued = fr.run("push", str(iocs), "--to", "cert-in", "--queue")
            assert queued.exit_code == 0, queued.stderr
        hold = Hold(lambda method, path: method == "POST" and _objects_path(method, path), nth=2)
        proxy.script.rule = hold
        try:
            with _sync_process(fr, tmp_path) as process:
                stderr = _terminate_when_held(process, hold, tmp_path)
        finally:
            hold.release.set()
        proxy.script.rule = None
        _assert_terminated_cleanly(stderr, fr)
        statuses = sorted(d["status"] for d in fr.run("sent", "--json").json())
        assert statuses == ["posted", "sealed", "sealed"]  # the first one went; none failed

        again = fr.run("sync")
        assert again.exit_code == 0, again.stderr
        assert india.run("sync").exit_code == 0
        assert fr.run("sync").exit_code == 0  # the receipts come back
        values = received_values(india)
        assert len(values) == len(set(values)) and set(values) == expected
        assert _rows(india.home / "store.sqlite", "SELECT reason FROM quarantine") == []
        assert [d["status"] for d in fr.run("sent", "--json").json()] == ["received"] * 3
        posts = [
            fault for method, path, fault in proxy.script.seen if method == "POST" and "/objects/" in path
        ]
        assert len(posts) >= 4  # the held POST was sent again by the rerun
        collection = collection_id_for("cert-fr", "cert-in")
        stored = _rows(
            exchange.server.data_dir / "taxii.sqlite3",
            f"SELECT COUNT(*), COUNT(DISTINCT object_id) FROM objects WHERE collection_id = '{collection}'",
        )
        assert stored[0][0] == stored[0][1] == 3  # each envelope held once


# (signal, exit code, the line on stderr, the line in the log): Ctrl-C is logged too.
ENDINGS = {
    "sigterm": (signal.SIGTERM, 143, TERMINATED, LOGGED),
    "ctrl-c": (
        signal.SIGINT,
        130,
        "cti-exchange: interrupted (SIGINT); what was committed stays, run the command again to resume",
        "sync ended: interrupted (exit 130)",
    ),
}


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_a_sync_stopped_while_pulling_exits_by_its_signal_logs_and_the_rerun_resumes(
    exchange: Exchange, fault_proxy: FaultProxy, tmp_path: Path, ending: str
) -> None:
    """A page at a time; the second page's GET is held (and then dropped); SIGTERM (or Ctrl-C).
    The next sync carries on from what the first one committed."""
    signum, code, said, logged = ENDINGS[ending]
    fr, india = exchange.fr, exchange.india
    expected: set[str] = set()
    for n in range(3):
        iocs = write_iocs(tmp_path / f"p{n}.csv", 4, start=4 * n)
        expected |= {line.split(",")[0] for line in iocs.read_text().splitlines()[1:]}
        pushed = fr.run("push", str(iocs), "--to", "cert-in")
        assert pushed.exit_code == 0, pushed.stderr
    exchange.wire(india, fr, f"{fault_proxy.url}exchange/", page_size="1")
    hold = Hold(lambda method, path: method == "GET" and _objects_path(method, path), nth=2, fault="reset")
    fault_proxy.script.rule = hold
    try:
        with _sync_process(india, tmp_path) as process:
            stderr = _terminate_when_held(process, hold, tmp_path, signum, code)
    finally:
        hold.release.set()
    _assert_terminated_cleanly(stderr, india, said, logged)
    assert 0 < len(received_values(india)) < len(expected)  # the first page was committed

    fault_proxy.script.rule = None
    again = india.run("sync")
    assert again.exit_code == 0, again.stderr
    values = received_values(india)
    assert len(values) == len(set(values)) and set(values) == expected
    assert _rows(india.home / "store.sqlite", "SELECT reason FROM quarantine") == []
    assert _log_text(india).count(logged) == 1  # the rerun ended normally


# -- in this process: the handler is the CLI's, for the command's duration only -------------


def _sigterm_to_self() -> NoReturn:
    """What systemd does, from inside the command (never to a process without the handler:
    that would end the test run)."""
    handler = signal.getsignal(signal.SIGTERM)
    if handler in (signal.SIG_DFL, signal.SIG_IGN, None):
        raise AssertionError(f"no SIGTERM handler while the command runs: {handler!r}")
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(10)  # the handler raises in here
    raise AssertionError("SIGTERM did not interrupt the command")


def test_the_handler_raises_once_and_is_restored_after_the_command() -> None:
    """`timeout` signals the process, then its process group: the second SIGTERM must not cut
    the unwinding the first one set off short (as a second exception would). And the handler
    is the command's only: the next command, and the test run, find the one before."""
    from cti_exchange.cli.app import Terminated, sigterm_unwinds

    before = signal.getsignal(signal.SIGTERM)
    unwound: list[str] = []
    with pytest.raises(Terminated), sigterm_unwinds():
        try:
            _sigterm_to_self()
        finally:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.3)
            unwound.append("finally")
    assert unwound == ["finally"]
    assert signal.getsignal(signal.SIGTERM) == before


def test_sigterm_at_a_confirmation_prompt_exits_143_not_aborted(
    partnered: tuple[Agency, Agency], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A prompt turns any KeyboardInterrupt into "Aborted!" (exit 1); SIGTERM stays 143."""
    import typer._click.termui as termui

    from cti_exchange.cli import partners_cmd

    fr, _ = partnered
    monkeypatch.setattr(partners_cmd, "sys", SimpleNamespace(stdin=SimpleNamespace(isatty=lambda: True)))
    monkeypatch.setattr(termui, "echo", lambda *args, **kwargs: _sigterm_to_self())
    result = fr.run("partners", "remove", "cert-in")
    assert result.exit_code == 143, result.stderr
    assert TERMINATED in result.stderr and "Aborted" not in result.stderr
    monkeypatch.undo()
    assert "cert-in" in fr.run("partners", "list").stdout  # nothing was removed


def test_a_command_outside_the_main_thread_leaves_sigterm_alone(tmp_path: Path) -> None:
    """Signal handlers can only be set from the main thread: a command run from another one
    (CliRunner in a worker thread) neither fails nor touches the handler."""
    before = signal.getsignal(signal.SIGTERM)
    results: list[CliResult] = []
    worker = threading.Thread(target=lambda: results.append(run_cli("status", home=tmp_path / "none")))
    worker.start()
    worker.join(60)
    assert [r.exit_code for r in results] == [2], results  # no profile there: a usage error
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_worker_forked_during_a_command_still_ends_by_sigterm() -> None:
    """ingest's process pool forks workers that inherit the handler: they end by the signal,
    as before, instead of raising in code that is not a command."""
    from cti_exchange.cli.app import sigterm_unwinds

    with sigterm_unwinds():
        child = os.fork()
        if child == 0:  # pragma: no cover - the child never returns into pytest
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(10)
            finally:
                os._exit(3)  # reached only if the handler raised
        _, status = os.waitpid(child, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM, status


def test_serve_still_stops_gracefully_on_sigterm(partnered: tuple[Agency, Agency]) -> None:
    """`serve` installs its own handler (waitress lets running requests finish): exit 0."""
    fr, _ = partnered
    server, lines = start_on_port_zero(fr)
    try:
        assert "127.0.0.1" in lines[-1]
        server.send_signal(signal.SIGTERM)
        _, rest = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert server.returncode == 0, rest
    assert "terminated" not in rest
