"""Versioned schema migrations of the local store. Append, never edit, a migration.

A migration that changes `objects.value` or `objects.name` in place calls `text_index.drop`:
the text-search index (built after storing, outside the migrations) would not see the change.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable

from cti_exchange.errors import ConfigError
from cti_exchange.stix.pattern_values import indicator_value
from cti_exchange.store import text_index


def _project_new_indicator_types(conn: sqlite3.Connection) -> int:
    """Current indicators the projection (stix/pattern_values.py) did not know when they were
    stored have no IOC type and value, so no list, filter or export shows them: they are
    projected now, as projection.py does for new rows. (Older versions are shown from their
    JSON.) Version 9: a host and a port (`1.2.3.4:443`, `c2.example:8080`); version 10: mutex
    names and Windows registry keys (`[mutex:name = ...]`, `[windows-registry-key:key = ...]`,
    as MISP and other producers wrote them before cti-exchange did); version 11: autonomous
    systems, e-mail subjects, ssdeep hashes, certificate fingerprints and MAC addresses
    (`[autonomous-system:number = 64496]`, `[email-message:subject = ...]`,
    `[file:hashes.SSDEEP = ...]`, `[x509-certificate:hashes.'SHA-1' = ...]`,
    `[mac-addr:value = ...]`).

    Only rows without an IOC type are read, through the partial index that holds them
    (`objects_current_other_by_type`): on a store of a million indicators, nearly all
    projected, it reads the few that are not, never the whole table."""
    rows = conn.execute(
        "SELECT rowid, json_extract(json, '$.pattern') FROM objects "
        "INDEXED BY objects_current_other_by_type "
        "WHERE type = 'indicator' AND is_current = 1 AND ioc_type IS NULL "
        "AND (pattern_type = 'stix' OR pattern_type IS NULL)"
    ).fetchall()
    updates = []
    for rowid, pattern in rows:
        kind, value = indicator_value(pattern) if isinstance(pattern, str) else (None, None)
        if kind is not None:
            updates.append((kind, value, rowid))
    conn.executemany("UPDATE objects SET ioc_type = ?, value = ? WHERE rowid = ?", updates)
    return len(updates)


def _project_new_kinds_and_forget_the_text_index(conn: sqlite3.Connection) -> None:
    """Version 11 (see above). The text-search index may exist by now (stop 19): values
    changed in place are unseen by it, so it is dropped when any row changed, and the next
    search builds it again."""
    if _project_new_indicator_types(conn):
        text_index.drop(conn)


def _forget_stored_receipts(conn: sqlite3.Connection) -> None:
    """Version 12. Receipts are no longer stored as objects (store/inbound.py): the ones a store
    holds were listed by `triage list` as new items; the envelope records keep them. A deleted
    row's rowid can be given again to the next row stored (the last envelope received is often
    a receipt): the text-search index, which holds the receipt's text under that rowid and
    counts it as indexed, would never find the new row. So when any row goes, the index goes
    too, and the next search builds it again."""
    conn.execute("DELETE FROM object_sources WHERE object_id LIKE 'x-cti-exchange-receipt--%'")
    if conn.execute("DELETE FROM objects WHERE type = 'x-cti-exchange-receipt'").rowcount:
        text_index.drop(conn)


def _add_column(table: str, column: str, declaration: str) -> Callable[[sqlite3.Connection], bool]:
    """A migration adding a column, once: run again on a schema that has it (a store whose
    version table was rolled back, as the upgrade tests do), it changes nothing. True when it
    added the column."""

    def add(conn: sqlite3.Connection) -> bool:
        if any(row[1] == column for row in conn.execute(f"PRAGMA table_info({table})")):
            return False
        conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
        return True

    return add


def _keep_channel_issue_times(conn: sqlite3.Connection) -> None:
    """Version 14: when the last envelope accepted on each inbound channel says it was issued,
    from the envelopes kept. The next one, signed by a key since revoked or retired, may not be
    dated before it (a stolen key dating its envelope back to before its revocation,
    envelope/open.py check_not_backdated)."""
    if _add_column("channels_in", "issued_at", "TEXT")(conn):
        conn.execute(
            "UPDATE channels_in SET issued_at = (SELECT e.issued_at FROM envelopes_in e "
            "WHERE e.sender = channels_in.sender AND e.digest = channels_in.digest)"
        )


def _keep_erasures(conn: sqlite3.Connection) -> None:
    """Version 16: what `triage erase` erased, so the next envelope carrying it does not store
    it again (store/erasure_tombstones.py): per erased object its id, per erased value its IOC
    type and a keyed digest (HMAC-SHA256 under the store's own random key, made here once),
    never the value. Run again on a store that has them (its version table rolled back), it
    changes nothing: the key in particular stays the one the digests were made with."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS erasure_key (id INTEGER PRIMARY KEY CHECK (id = 1), key BLOB NOT NULL)"
    )
    conn.execute("INSERT OR IGNORE INTO erasure_key (id, key) VALUES (1, ?)", (secrets.token_bytes(32),))
    conn.execute(
        "CREATE TABLE IF NOT EXISTS erased ("
        "id INTEGER PRIMARY KEY, "
        "object_id TEXT, "  # an erased object; NULL: an erased value
        "ioc_type TEXT, "  # the value's IOC type (for an object: the value it held or was about)
        "digest BLOB, "  # HMAC-SHA256 of the IOC type and the value's canonical form
        "about TEXT, "  # a relationship or sighting: the erased object it was about
        "partner TEXT, "  # a value withheld from this partner only; NULL: from every partner
        "erased_at TEXT NOT NULL, "
        "audit_seq INTEGER NOT NULL, "  # the `erase` audit record
        "CHECK (object_id IS NOT NULL OR digest IS NOT NULL))"
    )
    conn.execute(
        "CREATE INDEX IF NOT EXISTS erased_objects ON erased (object_id) WHERE object_id IS NOT NULL"
    )
    conn.execute("CREATE INDEX IF NOT EXISTS erased_by_digest ON erased (digest)")


