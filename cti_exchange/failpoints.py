"""Failpoints for crash tests: kill this process at a named point, on its Nth passage.

`CTI_EXCHANGE_FAILPOINT=commit-after:3` sends SIGKILL to the process the third time a store
transaction has just committed. Points: `commit-before`, `commit-after` (every store
transaction), `http-before`, `http-after` (every TAXII request), and in the TAXII server
`server-add-objects` (every POST of objects, before it is read) and `server-get-objects` (every
read of a collection's objects), and `export-bodies-written` (an export's bodies are written
beside their targets, none installed yet): a server child process
(`ServerProcess`, as `demo` starts one) inherits the variable, so a client meets a server that
died. Without the variable (always, outside tests) a failpoint is one dictionary lookup;
nothing else changes.
"""

from __future__ import annotations

import os
import signal

_SPEC = os.environ.get("CTI_EXCHANGE_FAILPOINT", "")
_NAME, _, _COUNT = _SPEC.partition(":")
_TARGET = int(_COUNT) if _COUNT.isdigit() else 0
_passages: dict[str, int] = {}


def failpoint(name: str) -> None:
    if not _TARGET or name != _NAME:
        return
    _passages[name] = _passages.get(name, 0) + 1
    if _passages[name] == _TARGET:
        os.kill(os.getpid(), signal.SIGKILL)
