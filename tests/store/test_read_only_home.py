"""A profile home on a read-only file system (a read-only mount, or one the kernel remounted
read-only after errors) is named as such, exit 2, with the fix (walkthrough T3, D3): not an
internal error on `.lock`, not "check that the file is a cti-exchange store", and not doctor's
"restore the store from backup" for a healthy store.

The mount is a read-only bind mount in a private mount namespace (`unshare -m`), which needs
root; the commands run as a process of their own inside it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PASSPHRASE, Agency

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="a read-only bind mount needs root and unshare",
)


def _on_read_only_mount(directory: Path, *args: str) -> list[tuple[int, str]]:
    """Each `cti-exchange --home DIRECTORY ARGS...` (args split on '|'), run with DIRECTORY
    mounted read-only: (exit code, stdout and stderr) of each."""
    commands = [a.split() for a in " ".join(args).split("|")]
    script = f"mount --bind {directory} {directory} && mount -o remount,bind,ro {directory} || exit 99\n"
    for i, command in enumerate(commands):
        line = " ".join([sys.executable, "-m", "cti_exchange", "--home", str(directory), *command])
        script += f"{line} >{directory.parent}/out{i} 2>{directory.parent}/err{i}; echo $? >> {directory.parent}/codes\n"
    env = dict(os.environ, CTI_EXCHANGE_PASSPHRASE=PASSPHRASE)
    done = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script], env=env, timeout=120, check=False
    )
    if done.returncode == 99:
        pytest.skip("cannot make a read-only bind mount here")
    codes = (directory.parent / "codes").read_text().split()
    return [
        (int(code), (directory.parent / f"out{i}").read_text() + (directory.parent / f"err{i}").read_text())
        for i, code in enumerate(codes)
    ]


def test_a_read_only_profile_home_is_named_with_its_fix(cert_in: Agency) -> None:
    home = cert_in.home
    (home / "logs").mkdir(mode=0o700, exist_ok=True)
    results = _on_read_only_mount(
        home, "pull | keys rotate --use sig | triage list | status | doctor --offline"
    )
    (pull, rotate, triage, status, doctor) = results
    for code, stderr in (pull, rotate):
        assert code == 2, stderr
        assert stderr.count("\n") == 1, stderr  # nothing on stdout either
        assert f"cannot write in the profile home {home} (Read-only file system)" in stderr
        assert "remount it read-write" in stderr
    for code, stderr in (triage, status, doctor):
        assert code == 2, stderr
        assert (
            f"cannot write the store {home / 'store.sqlite'}: {home} is not writable (Read-only file system)"
            in stderr
        )
        assert "remount it read-write" in stderr
        assert "cti-exchange store" not in stderr and "restore" not in stderr
