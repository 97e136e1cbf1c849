"""The rotating log under the profile (`<home>/logs/cti-exchange.log`, 0600), for unattended
runs: what was pulled, pushed, rejected and why. Secrets are never logged: log calls carry
ids, counts and reasons, never passphrases, TAXII credentials or key material."""

from __future__ import annotations

import logging
import os
from logging.handlers import RotatingFileHandler
from pathlib import Path

LOG_NAME = "cti-exchange.log"
_MAX_BYTES = 5 * 1024 * 1024
_BACKUPS = 5


def enable_file_log(logs_dir: Path) -> Path:
    logs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = logs_dir / LOG_NAME
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    logger = logging.getLogger("cti_exchange")
    if not any(isinstance(h, RotatingFileHandler) and h.baseFilename == str(path) for h in logger.handlers):
        handler = RotatingFileHandler(path, maxBytes=_MAX_BYTES, backupCount=_BACKUPS, encoding="utf-8")
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s pid=%(process)d %(name)s: %(message)s")
        )
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return path
