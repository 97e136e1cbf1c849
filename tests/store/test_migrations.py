"""Schema migrations: a fresh store gets them all; an older store is upgraded with its data."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from cti_exchange.store import migrations, text_index
from cti_exchange.store.store import Store
from tests.conftest import Agency


def test_a_fresh_store_has_every_migration(tmp_path: Path) -> None:
    with Store(tmp_path / "store.sqlite") as store:
        assert store.db.schema_version == migrations.MIGRATIONS[-1][0]
        assert store.db.integrity_check() == "ok"


def test_an_old_store_is_upgraded_keeping_its_sent_log(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrations.apply_migrations(conn, migrations.MIGRATIONS[:3]) == 3  # a store of version 3
    conn.execute(
        "INSERT INTO sent_envelopes (envelope_id, created_at, bundle_id, object_count, recipients, "
        "digest, artifact) VALUES ('e1', 't', 'bundle--1', 1, '[]', 'd', '{}')"
    )
    conn.execute(
        "INSERT INTO sent_objects (envelope_id, object_id, version, type, ioc_type, value, tlp, "
        "created) VALUES ('e1', 'indicator--1', 'v1', 'indicator', 'ipv4-addr', '203.0.113.9', "
        "'amber', '2026-01-01T00:00:00.000Z')"
    )
    conn.close()

    with Store(path) as store:
        assert store.db.schema_version == migrations.MIGRATIONS[-1][0]
        conn = store.db.conn
        assert conn.execute("SELECT object_id, value, first_created FROM shared_objects").fetchall() == [
            ("indicator--1", "203.0.113.9", "2026-01-01T00:00:00.000Z")
        ]
        assert store.requests.sealed_object_ids("none", "x") == set()
        assert conn.execute("SELECT object_ids FROM sent_envelopes").fetchone() == ('["indicator--1"]',)


def test_a_version_4_store_keys_received_envelopes_per_sender_keeping_them(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrations.apply_migrations(conn, migrations.MIGRATIONS[:4]) == 4
    conn.execute(
        "INSERT INTO envelopes_in (envelope_id, partner, sender, sequence, digest, issued_at, "
        "received_at, signer_kid, signer_thumbprint, bundle_id, object_count, artifact_id, "
        "jws_deflated) VALUES ('e1', 'cert-fr', 'cert-fr', 1, 'd', 't', 't', 'k', 'th', "
        "'bundle--1', 1, 'artifact--1', x'00')"
    )
    conn.execute(
        "INSERT INTO receipts_owed (envelope_id, partner, digest, accepted_at) "
        "VALUES ('e1', 'cert-fr', 'd', 't')"
    )
    conn.execute(
        "INSERT INTO object_sources (object_id, version, envelope_id, partner, received_at) "
        "VALUES ('indicator--1', 'v1', 'e1', 'cert-fr', 't')"
    )
    conn.close()

    with Store(path) as store:
        assert store.db.schema_version == migrations.MIGRATIONS[-1][0]
        assert store.db.integrity_check() == "ok"
        assert store.inbound.seen_envelope("cert-fr", "e1")
        assert not store.inbound.seen_envelope("cert-de", "e1")
        assert store.inbound.accepted_artifact("cert-fr", "artifact--1")
        assert not store.inbound.accepted_artifact("cert-de", "artifact--1")
        conn = store.db.conn
        # The same id from another sender now fits beside it, in every table keyed by it.
        with store.db.transaction() as tx:
            tx.execute(
                "INSERT INTO envelopes_in SELECT 'e1', 'cert-de', 'cert-de', sequence, digest, "
                "issued_at, received_at, signer_kid, signer_thumbprint, bundle_id, object_count, "
                "artifact_id, jws_deflated FROM envelopes_in"
            )
            tx.execute(
                "INSERT INTO receipts_owed (envelope_id, partner, digest, accepted_at) VALUES ('e1', 'cert-de', 'd', 't')"
            )
            tx.execute(
                "INSERT INTO object_sources (object_id, version, envelope_id, partner, received_at) "
                "VALUES ('indicator--1', 'v1', 'e1', 'cert-de', 't')"
            )
        assert conn.execute("SELECT COUNT(*) FROM receipts_owed").fetchone() == (2,)
        assert conn.execute("SELECT COUNT(*) FROM object_sources").fetchone() == (2,)


def test_an_emptied_store_is_refused_not_started_over(cert_in: Agency) -> None:
    """SQLite would take the empty file for a new store and forget every envelope seen."""
    assert cert_in.run("triage", "list").exit_code == 0
    path = cert_in.home / "store.sqlite"
    assert path.stat().st_size > 0
    for leftover in (path.with_name("store.sqlite-wal"), path.with_name("store.sqlite-shm")):
        leftover.unlink(missing_ok=True)
    path.write_bytes(b"")
    refused = cert_in.run("triage", "list")
    assert refused.exit_code == 4, refused.stderr
    assert refused.stderr.count("\n") == 1 and "is an empty file" in refused.stderr
    assert path.stat().st_size == 0  # left as found, for the operator to restore
    marker = cert_in.home / ".store-created"
    assert f"`rm {path} {marker}`" in refused.stderr  # the exact step to start over knowingly
    path.unlink()
    marker.unlink()  # removing both knowingly starts a new store
    assert cert_in.run("triage", "list").exit_code == 0


def test_a_version_7_store_learns_which_partners_each_object_was_sealed_for(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrations.apply_migrations(conn, migrations.MIGRATIONS[:7]) == 7
    envelopes = [
        ("e1", '["indicator--1","indicator--2"]', [("cert-in", "posted"), ("cert-de", "sealed")]),
        ("e2", '["indicator--1"]', [("cert-uk", "received")]),
        ("e3", '["indicator--3"]', [("cert-in", "resealed")]),  # carried nothing, sealed again
    ]
    for envelope_id, object_ids, deliveries in envelopes:
        conn.execute(
            "INSERT INTO sent_envelopes (envelope_id, created_at, bundle_id, object_count, "
            "recipients, digest, artifact, object_ids) VALUES (?, 't', 'bundle--1', 1, '[]', 'd', '{}', ?)",
            (envelope_id, object_ids),
        )
        conn.executemany(
            "INSERT INTO deliveries (envelope_id, partner, status) VALUES (?, ?, ?)",
            [(envelope_id, partner, status) for partner, status in deliveries],
        )
    conn.close()

    with Store(path) as store:
        assert store.db.schema_version == migrations.MIGRATIONS[-1][0]
        assert sorted(store.db.conn.execute("SELECT object_id, partner FROM shared_with")) == [
            ("indicator--1", "cert-de"),
            ("indicator--1", "cert-in"),
            ("indicator--1", "cert-uk"),
            ("indicator--2", "cert-de"),
            ("indicator--2", "cert-in"),
        ]


def test_receipts_stored_as_objects_before_version_12_are_removed(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrations.apply_migrations(conn, migrations.MIGRATIONS[:11]) == 11
    for object_id, kind in (
        ("x-cti-exchange-receipt--1", "x-cti-exchange-receipt"),
        ("indicator--1", "indicator"),
    ):
        conn.execute(
            "INSERT INTO objects (object_id, version, is_current, type, envelope_id, partner, "
            "received_at, json) VALUES (?, 'v1', 1, ?, 'e1', 'cert-fr', 't', '{}')",
            (object_id, kind),
        )
        conn.execute(
            "INSERT INTO object_sources (object_id, version, envelope_id, partner, received_at) "
            "VALUES (?, 'v1', 'e2', 'cert-de', 't')",
            (object_id,),
        )
    conn.close()

    with Store(path) as store:
        assert store.db.schema_version == migrations.MIGRATIONS[-1][0]
        conn = store.db.conn
        assert conn.execute("SELECT object_id FROM objects").fetchall() == [("indicator--1",)]
        assert conn.execute("SELECT object_id FROM object_sources").fetchall() == [("indicator--1",)]


def test_removing_stored_receipts_drops_the_text_index_that_held_them(tmp_path: Path) -> None:
    """The next row stored may take a deleted receipt's rowid: an index that counts that rowid
    as indexed, under the receipt's text, would never find it."""
    path = tmp_path / "store.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrations.apply_migrations(conn, migrations.MIGRATIONS[:11]) == 11
    conn.execute(
        "INSERT INTO objects (object_id, version, is_current, type, envelope_id, partner, "
        "received_at, json) VALUES ('x-cti-exchange-receipt--1', 'v1', 1, "
        "'x-cti-exchange-receipt', 'e1', 'cert-fr', 't', '{}')"
    )
    text_index.catch_up(conn)
    assert text_index.indexed_through(conn) is not None
    conn.close()

    with Store(path) as store:
        assert text_index.indexed_through(store.db.conn) is None  # built again at the next search


