"""A store written by a newer release (a schema version this one does not know) is refused
before anything is written to it (walkthrough D2): this release would write rows without the
columns or tables the newer one relies on."""

from __future__ import annotations

import hashlib
import sqlite3

from cti_exchange.store.migrations import MIGRATIONS
from tests.conftest import Agency

KNOWN = max(version for version, _ in MIGRATIONS)


def _digest(agency: Agency) -> str:
    return hashlib.sha256(
        b"".join(p.read_bytes() for p in sorted(agency.home.glob("store.sqlite*")))
    ).hexdigest()


def test_a_store_of_a_newer_schema_is_refused_and_left_unwritten(cert_in: Agency) -> None:
    path = cert_in.home / "store.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("INSERT INTO schema_migrations (version) VALUES (?)", (KNOWN + 1,))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    before = _digest(cert_in)
    expected = (
        f"the store {path} was written by a newer cti-exchange (schema {KNOWN + 1}; "
        f"this release knows {KNOWN}); install that release or restore a backup"
    )
    for args in (("status",), ("triage", "list"), ("audit", "verify")):
        result = cert_in.run(*args)
        assert result.exit_code == 2, (args, result.stderr)
        assert result.stderr == f"cti-exchange: error: {expected}\n"
    assert _digest(cert_in) == before  # no audit record, no migration, nothing
    doctor = cert_in.run("doctor", "--offline")
    assert doctor.exit_code == 2, doctor.stderr
    assert f"store: {expected}" in doctor.stderr
