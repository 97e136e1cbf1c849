"""What is checked about the store's file before SQLite opens it, and what an opening that
failed means: a store that was lost (emptied, or missing where one existed), a directory that
cannot be written, another process holding the store.

SQLite creates a database wherever it is asked to open one that is not there, and takes an empty
file for a new database. For a profile whose store existed, that would silently start over
without the replay protection, cursors, channel sequence numbers and audit trail it held, and
partners would quarantine our next envelope. So a profile home records that its store exists
(`STORE_MARKER`), and a store missing while that record is there is refused.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

from cti_exchange.errors import ConfigError, IntegrityError, LockHeldError

# In the profile home: written when the store is created, and on opening an existing store
# without it (profiles made by releases before it). Its presence is what counts.
STORE_MARKER = ".store-created"

_MARKER_TEXT = (
    "This profile's store was created. While this file exists, cti-exchange refuses to start a "
    "new, empty store in place of a missing one. Remove it only to start over knowingly.\n"
)

# A missing or emptied store is a lost store: from a backup, not from scratch.
RESTORE_HINT = "restore it from a backup (docs/OPERATIONS.md, Backups) or fix [store] path in config.toml"


def beside(real: Path, suffix: str) -> Path:
    """The store's file with `suffix` (`-wal`, `-shm`) where SQLite keeps it: beside the real
    file (`real`: the store's path, symlinks resolved)."""
    return real.with_name(real.name + suffix)


def start_over_step(marker: Path | None, *, empty_file: Path | None = None) -> str:
    """The exact step that starts a new store knowingly."""
    files = " ".join(str(p) for p in (empty_file, marker) if p is not None)
    return (
        f"; to start over knowingly with a new, empty store (partners must accept the restart), `rm {files}`"
        if files
        else ""
    )


def refuse_lost_store(path: Path, real: Path, marker: Path | None) -> None:
    """A store emptied (truncated to 0 bytes) or, for a profile whose store existed, missing."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        if marker is not None and marker.exists():
            raise missing_store_error(path, marker) from None
        return  # a new store
    wal = beside(real, "-wal")
    if size == 0 and not (wal.exists() and wal.stat().st_size > 0):
        existed = marker if marker is not None and marker.exists() else None
        raise IntegrityError(
            f"the store {path} is an empty file: it was truncated, and starting a new store in "
            "its place would lose the replay protection, cursors and audit trail it held",
            hint="restore it from a backup" + start_over_step(existed, empty_file=path),
        )


def missing_store_error(path: Path, marker: Path) -> IntegrityError:
    return IntegrityError(
        f"the store {path} is missing, but this profile had one: a new, empty store would lose "
        "the replay protection, cursors, channel sequence numbers and audit trail",
        hint=RESTORE_HINT + start_over_step(marker),
    )


def record_store_exists(marker: Path | None) -> None:
    """After a successful opening. A home we cannot write (read-only) keeps working without it."""
    if marker is None or marker.exists():
        return
    try:
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        return
    try:
        os.write(fd, _MARKER_TEXT.encode())
    except OSError:
        pass
    finally:
        os.close(fd)


class StoreNotWritable(ConfigError):
    """The store's directory or file is on a read-only file system or not ours to write."""


def _read_only_file_system(directory: Path) -> bool:
    try:
        return bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def refuse_read_only(path: Path, real: Path) -> None:
    """Every command writes the store (migrations, the audit trail, replay state): on a
    read-only file system SQLite would fail with "unable to open database file"."""
    directory = real.parent
    if directory.is_dir() and _read_only_file_system(directory):
        raise not_writable(path, directory, os.strerror(errno.EROFS))


def not_writable(path: Path, directory: Path, reason: str) -> StoreNotWritable:
    return StoreNotWritable(
        f"cannot write the store {path}: {directory} is not writable ({reason})",
        hint="remount it read-write (`mount -o remount,rw`), or fix its permissions for the "
        "user running cti-exchange",
    )


def why_not_writable(path: Path, real: Path) -> StoreNotWritable | None:
    """After SQLite failed to open the store: a directory or file we may not write, if so."""
    directory = real.parent
    if _read_only_file_system(directory) if directory.is_dir() else False:
        return not_writable(path, directory, os.strerror(errno.EROFS))
    for target in (directory, real, beside(real, "-wal"), beside(real, "-shm")):
        if target.exists() and not os.access(target, os.W_OK):
            return not_writable(path, target, os.strerror(errno.EACCES))
    return None


def is_locked(exc: BaseException) -> bool:
    """SQLite's busy error: another connection holds a lock we waited for in vain."""
    return isinstance(exc, sqlite3.OperationalError) and (
        "database is locked" in str(exc) or "database table is locked" in str(exc)
    )


def store_locked(path: Path, waited_seconds: float | None) -> LockHeldError:
    waited = f" (waited {waited_seconds:.0f} s)" if waited_seconds is not None else ""
    return LockHeldError(
        f"the store {path} is locked by another process{waited}",
        hint="retry when it has finished; `fuser` or `lsof` on the file shows which process it is",
    )