def _keep_rule_revs(conn: sqlite3.Connection) -> None:
    """Version 17: IDS rules' revs (exporters/sids.py). Each sid's row gets the digest of its
    rule's text as last exported and its rev; `ids_rule_revs` the texts a sid had before it.
    A sid given out before (every rule written `rev:1`, its text not kept) reads rev 1 and no
    digest, which no text has: its next export is rev 2, as a changed rule's would be, since
    whether it changed cannot be told. Nothing is rewritten (a store of millions of sids is
    upgraded at once), and run again on a store that has them (its version table rolled
    back), it changes nothing."""
    _add_column("ids_sids", "digest", "BLOB")(conn)
    _add_column("ids_sids", "rev", "INTEGER NOT NULL DEFAULT 1")(conn)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS ids_rule_revs (sid INTEGER NOT NULL, digest BLOB NOT NULL, "
        "rev INTEGER NOT NULL, PRIMARY KEY (sid, digest)) WITHOUT ROWID"
    )


# (version, SQL script or a function run inside the migration's transaction)
Migration = tuple[int, str | Callable[[sqlite3.Connection], object]]

MIGRATIONS: list[Migration] = [
    (
        1,
        """
        CREATE TABLE envelopes_in (
            envelope_id TEXT PRIMARY KEY,
            partner TEXT NOT NULL,
            sender TEXT NOT NULL,
            sequence INTEGER,
            digest TEXT NOT NULL,
            issued_at TEXT NOT NULL,
            received_at TEXT NOT NULL,
            signer_kid TEXT NOT NULL,
            signer_thumbprint TEXT NOT NULL,
            bundle_id TEXT NOT NULL,
            object_count INTEGER NOT NULL,
            artifact_id TEXT,
            jws_deflated BLOB NOT NULL
        );
        CREATE INDEX envelopes_in_by_artifact ON envelopes_in (artifact_id);
        CREATE TABLE channels_in (
            sender TEXT PRIMARY KEY,
            sequence INTEGER NOT NULL,
            digest TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE channels_out (
            recipient TEXT PRIMARY KEY,
            sequence INTEGER NOT NULL,
            digest TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE objects (
            object_id TEXT NOT NULL,
            version TEXT NOT NULL,
            is_current INTEGER NOT NULL,
            type TEXT NOT NULL,
            ioc_type TEXT,
            value TEXT,
            name TEXT,
            pattern_type TEXT,
            tlp TEXT,
            confidence INTEGER,
            valid_from TEXT,
            valid_until TEXT,
            revoked INTEGER NOT NULL DEFAULT 0,
            created_by_ref TEXT,
            envelope_id TEXT NOT NULL,
            partner TEXT NOT NULL,
            received_at TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'new',
            status_by TEXT,
            status_at TEXT,
            status_note TEXT,
            json TEXT NOT NULL,
            PRIMARY KEY (object_id, version)
        );
        CREATE INDEX objects_current_by_received ON objects (received_at) WHERE is_current = 1;
        CREATE INDEX objects_current_by_status ON objects (status, received_at) WHERE is_current = 1;
        CREATE INDEX objects_current_by_value ON objects (ioc_type, value) WHERE is_current = 1;
        CREATE TABLE object_sources (
            object_id TEXT NOT NULL,
            version TEXT NOT NULL,
            envelope_id TEXT NOT NULL,
            partner TEXT NOT NULL,
            received_at TEXT NOT NULL,
            PRIMARY KEY (object_id, version, envelope_id)
        );
        CREATE TABLE quarantine (
            id INTEGER PRIMARY KEY,
            partner TEXT,
            collection TEXT,
            taxii_object_id TEXT,
            envelope_id TEXT,
            sender TEXT,
            reason TEXT NOT NULL,
            detail TEXT NOT NULL,
            received_at TEXT NOT NULL,
            artifact TEXT NOT NULL,
            resolved_at TEXT,
            resolution TEXT
        );
        CREATE INDEX quarantine_open ON quarantine (resolved_at, partner);
        CREATE TABLE taxii_processed (
            partner TEXT NOT NULL,
            collection TEXT NOT NULL,
            object_id TEXT NOT NULL,
            version TEXT NOT NULL,
            outcome TEXT NOT NULL,
            PRIMARY KEY (partner, collection, object_id, version)
        );
        CREATE TABLE pull_cursors (
            partner TEXT NOT NULL,
            collection TEXT NOT NULL,
            added_after TEXT,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (partner, collection)
        );
        CREATE TABLE share_requests (
            request_id TEXT PRIMARY KEY,
            created_at TEXT NOT NULL,
            sealed_at TEXT,
            finished_at TEXT
        );
        CREATE TABLE sent_envelopes (
            envelope_id TEXT PRIMARY KEY,
            request_id TEXT,
            created_at TEXT NOT NULL,
            bundle_id TEXT NOT NULL,
            object_count INTEGER NOT NULL,
            recipients TEXT NOT NULL,
            tlp TEXT,
            digest TEXT NOT NULL,
            artifact TEXT NOT NULL
        );
        CREATE TABLE deliveries (
            envelope_id TEXT NOT NULL,
            partner TEXT NOT NULL,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            posted_at TEXT,
            received_at TEXT,
            PRIMARY KEY (envelope_id, partner)
        );
        CREATE INDEX deliveries_by_status ON deliveries (status, partner);
        CREATE TABLE sent_objects (
            envelope_id TEXT NOT NULL,
            object_id TEXT NOT NULL,
            version TEXT NOT NULL,
            type TEXT NOT NULL,
            ioc_type TEXT,
            value TEXT,
            tlp TEXT,
            PRIMARY KEY (envelope_id, object_id)
        );
        CREATE INDEX sent_objects_by_object ON sent_objects (object_id);
        CREATE INDEX sent_envelopes_by_request ON sent_envelopes (request_id);
        CREATE TABLE receipts_owed (
            envelope_id TEXT PRIMARY KEY,
            partner TEXT NOT NULL,
            digest TEXT NOT NULL,
            accepted_at TEXT NOT NULL,
            receipt_envelope_id TEXT
        );
        CREATE INDEX receipts_owed_by_partner ON receipts_owed (partner, receipt_envelope_id);
        CREATE TABLE audit_log (
            seq INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            partner TEXT,
            details TEXT NOT NULL,
            prev TEXT NOT NULL,
            hash TEXT NOT NULL
        );
        CREATE INDEX audit_log_by_time ON audit_log (at);
        CREATE TABLE audit_heads (
            seq INTEGER PRIMARY KEY,
            hash TEXT NOT NULL,
            signed_at TEXT NOT NULL,
            kid TEXT NOT NULL,
            jws TEXT NOT NULL
        );
        CREATE TABLE triage_log (
            id INTEGER PRIMARY KEY,
            object_id TEXT NOT NULL,
            decision TEXT NOT NULL,
            analyst TEXT NOT NULL,
            decided_at TEXT NOT NULL,
            note TEXT
        );
        """,
    ),
    (
        2,
        # Triage, export and sightings (issue 7). No semicolons inside comments: the runner
        # splits statements on them.
        """
        -- triage list --partner X: the first page in received order without a scan
        CREATE INDEX objects_current_by_partner ON objects (partner, received_at)
            WHERE is_current = 1;
        -- Objects that are not simple indicators (malware, sightings, relationships, complex
        -- patterns): bulk indicator rows never enter this index, so it costs them nothing.
        CREATE INDEX objects_current_other_by_type ON objects (type, received_at)
            WHERE is_current = 1 AND ioc_type IS NULL;
        -- Related objects and sightings of an object (triage show, triage list --sighted).
        CREATE INDEX objects_relationship_source ON objects (json_extract(json, '$.source_ref'))
            WHERE type = 'relationship';
        CREATE INDEX objects_relationship_target ON objects (json_extract(json, '$.target_ref'))
            WHERE type = 'relationship';
        CREATE INDEX objects_sighting_of ON objects (json_extract(json, '$.sighting_of_ref'))
            WHERE type = 'sighting';
        -- Text search reads the value index for indicator values, and this one for names
        -- that say more than the value (partner indicators named by the value stay out).
        CREATE INDEX objects_current_named ON objects (name)
            WHERE is_current = 1 AND name IS NOT value;
        CREATE INDEX triage_log_by_object ON triage_log (object_id, id);
        -- Suricata / Snort signature ids: once a rule key (IOC type, value, rule kind) has a
        -- sid it keeps it in every later export, whatever else is exported with it.
        CREATE TABLE ids_sids (
            rule_key TEXT PRIMARY KEY,
            sid INTEGER NOT NULL UNIQUE,
            assigned_at TEXT NOT NULL
        ) WITHOUT ROWID
        """,
    ),
    (
        3,
        # STIX 2.1 section 3.6: every version of an object keeps the `created` of its first;
        # a re-share reads it from what we sent before.
        """
        ALTER TABLE sent_objects ADD COLUMN created TEXT
        """,
    ),
    (
        4,
        # The sent log per object in one row per object (a WITHOUT ROWID table keyed by the
        # STIX id: one b-tree write per object shared instead of three), and per envelope the
        # ids it carried (read only to resume an interrupted share).
        """
        CREATE TABLE shared_objects (
            object_id TEXT PRIMARY KEY,
            type TEXT NOT NULL,
            ioc_type TEXT,
            value TEXT,
            tlp TEXT,
            first_created TEXT,
            last_version TEXT NOT NULL,
            last_envelope_id TEXT NOT NULL
        ) WITHOUT ROWID;
        INSERT INTO shared_objects
            SELECT object_id, MAX(type), MAX(ioc_type), MAX(value), MAX(tlp), MIN(created),
                   MAX(version), MAX(envelope_id)
            FROM sent_objects GROUP BY object_id;
        ALTER TABLE sent_envelopes ADD COLUMN object_ids TEXT;
        UPDATE sent_envelopes SET object_ids = (
            SELECT json_group_array(object_id) FROM sent_objects
            WHERE sent_objects.envelope_id = sent_envelopes.envelope_id);
        DROP TABLE sent_objects
        """,
    ),
    (
        5,
        # Envelope ids are chosen by the sender and travel in clear-text routing hints: keyed on
        # the id alone, one partner could send an envelope under the id another partner is
        # about to use and have the real one refused as a replay. An id is now unique per
        # sender, and receipts and sources per partner.
        """
        CREATE TABLE envelopes_in_v5 (
            envelope_id TEXT NOT NULL,
            partner TEXT NOT NULL,
            sender TEXT NOT NULL,
            sequence INTEGER,
            digest TEXT NOT NULL,
            issued_at TEXT NOT NULL,
            received_at TEXT NOT NULL,
            signer_kid TEXT NOT NULL,
            signer_thumbprint TEXT NOT NULL,
            bundle_id TEXT NOT NULL,
            object_count INTEGER NOT NULL,
            artifact_id TEXT,
            jws_deflated BLOB NOT NULL,
            PRIMARY KEY (sender, envelope_id)
        );
        INSERT INTO envelopes_in_v5 SELECT envelope_id, partner, sender, sequence, digest,
            issued_at, received_at, signer_kid, signer_thumbprint, bundle_id, object_count,
            artifact_id, jws_deflated FROM envelopes_in;
        DROP TABLE envelopes_in;
        ALTER TABLE envelopes_in_v5 RENAME TO envelopes_in;
        CREATE INDEX envelopes_in_by_artifact ON envelopes_in (partner, artifact_id);
        CREATE INDEX envelopes_in_by_id ON envelopes_in (envelope_id, partner);
        CREATE TABLE receipts_owed_v5 (
            envelope_id TEXT NOT NULL,
            partner TEXT NOT NULL,
            digest TEXT NOT NULL,
            accepted_at TEXT NOT NULL,
            receipt_envelope_id TEXT,
            PRIMARY KEY (partner, envelope_id)
        );
        INSERT INTO receipts_owed_v5 SELECT envelope_id, partner, digest, accepted_at,
            receipt_envelope_id FROM receipts_owed;
        DROP TABLE receipts_owed;
        ALTER TABLE receipts_owed_v5 RENAME TO receipts_owed;
        CREATE INDEX receipts_owed_by_partner ON receipts_owed (partner, receipt_envelope_id);
        CREATE TABLE object_sources_v5 (
            object_id TEXT NOT NULL,
            version TEXT NOT NULL,
            envelope_id TEXT NOT NULL,
            partner TEXT NOT NULL,
            received_at TEXT NOT NULL,
            PRIMARY KEY (object_id, version, partner, envelope_id)
        );
        INSERT INTO object_sources_v5 SELECT object_id, version, envelope_id, partner,
            received_at FROM object_sources;
        DROP TABLE object_sources;
        ALTER TABLE object_sources_v5 RENAME TO object_sources
        """,
    ),
    (
        6,
        # Each partner server's max_content_length as last read: an envelope sealed while the
        # server is out of reach (push --queue, sight --queue) is cut to fit it.
        """
        CREATE TABLE partner_servers (
            partner TEXT PRIMARY KEY,
            max_content_length INTEGER NOT NULL,
            seen_at TEXT NOT NULL
        )
        """,
    ),
    (
        7,
        # A record held for a sequence gap can only pass once its sender's channel has moved:
        # the channel's sequence when it was last opened, so a pull does not decrypt and verify
        # again every envelope waiting behind a gap that has not changed (exchange/held.py).
        "ALTER TABLE quarantine ADD COLUMN tried_at_sequence INTEGER",
    ),
    (
        8,
        # Which partners each object was sealed for: a sighting counts only from a partner we
        # shared the object with (triage_detail.sightings_of_shared), one primary-key lookup.
        # `shared_objects` names only the last envelope; the ids every envelope carried are in
        # `sent_envelopes.object_ids`, read here once. A delivery replaced by `reseal` carried
        # nothing: what it held is in the new envelopes.
        """
        CREATE TABLE shared_with (
            object_id TEXT NOT NULL,
            partner TEXT NOT NULL,
            PRIMARY KEY (object_id, partner)
        ) WITHOUT ROWID;
        INSERT OR IGNORE INTO shared_with
            SELECT j.value, d.partner
            FROM sent_envelopes e JOIN deliveries d ON d.envelope_id = e.envelope_id,
                 json_each(e.object_ids) j
            WHERE d.status != 'resealed' AND e.object_ids IS NOT NULL
        """,
    ),
    (9, _project_new_indicator_types),
    (10, _project_new_indicator_types),
    (11, _project_new_kinds_and_forget_the_text_index),
    (12, _forget_stored_receipts),
    (
        13,
        # A record held because no key could open or verify it (unknown-key, sealed-to-unknown-
        # key-of-ours) can only pass once the key ring it waits for changes: a fingerprint of
        # that ring when it was last opened, so a pull does not decrypt and inflate it again
        # (up to the plaintext limit, unauthenticated) while nothing changed (exchange/held.py).
        _add_column("quarantine", "tried_with_keys", "TEXT"),
    ),
    (14, _keep_channel_issue_times),
    (
        15,
        # What MISP holds of each attribute we exported, so that exporting the same content
        # again writes the same timestamp and only what an export wrote is withdrawn
        # (store/export_queries.py MispStamps).
        "CREATE TABLE IF NOT EXISTS misp_events (event_uuid TEXT PRIMARY KEY, "
        "first_exported INTEGER NOT NULL) WITHOUT ROWID; "
        "CREATE TABLE IF NOT EXISTS misp_attributes (uuid TEXT PRIMARY KEY, digest BLOB NOT NULL, "
        "timestamp INTEGER NOT NULL) WITHOUT ROWID",
    ),
    (16, _keep_erasures),
    (17, _keep_rule_revs),
    (
        18,
        # `triage list --partner P` merges in the objects P sent again after another partner
        # (triage_queries.py _with_relayed): read by partner, not the whole table, which grows
        # by a row each time a partner sends an object version again.
        "CREATE INDEX IF NOT EXISTS object_sources_by_partner ON object_sources (partner)",
    ),
]


class StoreFromNewerRelease(ConfigError):
    """The store records a migration this release does not know: a newer release wrote it,
    and this one would write rows without the columns or tables that release relies on."""


def apply_migrations(
    conn: sqlite3.Connection, migrations: list[Migration] = MIGRATIONS, *, store_name: str = "the store"
) -> int:
    """Brings the schema to the newest of `migrations` (all of them unless a test builds an
    older store); each migration in its own transaction. A store of a newer schema is refused
    before anything is written to it."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
    )
    applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    newest = max(applied, default=0)
    known = max((version for version, _ in migrations), default=0)
    if newest > known:
        raise StoreFromNewerRelease(
            f"{store_name} was written by a newer cti-exchange (schema {newest}; this release knows {known})",
            hint="install that release or restore a backup",
        )
    for version, script in migrations:
        if version in applied:
            continue
        # executescript would COMMIT on its own; run statement by statement inside one
        # transaction so a crash mid-migration leaves the previous version intact.
        conn.execute("BEGIN IMMEDIATE")
        try:
            if callable(script):
                script(conn)
            else:
                for statement in script.split(";"):
                    if statement.strip():
                        conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations (version) VALUES (?)", (version,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        newest = max(newest, version)
    return newest
