"""Inputs that can be read only once: `-` (standard input: `grep ... | cti-exchange validate -`)
and files that are pipes: a named FIFO, or a pipe given by its descriptor (`<(cat iocs.csv)`,
which the shell passes as `/dev/fd/63`).

Readers work on files: format detection reads a file's head, then the reader opens it again and
seeks past a byte-order mark, and a large CSV file is read in parts by several processes. A
pipe cannot seek, and a FIFO opened a second time waits for a writer that has gone. So these
inputs are first copied, once, to a private file: a directory only we can enter (0700), the
file 0600, both removed when the command ends. Every message and report calls the input by the
name given (`-`, `/dev/fd/63`, `f.csv`), never the copy's path. A push of the same bytes is the
same push (its id hashes the input's bytes, not its name), so re-running `... | push - --to P`
after an interruption resumes it.

Character devices are not copied: `/dev/null` reads as empty, and `/dev/zero` or
`/dev/urandom` are refused as binary from their first bytes, where a copy would never end.
The size limits are the readers' own (the longest line, the largest JSON document), the same
for a copy as for a file.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from cti_exchange.errors import InputError, UsageError

STDIN = Path("-")
STDIN_LABEL = "-"
_COPY_CHUNK = 1024 * 1024


def _read_once(path: Path) -> tuple[int, int] | None:
    """(device, inode) of a file that is a pipe, which must be read once; else None. A file
    that cannot be examined is left to the readers, which name the cause."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return (status.st_dev, status.st_ino) if stat.S_ISFIFO(status.st_mode) else None


def _copy(source: BinaryIO, folder: Path, name: str) -> Path:
    copy_path = folder / name
    descriptor = os.open(copy_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as copy:
        shutil.copyfileobj(source, copy, _COPY_CHUNK)
    return copy_path


@contextmanager
def spooled_inputs(
    inputs: list[Path], stream: BinaryIO | None = None
) -> Iterator[tuple[list[Path], dict[str, str]]]:
    """`inputs` with `-` and every pipe replaced by a private copy of what it held, and the
    labels that name each copy as it was given (IngestOptions.labels). Without such an input,
    the inputs as given and no labels. `stream`: standard input, when not `sys.stdin`."""
    pipes: dict[Path, tuple[int, int]] = {}
    for path in inputs:
        if path == STDIN:
            continue
        identity = _read_once(path)
        if identity is None:
            continue
        if identity in pipes.values():
            raise UsageError(
                f"{path} is a pipe given twice",
                hint="a pipe can be read once: give it once",
            )
        pipes[path] = identity
    if STDIN not in inputs and not pipes:
        yield inputs, {}
        return
    if inputs.count(STDIN) > 1:
        raise UsageError(
            "'-' (standard input) is given twice", hint="standard input can be read once: give '-' once"
        )
    source = None
    if STDIN in inputs:
        source = stream if stream is not None else sys.stdin.buffer
        try:
            standard = os.fstat(source.fileno())
        except (OSError, ValueError, io.UnsupportedOperation):
            standard = None  # not a real descriptor (a test runner's stream)
        if standard is not None and stat.S_ISFIFO(standard.st_mode):
            for path, identity in pipes.items():
                if identity == (standard.st_dev, standard.st_ino):  # /dev/stdin beside '-'
                    raise UsageError(
                        f"{path} is standard input, given as '-' too",
                        hint="standard input can be read once: give it once",
                    )
        if source.isatty():
            raise UsageError(
                "'-' reads the list from standard input, and standard input is a terminal",
                hint="pipe the list in (`grep -o ... | cti-exchange validate -`), or give a file name",
            )
    folder = Path(tempfile.mkdtemp(prefix="cti-exchange-stdin-"))  # 0700
    try:
        copies: dict[Path, Path] = {}
        if source is not None:
            copies[STDIN] = _copy(source, folder, "stdin")
        for number, path in enumerate(pipes, 1):
            try:
                with open(path, "rb") as pipe:
                    copies[path] = _copy(pipe, folder, f"pipe-{number}")
            except OSError as error:
                raise InputError(
                    f"cannot read {path} ({error.strerror or error})",
                    hint="check that the pipe's writer is still running",
                ) from error
        labels = {str(copy): STDIN_LABEL if path == STDIN else str(path) for path, copy in copies.items()}
        yield [copies.get(path, path) for path in inputs], labels
    finally:
        shutil.rmtree(folder, ignore_errors=True)
