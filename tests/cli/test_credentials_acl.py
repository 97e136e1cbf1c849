"""Secret files handed over by systemd (`LoadCredential=`): mode 0440 through a POSIX ACL that
names only the service user. Accepted when nobody else can read the file, refused (naming who
can) otherwise. The ACLs are real, set on real files; the test is skipped only where the file
system has no ACLs."""

from __future__ import annotations

import errno
import os
import stat
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cti_exchange.home.posix_acl import AclError, others_with_access, parse_acl
from tests.conftest import PASSPHRASE, CliResult, run_cli

USER_OBJ, USER, GROUP_OBJ, GROUP, MASK, OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
UNDEFINED = 0xFFFFFFFF
STRANGER = 65534  # nobody


def acl(*entries: tuple[int, int, int]) -> bytes:
    """The xattr bytes; the kernel wants the entries in tag order (owner, users, group, ...)."""
    ordered = sorted(entries, key=lambda entry: entry[0])
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *entry) for entry in ordered)


def systemd_credential(me: int, *extra: tuple[int, int, int], group: int = 0) -> bytes:
    """What systemd sets on a credential: owner r, the service user r, mask r, nothing else."""
    return acl(
        (USER_OBJ, 4, UNDEFINED),
        (USER, 4, me),
        *extra,
        (GROUP_OBJ, group, UNDEFINED),
        (MASK, 4, UNDEFINED),
        (OTHER, 0, UNDEFINED),
    )


def _credential_file(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "credentials" / "passphrase"
    path.parent.mkdir(mode=0o700, exist_ok=True)
    path.write_text(PASSPHRASE + "\n")
    path.chmod(0o400)
    try:
        os.setxattr(path, "system.posix_acl_access", data)
    except AttributeError:
        pytest.skip("no extended attributes on this platform")
    except OSError as exc:
        if exc.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        pytest.skip(f"no POSIX ACLs on this file system: {exc}")
    return path


def _init(tmp_path: Path, passphrase_file: Path, name: str) -> CliResult:
    return run_cli(
        "init",
        "--agency",
        "cert-fr",
        "--name",
        "CERT-FR",
        home=tmp_path / name,
        env={"CTI_EXCHANGE_PASSPHRASE": "", "CTI_EXCHANGE_PASSPHRASE_FILE": str(passphrase_file)},
    )


def test_a_systemd_credential_readable_only_by_us_is_accepted(tmp_path: Path) -> None:
    path = _credential_file(tmp_path, systemd_credential(os.geteuid()))
    assert stat.S_IMODE(path.stat().st_mode) == 0o440  # the mask shows as group bits
    result = _init(tmp_path, path, "fr")
    assert result.exit_code == 0, result.stderr
    shown = run_cli("keys", "export", "-o", str(tmp_path / "x.json"), home=tmp_path / "fr")
    assert shown.exit_code == 0, shown.stderr  # the file's passphrase unlocks the keys


@pytest.mark.parametrize(
    ("extra", "group", "named"),
    [
        ((USER, 4, STRANGER), 0, f"user {STRANGER}"),
        ((GROUP, 4, STRANGER), 0, f"group {STRANGER}"),
        (None, 4, "group"),
    ],
    ids=["another user", "a named group", "the owning group"],
)
def test_an_acl_that_lets_someone_else_read_is_refused(
    tmp_path: Path, extra: tuple[int, int, int] | None, group: int, named: str
) -> None:
    data = systemd_credential(os.geteuid(), *([extra] if extra else []), group=group)
    path = _credential_file(tmp_path, data)
    result = _init(tmp_path, path, "fr")
    assert result.exit_code == 2
    assert f"readable by {named} through its ACL" in result.stderr and "getfacl" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_mask_without_read_hides_named_entries() -> None:
    entries = parse_acl(
        acl((USER_OBJ, 6, UNDEFINED), (USER, 4, STRANGER), (GROUP_OBJ, 4, UNDEFINED), (MASK, 0, UNDEFINED))
    )
    assert others_with_access(entries, {0}) == []
    assert others_with_access(entries[:-1], {0}) == [f"user {STRANGER}", "group"]  # no mask


def test_world_readable_is_refused_whatever_the_acl(tmp_path: Path) -> None:
    path = _credential_file(tmp_path, systemd_credential(os.geteuid()))
    path.chmod(0o444)
    result = _init(tmp_path, path, "fr")
    assert result.exit_code == 2 and "readable by group or others (mode 0444)" in result.stderr


@given(st.binary(max_size=200))
def test_parse_acl_takes_any_bytes(data: bytes) -> None:
    try:
        entries = parse_acl(data)
    except AclError:
        return
    assert len(entries) == (len(data) - 4) // 8
    others_with_access(entries, {0})
