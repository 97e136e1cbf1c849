"""Secret files (the key passphrase file, TAXII secret files) are opened once and judged and read
through that one descriptor: swapping the file, or re-pointing a link, between the check and the
read changes nothing. The swaps are made deterministic by doing them inside `os.open`."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cti_exchange.errors import ConfigError, KeyStoreError
from cti_exchange.home import safe_files
from cti_exchange.home.passphrase import PASSPHRASE_FILE_ENV, read_passphrase
from cti_exchange.home.safe_files import read_private_file
from cti_exchange.profile.model import TaxiiSettings
from cti_exchange.taxii.secrets import resolve_secret
from tests.conftest import PASSPHRASE, Agency

_real_open = os.open


def _private(path: Path, data: bytes = b"judged\n", mode: int = 0o600) -> Path:
    path.write_bytes(data)
    path.chmod(mode)
    return path


@contextmanager
def _pipe(data: bytes = b"piped\n") -> Iterator[tuple[Path, int]]:
    """/dev/fd/N for a pipe holding `data`, as the shell's `<(...)` gives it."""
    reader, writer = os.pipe()
    try:
        os.write(writer, data)
        os.close(writer)
        yield Path(f"/dev/fd/{reader}"), reader
    finally:
        os.close(reader)


def _after_open(monkeypatch: pytest.MonkeyPatch, path: Path, swap: Callable[[], None]) -> None:
    """Runs `swap` once, right after `path` has been opened: what a racing user would do."""
    done: list[bool] = []

    def opening(name: str | os.PathLike[str], flags: int, *args: int, **kwargs: int) -> int:
        fd = _real_open(name, flags, *args, **kwargs)
        if Path(name) == path and not done:
            done.append(True)
            swap()
        return fd

    monkeypatch.setattr(os, "open", opening)


# -- judged and read through one descriptor ---------------------------------------------------


def test_the_content_read_is_that_of_the_file_judged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = _private(tmp_path / "secret")
    decoy = _private(tmp_path / "decoy", b"swapped in\n")
    _after_open(monkeypatch, secret, lambda: os.replace(decoy, secret))
    assert read_private_file(secret, what="secret file") == b"judged\n"
    assert secret.read_bytes() == b"swapped in\n"  # the swap did happen


def test_a_loose_file_swapped_for_a_private_one_after_the_open_is_still_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = _private(tmp_path / "secret", mode=0o644)
    tidy = _private(tmp_path / "tidy")
    _after_open(monkeypatch, secret, lambda: os.replace(tidy, secret))
    with pytest.raises(KeyStoreError, match=r"readable by group or others \(mode 0644\)"):
        read_private_file(secret, what="secret file")


class _OsWithoutLookups:
    """`os` as safe_files sees it, minus looking files up by name; its opens are recorded."""

    def __init__(self) -> None:
        self.open_flags: list[int] = []

    def open(self, name: Path, flags: int) -> int:
        self.open_flags.append(flags)
        return _real_open(name, flags)

    def __getattr__(self, name: str) -> object:
        if name in ("stat", "lstat"):
            raise AssertionError(f"os.{name}: a secret file looked up by its name")
        return getattr(os, name)


