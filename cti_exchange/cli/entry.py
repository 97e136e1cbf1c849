"""The `cti-exchange` console entry point.

jsonschema imports the optional format-checking libraries it finds at import time, and one of
them, rfc3987-syntax (pulled in by stix2-validator in the test environment), spends about a
second building a grammar. cti-exchange never asserts JSON Schema formats, so the command line
tells jsonschema that library is absent. Library users who import cti_exchange directly are not
affected.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType


def _no_core_dumps() -> None:
    """A crash (SIGABRT, SIGSEGV in a C extension, Ctrl-\\) while the keys are unlocked must
    not leave them, the passphrase and partners' TAXII secrets in a core file: no core file
    (RLIMIT_CORE 0), and on Linux not dumpable at all, which also keeps other processes of
    our user from attaching to read our memory (a core handler piping to systemd-coredump
    honours that too)."""
    import resource

    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ValueError, OSError):
        pass
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0
        except (OSError, AttributeError):
            pass


class _TerminatedOutsideTheCommand(BaseException):
    """SIGTERM while the command's own handler (app.py `sigterm_unwinds`) is not installed:
    before it starts (imports) or after it ended. Not an Exception: code that catches those
    must not swallow it."""


def _terminate_outside_the_command(signum: int, frame: FrameType | None) -> None:
    raise _TerminatedOutsideTheCommand


def _reopen_closed_standard_streams() -> None:
    """A standard stream closed by whoever started us (`cti-exchange sync >&-`, `<&-`, `2>&-`)
    reads and writes as /dev/null: the command runs as with its output thrown away, exit codes
    as documented. Without this, Python set sys.stdout to None and every command ended in an
    internal error (exit 70, or a traceback for --version); and the next file opened (a key, an
    export) would take the free descriptor 1 or 2 and receive whatever is written there."""
    import os

    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        try:
            os.fstat(fd)
        except OSError:
            opened = os.open(os.devnull, os.O_RDWR)  # the lowest free descriptor: this one
            if opened != fd:
                os.dup2(opened, fd)
                os.close(opened)
            setattr(sys, name, open(fd, mode, encoding="utf-8", closefd=False))


def main() -> None:
    """Runs the command. Ctrl-C or SIGTERM while Python is still importing the libraries (about
    half a second) leaves as one during the command does: one line, exit 130 or 143, no
    traceback; nothing is open yet that could be left half done. Once the command's ending is
    written (its output, or its error line and exit code), both are ignored: the process exits
    with the command's own code, through Python's shutdown too, which would otherwise put the
    default handlers back and let a late signal end a finished command without a word."""
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:  # not where the parent ignores it
        signal.signal(signal.SIGTERM, _terminate_outside_the_command)
    try:
        try:
            _reopen_closed_standard_streams()
            _no_core_dumps()
            sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
            import cti_exchange.cli.app as app

            app.ONE_COMMAND_PER_PROCESS = True  # app.py ignores them once the command ended
            app.main()
        finally:
            ignore_signals()  # whatever the ending, it is decided now (an --help, a --version)
    except KeyboardInterrupt:
        _say("cti-exchange: interrupted (SIGINT) outside the command's work; nothing was left half done")
        raise SystemExit(128 + int(signal.SIGINT)) from None
    except _TerminatedOutsideTheCommand:
        _say("cti-exchange: terminated (SIGTERM) outside the command's work; nothing was left half done")
        raise SystemExit(128 + int(signal.SIGTERM)) from None


def ignore_signals() -> None:
    """SIG_IGN, which Python's shutdown keeps (it restores only the handlers it runs)."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        if signal.getsignal(signum) is not None:  # None: a handler Python did not set
            signal.signal(signum, signal.SIG_IGN)


def _say(line: str) -> None:
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # stderr closed: the exit code says it
