"""The rotating log under the profile (`<home>/logs/cti-exchange.log`, 0600), for unattended
runs: what was pulled, pushed, rejected and why. Secrets are never logged: log calls carry
ids, counts and reasons, never passphrases, TAXII credentials or key material."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import stat
from logging.handlers import RotatingFileHandler
from pathlib import Path

from cti_exchange.home.safe_files import PRIVATE_FILE_MODE, ensure_private_dir

LOG_NAME = "cti-exchange.log"
_MAX_BYTES = 5 * 1024 * 1024
_BACKUPS = 5


def _tighten(fd: int) -> None:
    """0600 for a log left group- or world-readable by an older version: its lines name
    partners and envelopes."""
    if stat.S_IMODE(os.fstat(fd).st_mode) & 0o077:
        with contextlib.suppress(OSError):
            os.fchmod(fd, PRIVATE_FILE_MODE)


def _tighten_rotated(path: Path) -> None:
    """The same for a rotated file (`cti-exchange.log.1`...), if it is a regular file of ours:
    opened without following a symlink, so a link never gets its target's mode changed."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)  # O_NONBLOCK: a FIFO planted there does not hang us
    except OSError:
        return  # absent, a symlink (ELOOP), or unreadable: nothing of ours to tighten
    try:
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid():
            _tighten(fd)
    finally:
        os.close(fd)


class PrivateRotatingFileHandler(RotatingFileHandler):
    """Opens every log file 0600, the first one and each one started by a rollover (the
    stock handler's open() leaves them to the umask, 0644 under the usual 022); rotated
    files keep their mode through the rename, and those an older version left readable are
    tightened whenever the log is opened."""

    def __init__(self, path: Path, *, max_bytes: int, backups: int) -> None:
        self.backupCount = backups  # before the base __init__, whose first _open() needs it
        super().__init__(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")

    def _open(self) -> io.TextIOWrapper:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE_MODE)
        _tighten(fd)
        for n in range(1, self.backupCount + 1):
            _tighten_rotated(Path(f"{self.baseFilename}.{n}"))
        return os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)


def enable_file_log(logs_dir: Path) -> Path:
    ensure_private_dir(logs_dir, what="log directory")
    path = logs_dir / LOG_NAME
    logger = logging.getLogger("cti_exchange")
    if not any(isinstance(h, RotatingFileHandler) and h.baseFilename == str(path) for h in logger.handlers):
        handler = PrivateRotatingFileHandler(path, max_bytes=_MAX_BYTES, backups=_BACKUPS)
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s pid=%(process)d %(name)s: %(message)s")
        )
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return path
