"""File writes that survive interruption and keep secrets private.

Every write goes to a temporary file in the same directory, is fsynced, then renamed over the
target (rename is atomic on POSIX), and the directory is fsynced so the rename itself is durable.
Private files are created 0600 from the start (never chmod'ed after the secret is written).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path

from cti_exchange.errors import ConfigError, KeyStoreError, UsageError, is_storage_failure
from cti_exchange.home.posix_acl import others_with_access, read_acl

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def resolve_in_home(name: str, home: Path) -> Path:
    """A file named in the profile's config: `~` expanded, and relative to the home."""
    path = Path(name).expanduser()
    return path if path.is_absolute() else home / path


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_private_dir(directory: Path, *, what: str = "directory") -> None:
    """Creates `directory` (and parents) with mode 0700; tightens an existing one we own and
    refuses one that someone else could write into (see check_private_dir)."""
    directory.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    info = directory.stat()
    if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(directory, PRIVATE_DIR_MODE)
    check_private_dir(directory, what=what)


def check_private_dir(directory: Path, *, what: str) -> None:
    """Refuses a directory that anyone but us and root could write into: they could swap the
    files in it or plant links there. A symlink is followed and its target judged, and the
    parents are not judged at all: users legitimately reach a home through links (~/.local ->
    /data/...), and a link to `keys/` lies in the home, which is judged itself."""
    try:
        info = directory.stat()
    except FileNotFoundError:
        raise ConfigError(f"{what} {directory} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot inspect {what} {directory}: {exc.strerror}") from None
    me = os.geteuid()
    if not stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"{what} {directory} is not a directory")
    if info.st_uid not in (me, 0):
        raise ConfigError(
            f"{what} {directory} belongs to user {info.st_uid}, who could replace the files in it",
            hint=f"use a directory of your own (user {me}), or have root `chown {me} {directory}`",
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o022:
        raise ConfigError(
            f"{what} {directory} is writable by group or others (mode {mode:04o})",
            hint=f"run `chmod 700 {directory}` and check that nobody replaced the files in it",
        )


def atomic_write(path: Path, data: bytes, mode: int = PRIVATE_FILE_MODE) -> None:
    """Replaces `path` with `data` atomically and durably."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    fsync_dir(path.parent)


def check_output_target(output: Path, *, hint: str = "give a file path") -> None:
    """Refuses an `-o` target that write_output_file would not write: checked before a command
    changes anything (a sealed envelope moves the channel), so a mistyped path costs nothing."""
    try:
        current = output.stat().st_mode
    except FileNotFoundError:
        if not output.parent.is_dir():
            raise ConfigError(
                f"cannot write {output}: directory {output.parent} does not exist",
                hint="create it first or give another path",
            ) from None
        return
    except OSError as error:
        raise ConfigError(f"cannot write {output}: {error.strerror or error}") from None
    if stat.S_ISDIR(current):
        raise UsageError(f"cannot write {output}: it is a directory", hint=hint)
    if not stat.S_ISREG(current):
        raise UsageError(f"cannot write {output}: it is not a regular file", hint=hint)


def write_output_file(output: Path, data: bytes, mode: int, *, hint: str = "give a file path") -> None:
    """A file the user named with `-o`, written beside its target and renamed into place
    (atomic_write): so only a new or a regular file is replaced. A rename would replace a
    directory entry such as `/dev/null` or a FIFO itself instead of writing into it."""
    check_output_target(output, hint=hint)
    try:
        atomic_write(output, data, mode)
    except OSError as error:
        if is_storage_failure(error):
            raise  # a full disk: reported as such by the CLI
        raise ConfigError(
            f"cannot write {output}: {error.strerror or error}",
            hint="check the directory is writable, or give another path",
        ) from None


def create_exclusive(path: Path, data: bytes, mode: int = PRIVATE_FILE_MODE) -> None:
    """Creates `path` with `data`; fails if it already exists (never overwrites)."""
    # mkstemp: a random name opened O_EXCL|O_NOFOLLOW, so a link planted in the directory is
    # never written through.
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".new")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # link() fails with FileExistsError if the target exists (a symlink included): an
        # atomic create-if-absent.
        os.link(tmp_name, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
    fsync_dir(path.parent)


def check_private_file(path: Path, *, what: str) -> None:
    """Refuses a secret-bearing file that is a symlink, belongs to someone else, or that group
    or others can read or write.

    A file whose group bits are an ACL mask is judged by its ACL: it passes when it is ours or
    root's, nobody else has a mode bit, and only we are named in it. That is how systemd
    hands over credentials (`LoadCredential=`, see docs/OPERATIONS.md).

    For a file that is read, `read_private_file` makes the same checks on the open file: this
    one is for files another library opens by path (a TLS client key)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise KeyStoreError(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise KeyStoreError(f"cannot inspect {what} {path}: {exc.strerror}") from None
    if stat.S_ISLNK(info.st_mode) and not _is_our_pipe(path):
        raise _symlink_refused(path, what)
    _judge_private(info, path, path, what)


def read_private_file(path: Path, *, what: str, limit: int = 1 << 20) -> bytes:
    """The content of a secret-bearing file, judged as `check_private_file` does but on the
    file as opened (O_NOFOLLOW), and read from that same descriptor: the file cannot be
    swapped between the check and the read.

    O_NONBLOCK is for the open only: a FIFO planted under the name would otherwise hold the
    open until someone writes into it. It is cleared once the file is judged."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    pipe_link = False
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise KeyStoreError(f"{what} {path} does not exist") from None
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise KeyStoreError(f"cannot open {what} {path}: {exc.strerror}") from None
        if not _is_our_pipe_link(path):
            raise _symlink_refused(path, what) from None
        fd = os.open(path, flags & ~os.O_NOFOLLOW)  # /dev/fd/N: procfs, nobody re-points it
        pipe_link = True
    try:
        info = os.fstat(fd)
        if pipe_link:
            # What was opened through the link must still be our pipe: a link that led
            # elsewhere by the time of the open is judged as the link it is.
            if not (stat.S_ISFIFO(info.st_mode) and info.st_uid == os.geteuid()):
                raise _symlink_refused(path, what)
        elif not stat.S_ISREG(info.st_mode):
            raise KeyStoreError(f"{what} {path} is not a regular file", hint="give the file itself")
        else:
            _judge_private(info, fd, path, what)
        os.set_blocking(fd, True)  # judged: a pipe (process substitution) is read to its end
        chunks, size = [], 0
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise KeyStoreError(f"{what} {path} is more than {limit} bytes", hint="is it the right file?")
        return b"".join(chunks)
    finally:
        os.close(fd)


def _symlink_refused(path: Path, what: str) -> KeyStoreError:
    # Its target's owner and mode say nothing about who can re-point the link.
    return KeyStoreError(
        f"{what} {path} is a symbolic link",
        hint="replace the link by the file itself (mode 0600)",
    )


def _judge_private(info: os.stat_result, acl_of: Path | int, path: Path, what: str) -> None:
    me = os.geteuid()
    if info.st_uid not in (me, 0):
        raise KeyStoreError(
            f"{what} {path} belongs to user {info.st_uid}, who can read and change it",
            hint=f"use a file of your own (user {me}, mode 0600)",
        )
    mode = stat.S_IMODE(info.st_mode)
    if not mode & 0o077:
        return
    hint = f"run `chmod 600 {path}` and check who else could have read it"
    acl = None if mode & 0o007 else read_acl(acl_of)
    if acl is None:
        raise KeyStoreError(f"{what} {path} is readable by group or others (mode {mode:04o})", hint=hint)
    others = others_with_access(acl, {me, 0})  # root reads every file anyway
    if others:
        raise KeyStoreError(
            f"{what} {path} is readable by {', '.join(others)} through its ACL (mode {mode:04o})",
            hint=f"{hint}; `getfacl {path}` shows the ACL",
        )


def _is_our_pipe(path: Path) -> bool:
    """`/dev/fd/N` from the shell's process substitution (`<(pass show cti-exchange)`): a link
    to a pipe only this process holds, which nobody can re-point or read after us."""
    try:
        target = os.stat(path)
    except OSError:
        return False
    return stat.S_ISFIFO(target.st_mode) and target.st_uid == os.geteuid()


def _is_our_pipe_link(path: Path) -> bool:
    """A link `check_private_file` lets through: our pipe, reached by a link that is ours (or
    root's) and that nobody else may use. Only procfs fd links (`/dev/fd/N`, mode 0500 or 0700)
    look like that; an ordinary link shows mode 0777 and is refused, as /dev/stdin is."""
    try:
        link = os.lstat(path)
    except OSError:
        return False
    return (
        stat.S_ISLNK(link.st_mode)
        and link.st_uid in (os.geteuid(), 0)
        and not stat.S_IMODE(link.st_mode) & 0o077
        and _is_our_pipe(path)
    )


def read_text(path: Path, *, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{what} {path} is not UTF-8 text (byte {exc.start})", hint="save it as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None


def read_bytes(path: Path, *, what: str, limit: int | None = None) -> bytes:
    """The file's bytes; with `limit`, at most that many: a file's size says nothing of a pipe
    or a device (`/dev/zero` has size 0), so the limit holds on what is read, not on stat."""
    try:
        size = path.stat().st_size
        if limit is not None and size > limit:
            raise ConfigError(f"{what} {path} is {size} bytes, more than the {limit}-byte limit")
        if limit is None:
            return path.read_bytes()
        with path.open("rb") as stream:
            data = stream.read(limit + 1)
        if len(data) > limit:
            raise ConfigError(f"{what} {path} is more than the {limit}-byte limit")
        return data
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} {path} is a directory, not a file") from None
    except PermissionError:
        raise ConfigError(f"cannot read {what} {path}: permission denied") from None


def read_trusted_file(path: Path, *, what: str, hint: str, directory: str, limit: int = 1 << 22) -> bytes:
    """The content of a file that says whom to trust (the config, pinned partner keys, our
    public key ring): readable by anyone, but changed by nobody but us (or root). A file that
    group or others can write, or that belongs to someone else, is refused (ConfigError, exit
    2) before its content is used: whoever can write it could pin their own key or point the
    exchange at their server. Judged on the file as opened and read from that descriptor; a
    symlink is followed (a config kept elsewhere), and the directory the file really lies in
    is judged as the home is (check_private_dir), since whoever can write there can swap it.
    `hint`: what to check in the file once its mode is fixed; `directory`: what its directory
    is called in messages ("profile home")."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} {path} is a directory, not a file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{what} {path} is not a regular file", hint="give the file itself")
        me = os.geteuid()
        if info.st_uid not in (me, 0):
            raise ConfigError(
                f"{what} {path} belongs to user {info.st_uid}, who could change it",
                hint=f"use a file of your own (user {me}); {hint}",
            )
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o022:
            raise ConfigError(
                f"{what} {path} is writable by group or others (mode {mode:04o})",
                hint=f"run `chmod go-w {path}`; {hint}",
            )
        check_private_dir(path.parent, what=directory)  # a link to a directory: its target
        real = Path(os.path.realpath(path)).parent
        if real != Path(os.path.realpath(path.parent)):  # the file itself is a link
            check_private_dir(real, what=f"the directory {what} {path} links into")
        if info.st_size > limit:
            raise ConfigError(f"{what} {path} is {info.st_size} bytes, more than the {limit}-byte limit")
        os.set_blocking(fd, True)
        chunks, size = [], 0
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise ConfigError(f"{what} {path} is more than the {limit}-byte limit")
        return b"".join(chunks)
    finally:
        os.close(fd)
