"""safe_files against a local user who can reach our directories: writes never follow a planted
link, secret files are judged by the file itself (never through a link), directories must be
writable by us alone."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cti_exchange.errors import ConfigError, KeyStoreError
from cti_exchange.home.safe_files import (
    atomic_write,
    check_private_dir,
    check_private_file,
    create_exclusive,
    ensure_private_dir,
    read_private_file,
    read_text,
)

STRANGER = 65534  # nobody


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _private(path: Path, data: bytes = b"secret\n") -> Path:
    path.write_bytes(data)
    path.chmod(0o600)
    return path


@contextmanager
def _process_substitution(data: bytes) -> Iterator[Path]:
    """/dev/fd/N for a pipe holding `data`, as the shell's `<(...)` gives it."""
    reader, writer = os.pipe()
    try:
        os.write(writer, data)
        os.close(writer)
        yield Path(f"/dev/fd/{reader}")
    finally:
        os.close(reader)


def _as_root_only() -> None:
    if os.geteuid() != 0:
        pytest.skip("giving a file to another user needs root")


# -- create_exclusive, atomic_write -----------------------------------------------------------


def test_create_exclusive_never_writes_through_a_planted_link(tmp_path: Path) -> None:
    victim = _private(tmp_path / "victim", b"precious\n")
    (tmp_path / ".config.toml.new").symlink_to(victim)  # the name it used to write to
    create_exclusive(tmp_path / "config.toml", b"ours\n", 0o600)
    assert victim.read_bytes() == b"precious\n"
    assert (tmp_path / "config.toml").read_bytes() == b"ours\n"
    assert _mode(tmp_path / "config.toml") == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [".config.toml.new", "config.toml", "victim"]


@pytest.mark.parametrize("existing", ["file", "link", "dangling link"])
def test_create_exclusive_never_replaces_what_is_there(tmp_path: Path, existing: str) -> None:
    victim = _private(tmp_path / "victim", b"precious\n")
    target = tmp_path / "private.jwe"
    if existing == "file":
        target.write_bytes(b"precious\n")
    else:
        target.symlink_to(victim if existing == "link" else tmp_path / "nowhere")
    with pytest.raises(FileExistsError):
        create_exclusive(target, b"ours\n")
    assert victim.read_bytes() == b"precious\n" and not (tmp_path / "nowhere").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["private.jwe", "victim"]  # no temp left


def test_create_exclusive_gives_the_mode_asked_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        create_exclusive(tmp_path / "public.json", b"{}\n", 0o644)
    finally:
        os.umask(old)
    assert _mode(tmp_path / "public.json") == 0o644


def test_atomic_write_replaces_a_link_instead_of_following_it(tmp_path: Path) -> None:
    victim = _private(tmp_path / "victim", b"precious\n")
    target = tmp_path / "public.json"
    target.symlink_to(victim)
    atomic_write(target, b"ours\n", 0o644)
    assert victim.read_bytes() == b"precious\n"
    assert not target.is_symlink() and target.read_bytes() == b"ours\n" and _mode(target) == 0o644


# -- check_private_file ----------------------------------------------------------------------


def test_our_0600_file_passes(tmp_path: Path) -> None:
    check_private_file(_private(tmp_path / "secret"), what="secret")


def test_a_link_to_a_private_file_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(_private(tmp_path / "secret"))
    with pytest.raises(KeyStoreError, match="is a symbolic link") as caught:
        check_private_file(link, what="secret")
    assert caught.value.hint and "replace the link" in caught.value.hint


def test_a_dangling_link_is_refused_as_a_link(tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "nowhere")
    with pytest.raises(KeyStoreError, match="is a symbolic link"):
        check_private_file(link, what="secret")


def test_process_substitution_passes(tmp_path: Path) -> None:
    """`CTI_EXCHANGE_PASSPHRASE_FILE=<(pass show cti)`: /dev/fd/N is a link to a pipe only
    this process holds."""
    with _process_substitution(b"correct horse\n") as path:
        assert path.is_symlink()
        check_private_file(path, what="passphrase file")
        assert read_text(path, what="passphrase file") == "correct horse\n"