def test_a_version_13_store_learns_when_each_channels_last_envelope_was_issued(tmp_path: Path) -> None:
    """Migration 14: the issue time of the last envelope accepted per inbound channel, for the
    back-dating check (envelope/open.py check_not_backdated), taken from the envelopes kept."""
    path = tmp_path / "store.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrations.apply_migrations(conn, migrations.MIGRATIONS[:13]) == 13
    for sequence, issued in ((1, "2026-11-01T10:00:00.000Z"), (2, "2026-11-02T10:00:00.000Z")):
        conn.execute(
            "INSERT INTO envelopes_in (envelope_id, partner, sender, sequence, digest, issued_at, "
            "received_at, signer_kid, signer_thumbprint, bundle_id, object_count, artifact_id, "
            f"jws_deflated) VALUES ('e{sequence}', 'cert-fr', 'cert-fr', {sequence}, 'd{sequence}', ?, "
            "'t', 'k', 'th', 'bundle--1', 1, NULL, x'00')",
            (issued,),
        )
    conn.execute(
        "INSERT INTO channels_in (sender, sequence, digest, updated_at) VALUES ('cert-fr', 2, 'd2', 't')"
    )
    conn.close()

    with Store(path) as store:
        state = store.inbound.channel_state("cert-fr")
    assert state is not None and state.sequence == 2
    assert state.issued_at is not None and state.issued_at.isoformat() == "2026-11-02T10:00:00+00:00"