def test_a_regular_file_is_judged_on_the_open_descriptor_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Owner, type and mode come from fstat on the descriptor the content is read from, links
    are refused by O_NOFOLLOW at that open: no stat or lstat of the name, which could see
    another file than the one read."""
    secret = _private(tmp_path / "secret")
    fake_os = _OsWithoutLookups()
    monkeypatch.setattr(safe_files, "os", fake_os)
    assert read_private_file(secret, what="secret file") == b"judged\n"
    wanted = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    assert len(fake_os.open_flags) == 1 and fake_os.open_flags[0] & wanted == wanted


# -- links: only /dev/fd/N to our own pipe ----------------------------------------------------


def test_an_ordinary_link_to_our_pipe_is_refused(tmp_path: Path) -> None:
    """Only procfs fd links (mode 0500/0700) pass, as before the single open: an ordinary link
    (mode 0777) could be re-pointed by whoever owns the directory it is in."""
    with _pipe() as (_, reader):
        link = tmp_path / "passphrase"
        link.symlink_to(f"/proc/self/fd/{reader}")
        with pytest.raises(KeyStoreError, match=f"passphrase file {link} is a symbolic link"):
            read_private_file(link, what="passphrase file")


def test_a_dev_fd_link_that_no_longer_leads_to_a_pipe_at_the_open_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/dev/fd/N is looked at (a pipe of ours), then re-opened through the link: what the
    re-open gives must still be that pipe, not a file put behind descriptor N meanwhile."""
    elsewhere = _private(tmp_path / "another-secret", b"not for the partner\n")
    with _pipe() as (path, reader):

        def opening(name: str | os.PathLike[str], flags: int, *args: int, **kwargs: int) -> int:
            if Path(name) == path and not flags & os.O_NOFOLLOW:
                other = _real_open(elsewhere, os.O_RDONLY)
                os.dup2(other, reader)  # the re-open now leads to `elsewhere`
                os.close(other)
            return _real_open(name, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", opening)
        with pytest.raises(KeyStoreError, match=f"secret file {path} is a symbolic link"):
            read_private_file(path, what="secret file")


def test_process_substitution_waits_for_a_slow_writer() -> None:
    """The open is non-blocking (a planted FIFO must not hang it), the read is not: `<(pass show
    ...)` may write after we open it."""
    reader, writer = os.pipe()

    def write_late() -> None:
        time.sleep(0.2)
        os.write(writer, b"late ")
        time.sleep(0.1)
        os.write(writer, b"but whole\n")
        os.close(writer)

    thread = threading.Thread(target=write_late)
    thread.start()
    try:
        assert read_private_file(Path(f"/dev/fd/{reader}"), what="passphrase file") == b"late but whole\n"
    finally:
        thread.join()
        os.close(reader)


def test_a_planted_fifo_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "passphrase"
    os.mkfifo(fifo, 0o600)
    started = time.monotonic()
    with pytest.raises(KeyStoreError, match=f"passphrase file {fifo} is not a regular file"):
        read_private_file(fifo, what="passphrase file")
    assert time.monotonic() - started < 5


# -- the callers: the passphrase file and TAXII secret files ----------------------------------


def _forbid_reads_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fails any read of a file by its name, the way both secrets were read before the single
    open (a check by name, then `Path.read_text` or `safe_files.read_text`)."""

    def by_path(*args: object, **kwargs: object) -> None:
        raise AssertionError("a secret file read by its name")

    for name in ("read_text", "read_bytes", "open"):
        monkeypatch.setattr(Path, name, by_path)
    for name in ("read_text", "read_bytes", "check_private_file"):
        monkeypatch.setattr(safe_files, name, by_path)


def _bearer(secret_file: str) -> TaxiiSettings:
    return TaxiiSettings(api_root="https://taxii.example/api/", auth="bearer", secret_file=secret_file)


def _token(secret_file: str | Path, home: Path) -> str | None:
    return resolve_secret(_bearer(str(secret_file)), partner="cert-in", base_dir=home, environ={})


def test_the_passphrase_file_is_read_through_one_descriptor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _private(tmp_path / "passphrase", PASSPHRASE.encode() + b"\n")
    _forbid_reads_by_name(monkeypatch)
    assert read_passphrase(environ={PASSPHRASE_FILE_ENV: str(path)}) == PASSPHRASE
    with _pipe(PASSPHRASE.encode() + b"\n") as (piped, _):
        assert read_passphrase(environ={PASSPHRASE_FILE_ENV: str(piped)}) == PASSPHRASE


def test_a_taxii_secret_file_is_read_through_one_descriptor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, outside = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    outside.mkdir()
    _private(home / "taxii.secret", b"in-home-token\n")
    _private(outside / "taxii.secret", b"outside-token\n")
    _forbid_reads_by_name(monkeypatch)
    assert _token("taxii.secret", home) == "in-home-token"
    assert _token(outside / "taxii.secret", home) == "outside-token"
    with _pipe(b"piped-token\n") as (piped, _):
        assert _token(piped, home) == "piped-token"


def test_a_taxii_secret_file_outside_the_home_is_judged_like_one_inside(tmp_path: Path) -> None:
    home, outside = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    outside.mkdir()
    loose = _private(outside / "taxii.secret", b"outside-token\n", mode=0o640)
    link = outside / "taxii.link"
    link.symlink_to(_private(outside / "real.secret"))
    for path, reason in ((loose, "readable by group or others"), (link, "is a symbolic link")):
        with pytest.raises(KeyStoreError, match=reason) as caught:
            _token(path, home)
        assert caught.value.exit_code == 2 and "\n" not in str(caught.value)


def test_a_secret_s_content_is_never_in_an_error_or_a_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = _private(tmp_path / "taxii.secret", b"hunter2\x07token\n")
    with pytest.raises(ConfigError) as header:
        _token(secret, tmp_path)
    passphrase = _private(tmp_path / "passphrase", "hunter2 st\xe2ple\n".encode("latin-1"))
    with pytest.raises(ConfigError) as not_utf8:
        read_passphrase(environ={PASSPHRASE_FILE_ENV: str(passphrase)})
    for error in (header.value, not_utf8.value):
        assert error.exit_code == 2
        assert "hunter2" not in str(error) and "hunter2" not in repr(error.__dict__)
    assert "hunter2" not in caplog.text


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash for <(...)")
def test_init_takes_the_passphrase_from_process_substitution(tmp_path: Path) -> None:
    """The real thing: bash's `<(...)` (its writer still running when we open it), through the
    CLI in a process of its own."""
    script = (
        f'{PASSPHRASE_FILE_ENV}=<(sleep 0.2; printf "%s\\n" "$PASSPHRASE") '
        '"$PYTHON" -m cti_exchange --home "$HOME_DIR" init --agency cert-fr --name CERT-FR'
    )
    env = {
        **os.environ,
        "PASSPHRASE": PASSPHRASE,
        "PYTHON": sys.executable,
        "HOME_DIR": str(tmp_path / "fr"),
        "CTI_EXCHANGE_PASSPHRASE": "",
    }
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert PASSPHRASE not in done.stdout + done.stderr
    assert (tmp_path / "fr" / "keys" / "private.jwe").exists()


def test_an_empty_passphrase_file_is_named_with_the_fix(cert_fr: Agency, tmp_path: Path) -> None:
    """ "the passphrase is empty" (exit 3) named neither the file nor what to do."""
    empty = tmp_path / "passphrase"
    empty.write_bytes(b"\n")
    empty.chmod(0o600)
    result = cert_fr.run(
        "keys", "export", "-o", str(tmp_path / "k.json"), env={PASSPHRASE_FILE_ENV: str(empty)}
    )
    assert result.exit_code == 3, result.stderr
    assert f"the passphrase file {empty} ({PASSPHRASE_FILE_ENV}) is empty" in result.stderr
    assert "write the key passphrase in it" in result.stderr and result.stderr.count("\n") == 1