def test_a_0600_file_of_another_user_is_refused(tmp_path: Path) -> None:
    _as_root_only()
    path = _private(tmp_path / "secret")
    os.chown(path, STRANGER, STRANGER)
    with pytest.raises(KeyStoreError, match=f"belongs to user {STRANGER}"):
        check_private_file(path, what="secret")


def test_a_root_file_passes_for_another_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Root reads every file anyway: a root-owned secret handed to a service user is fine."""
    _as_root_only()
    path = _private(tmp_path / "secret")
    monkeypatch.setattr(os, "geteuid", lambda: STRANGER)
    check_private_file(path, what="secret")


# -- directories -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o1777], ids=oct)
def test_a_directory_others_can_write_into_is_refused(tmp_path: Path, mode: int) -> None:
    directory = tmp_path / "keys"
    directory.mkdir()
    directory.chmod(mode)
    with pytest.raises(ConfigError, match="writable by group or others") as caught:
        check_private_dir(directory, what="key directory")
    assert caught.value.hint and f"chmod 700 {directory}" in caught.value.hint


@pytest.mark.parametrize("mode", [0o700, 0o750, 0o755], ids=oct)
def test_a_directory_only_we_can_write_into_passes(tmp_path: Path, mode: int) -> None:
    directory = tmp_path / "keys"
    directory.mkdir()
    directory.chmod(mode)
    check_private_dir(directory, what="key directory")


def test_a_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    _as_root_only()
    directory = tmp_path / "keys"
    directory.mkdir(mode=0o700)
    os.chown(directory, STRANGER, STRANGER)
    with pytest.raises(ConfigError, match=f"belongs to user {STRANGER}"):
        check_private_dir(directory, what="key directory")
    with pytest.raises(ConfigError, match=f"belongs to user {STRANGER}"):
        ensure_private_dir(directory, what="key directory")


def test_a_linked_directory_is_judged_by_its_target(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir(mode=0o700)
    link = tmp_path / "keys"
    link.symlink_to(target)
    check_private_dir(link, what="key directory")
    target.chmod(0o777)
    with pytest.raises(ConfigError, match="writable by group or others"):
        check_private_dir(link, what="key directory")


def test_a_file_is_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a directory"):
        check_private_dir(_private(tmp_path / "keys"), what="key directory")


def test_ensure_private_dir_tightens_our_own_directory(tmp_path: Path) -> None:
    directory = tmp_path / "home"
    directory.mkdir()
    directory.chmod(0o777)
    ensure_private_dir(directory / "keys", what="key directory")
    ensure_private_dir(directory, what="profile home")
    assert _mode(directory) == 0o700 and _mode(directory / "keys") == 0o700


# -- read_private_file: judged and read through one descriptor ---------------------------------


def test_read_private_file_reads_what_it_judged(tmp_path: Path) -> None:
    assert read_private_file(_private(tmp_path / "secret"), what="secret file") == b"secret\n"


def test_read_private_file_never_follows_a_link(tmp_path: Path) -> None:
    """O_NOFOLLOW: a link put in place after any earlier look is refused at the open itself."""
    target = _private(tmp_path / "target")
    link = tmp_path / "secret"
    link.symlink_to(target)
    with pytest.raises(KeyStoreError, match="is a symbolic link"):
        read_private_file(link, what="secret file")


def test_read_private_file_judges_the_open_file(tmp_path: Path) -> None:
    loose = _private(tmp_path / "secret")
    loose.chmod(0o644)
    with pytest.raises(KeyStoreError, match="readable by group or others"):
        read_private_file(loose, what="secret file")
    with pytest.raises(KeyStoreError, match="not a regular file"):
        read_private_file(tmp_path, what="secret file")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    # A FIFO planted under the name: refused, never waited on (O_NONBLOCK at the open).
    with pytest.raises(KeyStoreError):
        read_private_file(fifo, what="secret file")


def test_read_private_file_takes_process_substitution(tmp_path: Path) -> None:
    with _process_substitution(b"correct horse\n") as path:
        assert read_private_file(path, what="passphrase file") == b"correct horse\n"


def test_read_private_file_refuses_another_users_file(tmp_path: Path) -> None:
    _as_root_only()
    secret = _private(tmp_path / "secret")
    os.chown(secret, STRANGER, STRANGER)
    with pytest.raises(KeyStoreError, match="belongs to user"):
        read_private_file(secret, what="secret file")
