"""`-` as an input file: the list piped in on standard input (`grep ... | cti-exchange validate -`).

Readers work on files (format detection, the file's head, large CSV files read in parts by
several processes), so standard input is first copied to a private file: a directory only we
can enter (0700), the file 0600, both removed when the command ends. Every message and report
calls the input `-`, never the spooled file's path. A push of the same bytes is the same push
(its id hashes the input's bytes, not its name), so re-running `... | push - --to P` after an
interruption resumes it.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from cti_exchange.errors import UsageError

STDIN = Path("-")
STDIN_LABEL = "-"


@contextmanager
def stdin_spooled(
    inputs: list[Path], stream: BinaryIO | None = None
) -> Iterator[tuple[list[Path], dict[str, str]]]:
    """`inputs` with `-` replaced by a private copy of standard input, and the labels that name
    that copy `-` (IngestOptions.labels). Without `-`, the inputs as given and no labels."""
    if STDIN not in inputs:
        yield inputs, {}
        return
    if inputs.count(STDIN) > 1:
        raise UsageError(
            "'-' (standard input) is given twice", hint="standard input can be read once: give '-' once"
        )
    source = stream if stream is not None else sys.stdin.buffer
    if source.isatty():
        raise UsageError(
            "'-' reads the list from standard input, and standard input is a terminal",
            hint="pipe the list in (`grep -o ... | cti-exchange validate -`), or give a file name",
        )
    folder = Path(tempfile.mkdtemp(prefix="cti-exchange-stdin-"))  # 0700
    try:
        spooled = folder / "stdin"
        descriptor = os.open(spooled, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as copy:
            shutil.copyfileobj(source, copy, 1024 * 1024)
        yield [spooled if path == STDIN else path for path in inputs], {str(spooled): STDIN_LABEL}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
