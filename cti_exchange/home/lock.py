"""One writer at a time per profile: push, pull, sync, seal, sight, open, quarantine accept-gap
and accept-restart, and the keys and partners commands that change keys or settings take an
exclusive lock on `<home>/.lock` (flock(2); released by the kernel when the process dies, even
by SIGKILL, so a crash never leaves a stale lock behind)."""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from cti_exchange.errors import ConfigError, LockHeldError

# An interactive command waits this long for a running sync to finish (sync itself waits 0).
LOCK_WAIT_SECONDS = 60.0
PROBE_GRACE_SECONDS = 0.3


@contextmanager
def profile_lock(
    root: Path,
    *,
    wait_seconds: float = 0.0,
    what: str = "this command",
    waiting: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """`waiting`: told once, with what to say, when the lock is held and the wait begins (a
    command silent for up to a minute looks hung)."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise
        raise ConfigError(
            f"cannot write in the profile home {root} ({os.strerror(exc.errno)}): {what} "
            "writes its lock, store and keys there",
            hint="remount it read-write (`mount -o remount,rw`), or fix its permissions for "
            "the user running cti-exchange",
        ) from None
    try:
        # Never less than a moment: `lock_held` (audit verify, export) takes the lock for an
        # instant to test it, and a cron sync (wait 0) starting in that instant must not end
        # with "another process is working" when none is.
        deadline = time.monotonic() + max(wait_seconds, PROBE_GRACE_SECONDS)
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if waiting is not None and not told and wait_seconds > 0:
                    told = True
                    waiting(
                        f"another cti-exchange process{_holder(fd)} is working on {root}: {what} "
                        f"waits for it to finish (at most {wait_seconds:.0f} s)"
                    )
                if time.monotonic() >= deadline:
                    raise LockHeldError(
                        f"another cti-exchange process is working on {root}; {what} did not start",
                        hint="wait for it to finish (a cron sync usually takes seconds)",
                    ) from None
                time.sleep(0.05 if wait_seconds < 1 else 0.2)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # closing releases the lock


def lock_held(root: Path) -> bool:
    """Whether another process (or another lock of this one) holds the profile lock now: a push,
    pull or sync is under way. Takes and releases it at once when it is free; creates nothing."""
    try:
        fd = os.open(root / ".lock", os.O_RDWR)
    except OSError:
        return False  # never locked: no lock file
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # releases it, if it was taken
    return False


def _holder(fd: int) -> str:
    """` (pid N)` as the holder wrote it in the lock file, or nothing."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return f" (pid {text})" if text.isdigit() else ""
