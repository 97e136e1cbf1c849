"""The `cti-exchange` console entry point.

jsonschema imports the optional format-checking libraries it finds at import time, and one of
them, rfc3987-syntax (pulled in by stix2-validator in the test environment), spends about a
second building a grammar. cti-exchange never asserts JSON Schema formats, so the command line
tells jsonschema that library is absent. Library users who import cti_exchange directly are not
affected.
"""

from __future__ import annotations

import sys


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


def main() -> None:
    _no_core_dumps()
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
    from cti_exchange.cli.app import main as app_main

    app_main()
