"""Opening the store: a file that cannot be opened as one is not held open by the error."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cti_exchange.errors import ConfigError
from cti_exchange.store.database import Database


def _open_in_this_process(path: Path) -> list[str]:
    """The descriptors of this process on `path` or its -wal/-shm (Linux /proc)."""
    names = {str(path.resolve()) + suffix for suffix in ("", "-wal", "-shm")}
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the listing's own descriptor, closed meanwhile
        if target in names:
            found.append(target)
    return found


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_a_file_that_is_not_a_store_is_closed_when_the_error_is_raised(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    path.write_bytes(b"not a database, but not empty either\n" * 200)
    with pytest.raises(ConfigError) as raised:
        Database(path)
    # The error is still held here, as a log or --debug would hold it, and with it the frame
    # of Database.__init__: the store must be closed all the same.
    assert "file is not a database" in str(raised.value)
    assert _open_in_this_process(path) == []
