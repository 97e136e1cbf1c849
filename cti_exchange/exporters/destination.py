"""Where an export's files go (the file-system side of export.py).

A new or regular file is written to a temporary file beside it, fsynced with its mode, and
renamed into place: a reader never sees half a blocklist. FIFOs, character devices (a terminal,
/dev/null) and descriptor paths (`/dev/stdout`, `/proc/self/fd/N`) are written straight into,
since renaming over them would replace them instead of feeding them. A stream that stops
reading early leaves its part marked incomplete instead of failing the export.
"""

from __future__ import annotations

import codecs
import hashlib
import itertools
import os
import re
import stat
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TextIO

from cti_exchange.errors import ConfigError, UsageError
from cti_exchange.exporters.interface import ExportSummary
from cti_exchange.stix.tlp import Tlp
from cti_exchange.store.triage_queries import TriageFilter

# Markings whose text limits the audience to named people or one organisation: exported only
# with --i-understand-tlp (export.py), into files readable by their owner.
GATED_TLP = frozenset({Tlp.RED.value, Tlp.AMBER_STRICT.value})


# Paths that name an open file descriptor (`-o /dev/stdout`, `/proc/self/fd/1`): written
# through, never replaced.
_DESCRIPTOR_PATH = re.compile(r"/dev/(?:std(?:in|out|err)|fd/\d+)|/proc/[^/]+(?:/task/\d+)?/fd/\d+")


def _names_a_descriptor(path: Path) -> bool:
    """True when `path`, or a symbolic link on the way from it, names a file descriptor."""
    current = os.path.abspath(path)
    for _ in range(40):  # the kernel's own limit on links followed
        if _DESCRIPTOR_PATH.fullmatch(current):
            return True
        if not os.path.islink(current):
            return False
        current = os.path.normpath(os.path.join(os.path.dirname(current), os.readlink(current)))
    return False


def written_through(target: Path) -> bool:
    """How a target is written: False, to a temporary file renamed into place (a new or
    regular file); True, straight into it (a character device such as a terminal or
    /dev/null, a FIFO, or a descriptor path such as /dev/stdout), which a rename would replace
    instead of feeding."""
    try:
        mode = os.stat(target).st_mode  # through symbolic links
    except FileNotFoundError:
        return False
    except OSError as error:
        raise ConfigError(f"cannot write {target}: {error.strerror or error}") from None
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        return True
    if stat.S_ISREG(mode):
        return _names_a_descriptor(target)
    if stat.S_ISDIR(mode):
        raise UsageError(
            f"cannot write {target}: it is a directory", hint="move it away or give another path"
        )
    raise UsageError(
        f"cannot write {target}: it is not a regular file, a directory, a character device or a FIFO",
        hint="give a file or a directory to write into",
    )


def temporary_file(directory: Path | None, prefix: str, target: Path | None) -> tuple[int, Path]:
    try:
        fd, name = tempfile.mkstemp(prefix=prefix, dir=directory)
    except OSError as error:
        where = target if target is not None else Path(tempfile.gettempdir())
        raise ConfigError(
            f"cannot write {where}: cannot create a file in {directory or tempfile.gettempdir()}: "
            f"{error.strerror or error}",
            hint="check the directory exists and is writable",
        ) from None
    return fd, Path(name)


def file_mode(level: Tlp | None) -> int:
    """Owner only for TLP:RED and TLP:AMBER+STRICT; else owner and group, never wider than the
    process umask allows."""
    if level is not None and level.value in GATED_TLP:
        return 0o600
    umask = os.umask(0o077)  # read it; the restrictive value stands for the instant it is set
    os.umask(umask)
    return 0o640 & ~umask


@dataclass
class ExportPart:
    """One output of an export, from its body to its place."""

    target: Path | None  # None: the stream
    filters: TriageFilter
    through: bool  # written straight into the target (see written_through)
    body_path: Path | None = None
    summary: ExportSummary | None = None
    header: str = ""
    ready: Path | None = None  # the complete file, beside its target, to rename into place
    size: int = 0
    sha256: str = ""
    complete: bool = True


def _copy(part: ExportPart, write: Callable[[bytes], object]) -> None:
    """The part's header then its body through `write`, counted in `part.size` and
    `part.sha256` as they go (what was written, when a reader stops early)."""
    assert part.body_path is not None
    digest = hashlib.sha256()
    part.size, part.sha256 = 0, digest.hexdigest()
    with part.body_path.open("rb") as body:
        for chunk in itertools.chain([part.header.encode("utf-8")], iter(partial(body.read, 1 << 20), b"")):
            write(chunk)
            digest.update(chunk)
            part.size += len(chunk)
            part.sha256 = digest.hexdigest()


def prepare_file(part: ExportPart) -> None:
    """The complete file beside its target (not yet in place), with its mode."""
    assert part.target is not None and part.body_path is not None and part.summary is not None
    fd, name = temporary_file(part.target.parent, f".{part.target.name}.", part.target)
    part.ready = name
    try:
        with os.fdopen(fd, "wb") as final:
            _copy(part, final.write)
            final.flush()
            os.fchmod(final.fileno(), file_mode(part.summary.strictest))
            os.fsync(final.fileno())
    except OSError as error:
        raise ConfigError(f"cannot write {part.target}: {error.strerror or error}") from None


def stream_out(part: ExportPart, stream: TextIO | None) -> None:
    """Header and body to the stream; a reader that stops early leaves the part incomplete."""
    out = stream or sys.stdout
    binary = getattr(out, "buffer", None)
    decoder = codecs.getincrementaldecoder("utf-8")()  # a chunk may end inside a character

    def write(data: bytes) -> None:
        if binary is None:
            out.write(decoder.decode(data))
            return
        # Bytes, checking what was taken: a buffered writer whose pipe closed in the middle
        # of a large write can report a short write instead of raising.
        view = memoryview(data)
        while view:
            taken = binary.write(view)
            if not taken:
                raise BrokenPipeError("the stream took nothing")
            view = view[taken:]

    try:
        out.flush()
        _copy(part, write)
        out.write(decoder.decode(b"", final=True))
        out.flush()
    except BrokenPipeError:
        part.complete = False


def write_through(part: ExportPart) -> None:
    """Straight into a FIFO, a character device or a descriptor path (appending, as `>>`
    would: a descriptor path can name the regular file our stdout is redirected to)."""
    assert part.target is not None and part.body_path is not None
    flags = os.O_WRONLY | os.O_APPEND | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(part.target, flags)  # never O_CREAT: it exists, or it is not written
    except OSError as error:
        raise ConfigError(f"cannot write {part.target}: {error.strerror or error}") from None
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode) and not _names_a_descriptor(part.target):
            raise ConfigError(f"cannot write {part.target}: it was replaced while the export ran")

        def write_all(data: bytes) -> None:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]

        _copy(part, write_all)
    except BrokenPipeError:
        part.complete = False  # the reader of the FIFO went away
    except OSError as error:
        raise ConfigError(f"cannot write {part.target}: {error.strerror or error}") from None
    finally:
        os.close(fd)
