"""An export's body files (`.cti-export-body.XXXXXXXX`, beside the target or in the temporary
directory), and the removal of those a killed export left behind.

export.py writes each part's body to such a file, then copies it into the file renamed over
the target, and removes it in a `finally`. SIGKILL, the OOM killer or a power cut skip that
`finally`: the partial body (10 MB and more, TLP-marked, 0600) stayed for good beside the
file an IDS or a web server reads, one more per killed run.

The rule that tells a stale body from one a concurrent export is writing (two exports, from
one profile or two, may write to the same directory at once): the writer holds an exclusive
`flock` on its body for as long as the file exists, and the kernel drops it when the process
ends, however it ends. A body whose lock can be taken has no live writer: it is stale, and
the next export to that directory removes it. No age, no process id (reused), no clock.
- The writer takes the lock just after creating the file, and then checks its path still
  names it: a sweep that took the lock in between and removed the file makes it create another.
- The sweep opens a body read-only. Where an exclusive `flock` needs a file open for writing
  (Linux emulates `flock` with `fcntl` locks on NFS), it fails, and nothing is removed there.
- Bodies of another user, which we cannot open, are left alone; so are names that are not
  exactly what `mkstemp` makes with our prefix.
"""

from __future__ import annotations

import fcntl
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cti_exchange.exporters.destination import temporary_file

BODY_PREFIX = ".cti-export-body."
_BODY_NAME = re.compile(re.escape(BODY_PREFIX) + r"[a-z0-9_]{8}")  # what tempfile.mkstemp makes


def locked_body_file(directory: Path | None, target: Path | None) -> tuple[int, Path, int]:
    """A new body file in `directory` (None: the temporary directory), locked for as long as
    the third descriptor, a duplicate, stays open: the caller may close the first one."""
    while True:
        fd, path = temporary_file(directory, BODY_PREFIX, target)
        fcntl.flock(fd, fcntl.LOCK_EX)  # waits only for a sweep that found it unlocked
        try:
            now = os.stat(path, follow_symlinks=False)
            ours = os.fstat(fd)
            kept = (now.st_dev, now.st_ino) == (ours.st_dev, ours.st_ino)
        except FileNotFoundError:
            kept = False
        if kept:
            return fd, path, os.dup(fd)  # a flock belongs to the open file, shared by duplicates
        os.close(fd)


@dataclass(frozen=True)
class StaleBody:
    path: Path
    size: int


def _stale(path: Path, *, remove: bool) -> StaleBody | None:
    """The body at `path` if no live export holds it (removed when `remove`)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None  # gone, another user's, or not a file we may read
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return None  # a live export holds it (or this file system cannot tell us)
        ours = os.fstat(fd)
        try:
            now = os.stat(path, follow_symlinks=False)
        except OSError:
            return None
        if (now.st_dev, now.st_ino) != (ours.st_dev, ours.st_ino):
            return None
        if remove:
            try:
                os.unlink(path)  # while holding the lock: a writer waiting for it starts again
            except OSError:
                return None
        return StaleBody(path, ours.st_size)
    finally:
        os.close(fd)


def stale_bodies(directory: Path, *, remove: bool = False) -> list[StaleBody]:
    """The bodies in `directory` that killed exports left (removed when `remove`); nothing if
    the directory cannot be read."""
    try:
        with os.scandir(directory) as entries:
            names = sorted(entry.name for entry in entries if _BODY_NAME.fullmatch(entry.name))
    except OSError:
        return []
    found = (_stale(directory / name, remove=remove) for name in names)
    return [body for body in found if body is not None]
