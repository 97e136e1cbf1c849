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


class PrivateRotatingFileHandler(RotatingFileHandler):
    """Opens every log file 0600, the first one and each one started by a rollover (the
    stock handler's open() leaves them to the umask, 0644 under the usual 022); rotated
    files keep their mode through the rename."""

    def _open(self) -> io.TextIOWrapper:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE_MODE)
        if stat.S_IMODE(os.fstat(fd).st_mode) & 0o077:
            # A log left 0644 by an older version: its lines name partners and envelopes.
            with contextlib.suppress(OSError):
                os.fchmod(fd, PRIVATE_FILE_MODE)
        return os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)


def enable_file_log(logs_dir: Path) -> Path:
    ensure_private_dir(logs_dir, what="log directory")
    path = logs_dir / LOG_NAME
    logger = logging.getLogger("cti_exchange")
    if not any(isinstance(h, RotatingFileHandler) and h.baseFilename == str(path) for h in logger.handlers):
        handler = PrivateRotatingFileHandler(
            path, maxBytes=_MAX_BYTES, backupCount=_BACKUPS, encoding="utf-8"
        )
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s pid=%(process)d %(name)s: %(message)s")
        )
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return path
