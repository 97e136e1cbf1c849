"""Where the key passphrase comes from: a prompt on a terminal, or for unattended use the
environment variable CTI_EXCHANGE_PASSPHRASE or the 0600 file named by
CTI_EXCHANGE_PASSPHRASE_FILE. Never a command-line argument: argv is visible to every user of
the machine through /proc and `ps`.
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from cti_exchange.errors import AuthError, ConfigError, UsageError
from cti_exchange.home.safe_files import read_private_file

PASSPHRASE_ENV = "CTI_EXCHANGE_PASSPHRASE"  # noqa: S105 - the name of a variable
PASSPHRASE_FILE_ENV = "CTI_EXCHANGE_PASSPHRASE_FILE"  # noqa: S105 - ditto
NEW_PASSPHRASE_FILE_ENV = "CTI_EXCHANGE_NEW_PASSPHRASE_FILE"  # noqa: S105 - `keys passphrase`
MIN_PASSPHRASE_LENGTH = 12


def read_passphrase(
    *, confirm: bool = False, environ: Mapping[str, str] | None = None, purpose: str = "key"
) -> str:
    env = os.environ if environ is None else environ
    file_name = env.get(PASSPHRASE_FILE_ENV)
    if file_name:
        path = Path(file_name)
        passphrase = _utf8(read_private_file(path, what="passphrase file"), path).rstrip("\r\n")
    elif env.get(PASSPHRASE_ENV):
        passphrase = env[PASSPHRASE_ENV]
    elif sys.stdin.isatty():
        passphrase = getpass.getpass(f"Passphrase for the {purpose}: ")
        if confirm and getpass.getpass("Repeat the passphrase: ") != passphrase:
            raise UsageError("the two passphrases differ", hint="run the command again")
    else:
        raise AuthError(
            "no passphrase available: there is no terminal to prompt on",
            hint=f"set {PASSPHRASE_FILE_ENV} to a 0600 file holding it (or {PASSPHRASE_ENV})",
        )
    if not passphrase:
        if file_name:
            raise AuthError(
                f"the passphrase file {file_name} ({PASSPHRASE_FILE_ENV}) is empty",
                hint="write the key passphrase in it, on one line (or point the variable at the right file)",
            )
        raise AuthError("the passphrase is empty", hint="type the key passphrase")
    return passphrase


def passphrase_source(*, environ: Mapping[str, str] | None = None) -> str:
    """Where `read_passphrase` takes the passphrase from, for a message about a wrong one."""
    env = os.environ if environ is None else environ
    if env.get(PASSPHRASE_FILE_ENV):
        also = f" ({PASSPHRASE_ENV} is set too, and the file wins)" if env.get(PASSPHRASE_ENV) else ""
        return f"the file {env[PASSPHRASE_FILE_ENV]} ({PASSPHRASE_FILE_ENV}){also}"
    if env.get(PASSPHRASE_ENV):
        return PASSPHRASE_ENV
    return "the prompt"


def read_new_passphrase(*, environ: Mapping[str, str] | None = None) -> str:
    """The passphrase `keys passphrase` changes to: from the 0600 file named by
    CTI_EXCHANGE_NEW_PASSPHRASE_FILE (unattended, and so that the file cron reads can be
    written first), else typed twice on a terminal. Checked as `init` checks one."""
    env = os.environ if environ is None else environ
    file_name = env.get(NEW_PASSPHRASE_FILE_ENV)
    if file_name:
        path = Path(file_name)
        passphrase = _utf8(read_private_file(path, what="new passphrase file"), path).rstrip("\r\n")
    elif sys.stdin.isatty():
        passphrase = getpass.getpass("New passphrase for the keys: ")
        if getpass.getpass("Repeat the new passphrase: ") != passphrase:
            raise UsageError("the two new passphrases differ", hint="run the command again")
    else:
        # A missing input (exit 2), as a new passphrase too short is: nothing was checked
        # against a secret, so not an authentication failure (3).
        raise UsageError(
            "no new passphrase available: there is no terminal to prompt on",
            hint=f"set {NEW_PASSPHRASE_FILE_ENV} to a 0600 file holding it",
        )
    check_new_passphrase(passphrase)
    return passphrase


def check_new_passphrase(passphrase: str) -> None:
    if len(passphrase) < MIN_PASSPHRASE_LENGTH:
        raise UsageError(
            f"the passphrase is shorter than {MIN_PASSPHRASE_LENGTH} characters",
            hint="choose a longer one (a few random words work well)",
        )


def _utf8(data: bytes, path: Path) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"passphrase file {path} is not UTF-8 text (byte {exc.start})", hint="save it as UTF-8"
        ) from None
