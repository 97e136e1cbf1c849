"""A pipe given as an input file is read once, as `-` is: a named FIFO (`mkfifo f.csv`), and a
pipe given by its descriptor (`validate <(cat iocs.csv)`, which the shell passes as
`/dev/fd/63`). Opened a second time, a FIFO waited for a writer that had gone, and a pipe could
not seek (exit 70 "not seekable"). push: tests/exchange/test_push_stdin.py. Run as real processes, so that a hang is a timeout, not a
test run that never ends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cti_exchange.errors import ExitCode
from tests.conftest import PASSPHRASE, Agency

LISTED = "type,value,tlp\nipv4,203.0.113.5,green\ndomain,evil[.]example.org,amber\n"
WAIT_SECONDS = 60


def run_process(home: Path, *args: str, pass_fds: tuple[int, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cti_exchange", "--home", str(home), *args],
        env={**os.environ, "CTI_EXCHANGE_PASSPHRASE": PASSPHRASE},
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS,
        pass_fds=pass_fds,
        stdin=subprocess.DEVNULL,
    )


def _write(path: str | int, text: str) -> None:
    with open(path, "w", encoding="utf-8") as sink:
        sink.write(text)


@contextmanager
def fifo_written(folder: Path, name: str, text: str) -> Iterator[Path]:
    """A named FIFO with a writer that writes `text` once, to whoever opens it first."""
    fifo = folder / name
    os.mkfifo(fifo)
    writer = threading.Thread(target=_write, args=(str(fifo), text), daemon=True)
    writer.start()
    try:
        yield fifo
    finally:
        if writer.is_alive():  # nobody opened it: let the writer go
            with open(fifo, "rb"):
                pass
        writer.join(WAIT_SECONDS)


@contextmanager
def pipe_written(text: str) -> Iterator[int]:
    """The read end of a pipe a thread writes `text` into, as `<(cat FILE)` gives."""
    read_end, write_end = os.pipe()
    writer = threading.Thread(target=_write, args=(write_end, text), daemon=True)
    writer.start()
    try:
        yield read_end
    finally:
        os.close(read_end)
        writer.join(WAIT_SECONDS)


def test_validate_reads_a_named_fifo_once(tmp_path: Path) -> None:
    with fifo_written(tmp_path, "iocs.csv", LISTED) as fifo:
        result = run_process(tmp_path / "none", "validate", str(fifo))
    assert result.returncode == 0, result.stderr
    assert f"{fifo}: read as csv" in result.stdout
    assert "all accepted: 2 objects" in result.stdout


def test_validate_reads_a_pipe_given_as_dev_fd(tmp_path: Path) -> None:
    with pipe_written(LISTED) as read_end:
        result = run_process(
            tmp_path / "none", "validate", "--json", f"/dev/fd/{read_end}", pass_fds=(read_end,)
        )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["formats"] == {f"/dev/fd/{read_end}": "csv"}  # named as given, not the copy
    assert report["accepted_by_type"] == {"ipv4-addr": 1, "domain-name": 1}
    assert "cti-exchange-stdin-" not in result.stdout + result.stderr


def test_convert_from_a_fifo_beside_a_file(cert_fr: Agency, tmp_path: Path) -> None:
    more = tmp_path / "more.txt"
    more.write_text("198.51.100.23\n")
    out = tmp_path / "bundle.json"
    with fifo_written(tmp_path, "iocs.csv", LISTED) as fifo:
        result = run_process(cert_fr.home, "convert", str(fifo), str(more), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "Wrote 3 objects" in result.stdout
    assert "evil.example.org" in out.read_text() and "198.51.100.23" in out.read_text()


def test_a_pipe_given_twice_is_refused(tmp_path: Path) -> None:
    with pipe_written(LISTED) as read_end:
        name = f"/dev/fd/{read_end}"
        result = run_process(tmp_path / "none", "validate", name, name, pass_fds=(read_end,))
    assert result.returncode == ExitCode.USAGE, result.stderr
    assert "is a pipe given twice" in result.stderr and "Traceback" not in result.stderr


def test_standard_input_given_as_dash_and_as_dev_stdin_is_refused(tmp_path: Path) -> None:
    # Found on the stop's review: `-` copied standard input, then /dev/stdin read empty and
    # counted as an input with nothing in it.
    read_end, write_end = os.pipe()
    os.write(write_end, LISTED.encode())
    os.close(write_end)
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "cti_exchange",
                "--home",
                str(tmp_path / "none"),
                "validate",
                "-",
                "/dev/stdin",
            ],
            env={**os.environ, "CTI_EXCHANGE_PASSPHRASE": PASSPHRASE},
            capture_output=True,
            text=True,
            timeout=WAIT_SECONDS,
            stdin=read_end,
        )
    finally:
        os.close(read_end)
    assert result.returncode == ExitCode.USAGE, result.stderr
    assert "/dev/stdin is standard input, given as '-' too" in result.stderr
