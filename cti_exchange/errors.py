"""One error base for the whole product, rendered in one place (the CLI).

Every error a user can cause or meet carries a one-line `diagnostics()` that says what went
wrong and how to fix it, and an `exit_code` from `ExitCode`. Code below the CLI raises these and
never calls `sys.exit`.
"""

from __future__ import annotations

import errno
from enum import IntEnum

from cti_exchange.untrusted_text import escape_controls


class ExitCode(IntEnum):
    """Process exit codes, documented in the README and in `cti-exchange --help`."""

    OK = 0
    PARTIAL = 1  # some items failed or were rejected, the rest went through
    USAGE = 2  # bad option, malformed config, missing file, wrong permissions
    AUTH = 3  # bad passphrase, TAXII server refused our credentials or access to a collection
    INTEGRITY = 4  # rejected envelope, signature failure, sequence gap, fingerprint mismatch
    LOCKED = 5  # another instance holds the lock
    INPUT = 6  # nothing usable in the input
    NETWORK = 7  # server unreachable or failing after all retries
    POLICY = 8  # sharing policy (TLP) refused what was asked
    INTERNAL = 70  # a bug: please report it (EX_SOFTWARE)
    BROKEN_PIPE = 141  # stdout was closed early (`export | head`): 128 + SIGPIPE, as a shell reports


class CtiExchangeError(Exception):
    """Base of every error cti-exchange reports to a user."""

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def diagnostics(self) -> str:
        """One line: what is wrong, then how to fix it."""
        text = self.message if not self.hint else f"{self.message}; {self.hint}"
        # A diagnostic is one line whatever the input held, and quotes of the input (an id, a
        # uuid) cannot send escape sequences to the terminal.
        return escape_controls(" ".join(text.split()))


class UsageError(CtiExchangeError):
    exit_code = ExitCode.USAGE


class ConfigError(CtiExchangeError):
    """The profile, its config file or a file it names is missing, malformed or unsafe."""

    exit_code = ExitCode.USAGE


class KeyStoreError(CtiExchangeError):
    """Our own keys: missing, unreadable, wrongly protected, revoked, expired."""

    exit_code = ExitCode.USAGE


class AuthError(CtiExchangeError):
    """A secret was wrong: the key passphrase, or credentials refused by a TAXII server."""

    exit_code = ExitCode.AUTH


class CollectionAccessError(AuthError):
    """A TAXII server answered 404 or 403 for a configured collection: the id is wrong, or our
    account has no right on it (a server hides a collection we may not use behind a 404). It
    answers the same until someone acts, so it is not a network failure: exit 3, as `doctor`'s
    access check says it."""


class InputError(CtiExchangeError):
    """Input files: unreadable, malformed, or with nothing usable in them."""

    exit_code = ExitCode.INPUT


class IntegrityError(CtiExchangeError):
    """Something failed verification: a signature, a fingerprint, an envelope check."""

    exit_code = ExitCode.INTEGRITY


class PolicyError(CtiExchangeError):
    """The sharing policy refused the request (TLP, recipients)."""

    exit_code = ExitCode.POLICY


class NetworkError(CtiExchangeError):
    """A server could not be reached or kept failing after the retry budget."""

    exit_code = ExitCode.NETWORK


class LockHeldError(CtiExchangeError):
    exit_code = ExitCode.LOCKED


class PartialFailure(CtiExchangeError):
    """Part of the work was done and part failed; the message names what failed."""

    exit_code = ExitCode.PARTIAL


class DeliveryFailed(CtiExchangeError):
    """Nothing due could be posted; the exit code is the cause's (exchange/delivery.py
    `failure_exit_code`): a server that answered and refused is not a network failure."""

    def __init__(self, message: str, *, exit_code: ExitCode, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = exit_code


def is_storage_failure(exc: BaseException) -> bool:
    """A full disk or an I/O error, from the file system or from SQLite (which says it in
    words: "database or disk is full", "disk I/O error"): the machine's problem, not a bug."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG)
    text = str(exc)
    return type(exc).__name__ in ("OperationalError", "DatabaseError") and (
        "disk is full" in text or "disk I/O error" in text
    )
