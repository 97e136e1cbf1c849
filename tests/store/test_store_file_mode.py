"""The store holds partner intelligence, TLP:RED included: it is made 0600 whenever it is
opened, not only when it is created (a first run interrupted in between left it as the umask
made it, for good)."""

from __future__ import annotations

import stat

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
