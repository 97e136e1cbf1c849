"""The store holds partner intelligence, TLP:RED included: it is made 0600 whenever it is
opened, not only when it is created (a first run interrupted in between left it as the umask
made it, for good)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cti_exchange.store.store import Store
from tests.conftest import Agency
from tests.triage.conftest import indicator, put, store_path


def test_a_store_left_readable_is_made_private_at_the_next_command(cert_in: Agency) -> None:
    put(cert_in, [indicator("mode-check.example")])
    path = store_path(cert_in)
    files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    for file in files:
        if file.exists():
            file.chmod(0o644)
    listed = cert_in.run("triage", "list", "--json")
    assert listed.exit_code == 0, listed.stderr
    for file in files:
        if file.exists():
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_store_reached_through_a_symlink_has_its_log_made_private(tmp_path: Path) -> None:
    """SQLite keeps `-wal` and `-shm` beside the real file, not beside the link: those are
    the files made 0600."""
    (tmp_path / "disk").mkdir()
    real = tmp_path / "disk" / "store.sqlite"
    link = tmp_path / "store.sqlite"
    link.symlink_to(real)
    with Store(real) as holder:  # keeps the log in place while the next one opens
        with holder.db.transaction() as conn:
            conn.execute("INSERT INTO pull_cursors (partner, collection, updated_at) VALUES ('x', 'y', 'z')")
        log = [real.with_name("store.sqlite-wal"), real.with_name("store.sqlite-shm")]
        for file in log:
            file.chmod(0o644)
        with Store(link):
            pass
        for file in log:
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file


STRANGER = 65534  # nobody


def test_a_store_of_another_user_is_refused(cert_in: Agency) -> None:
    """Found on a walkthrough: a store owned by another user (world-writable, too) was used
    without a word and `doctor` said ok. The store is given to `nobody`, as tests/cli/
    test_safe_files.py gives key files away: chown needs root."""
    if os.geteuid() != 0:
        pytest.skip("giving a file to another user needs root")
    put(cert_in, [indicator("owner-check.example")])
    path = store_path(cert_in)
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file.exists():
            os.chown(file, STRANGER, STRANGER)
    path.chmod(0o666)
    listed = cert_in.run("triage", "list")
    assert listed.exit_code == 2
    assert f"the store {path} belongs to user {STRANGER}, who can read and change it" in listed.stderr
    assert f"`chown 0 {path}`" in listed.stderr
    doctor = cert_in.run("doctor", "--offline", "--json")
    store_check = next(c for c in doctor.json()["checks"] if c["name"] == "store")
    assert store_check["status"] == "fail" and "restore" not in store_check["fix"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o666  # refused, not used
