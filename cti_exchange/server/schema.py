"""The exchange database's tables and indexes, and their migrations.

Standard SQL only (TEXT, VARCHAR, INTEGER, SMALLINT, CHAR, plain indexes), so the same DDL runs
on PostgreSQL; the one dialect-specific piece, the identity column, comes from `connection`.

Timestamps are stored as fixed-width UTC strings so that string order is time order:
`date_added` as `2026-11-23T10:00:00.123456Z` (27 characters, TAXII's microsecond precision)
and `version_key` as the object's version padded to nanoseconds (30 characters).
"""

from __future__ import annotations

import sqlite3

from cti_exchange.errors import ConfigError
from cti_exchange.server.connection import IDENTITY_COLUMN, write_transaction

SCHEMA_VERSION = 1

_SCHEMA_V1 = (
    """
    CREATE TABLE IF NOT EXISTS schema_info (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL
    )""",
    # The TAXII discovery resource (TAXII 2.1 section 4.1.1): one row.
    """
    CREATE TABLE IF NOT EXISTS server_info (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        title TEXT NOT NULL,
        description TEXT,
        contact TEXT,
        default_api_root VARCHAR(100)
    )""",
    # API roots (section 4.2.1); `name` is the URL path segment.
    """
    CREATE TABLE IF NOT EXISTS api_roots (
        name VARCHAR(100) PRIMARY KEY,
        title TEXT NOT NULL,
        description TEXT,
        max_content_length INTEGER NOT NULL
    )""",
    # Collections (section 5.2.1). can_read / can_write are what plain medallion (no accounts)
    # reports; the exchange server reports the account's rights from collection_acl instead.
    # last_date_added is the date_added of the last POST: the next one must be later.
    """
    CREATE TABLE IF NOT EXISTS collections (
        id VARCHAR(64) PRIMARY KEY,
        api_root VARCHAR(100) NOT NULL REFERENCES api_roots (name),
        alias VARCHAR(100),
        title TEXT NOT NULL,
        description TEXT,
        can_read SMALLINT NOT NULL,
        can_write SMALLINT NOT NULL,
        media_types TEXT NOT NULL,
        last_date_added CHAR(27)
    )""",
    # One row per object version. `seq` orders the objects of one POST, which share one
    # date_added; (date_added, seq) is the position a `next` token continues from.
    # is_last / is_first mark the version that match[version]=last / first selects when no
    # match[spec_version] is given: kept up to date on every write so that the default query
    # walks an index instead of comparing versions row by row.
    f"""
    CREATE TABLE IF NOT EXISTS objects (
        seq {IDENTITY_COLUMN},
        collection_id VARCHAR(64) NOT NULL REFERENCES collections (id),
        object_id VARCHAR(300) NOT NULL,
        object_type VARCHAR(250) NOT NULL,
        spec_version VARCHAR(10) NOT NULL,
        version VARCHAR(40) NOT NULL,
        version_key CHAR(30) NOT NULL,
        date_added CHAR(27) NOT NULL,
        media_type VARCHAR(100) NOT NULL,
        is_last SMALLINT NOT NULL,
        is_first SMALLINT NOT NULL,
        body TEXT NOT NULL,
        UNIQUE (collection_id, object_id, version_key)
    )""",
    # Paging through a collection: all versions, or the default "last version" view.
    """
    CREATE INDEX IF NOT EXISTS objects_by_date_added
        ON objects (collection_id, date_added, seq)""",
    """
    CREATE INDEX IF NOT EXISTS objects_last_by_date_added
        ON objects (collection_id, is_last, date_added, seq)""",
    # match[type]. match[id] and the versions endpoint use the UNIQUE index above.
    """
    CREATE INDEX IF NOT EXISTS objects_by_type
        ON objects (collection_id, object_type, date_added, seq)""",
    # Status resources (section 4.3.1), written in the same transaction as the objects.
    """
    CREATE TABLE IF NOT EXISTS statuses (
        id VARCHAR(64) PRIMARY KEY,
        api_root VARCHAR(100) NOT NULL,
        collection_id VARCHAR(64) NOT NULL REFERENCES collections (id),
        status VARCHAR(20) NOT NULL,
        request_timestamp CHAR(27) NOT NULL,
        total_count INTEGER NOT NULL,
        success_count INTEGER NOT NULL,
        failure_count INTEGER NOT NULL,
        pending_count INTEGER NOT NULL
    )""",
    # Expiry of old statuses (statuses.expire_statuses). IF NOT EXISTS: databases laid out
    # before this index get it when the server next opens them.
    """
    CREATE INDEX IF NOT EXISTS statuses_by_request_timestamp
        ON statuses (request_timestamp)""",
    """
    CREATE TABLE IF NOT EXISTS status_details (
        status_id VARCHAR(64) NOT NULL REFERENCES statuses (id),
        position INTEGER NOT NULL,
        outcome VARCHAR(10) NOT NULL,
        object_id VARCHAR(300) NOT NULL,
        version VARCHAR(40) NOT NULL,
        message TEXT,
        PRIMARY KEY (status_id, position)
    )""",
    # Exchange accounts (one per agency) and who may read / write which collection.
    # password_hash only: see provisioning.hash_password for the format.
    """
    CREATE TABLE IF NOT EXISTS accounts (
        username VARCHAR(64) PRIMARY KEY,
        display_name TEXT NOT NULL,
        password_hash TEXT NOT NULL
    )""",
    """
    CREATE TABLE IF NOT EXISTS collection_acl (
        collection_id VARCHAR(64) NOT NULL REFERENCES collections (id),
        username VARCHAR(64) NOT NULL REFERENCES accounts (username),
        can_read SMALLINT NOT NULL,
        can_write SMALLINT NOT NULL,
        PRIMARY KEY (collection_id, username)
    )""",
)


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the tables of a new database, or check that an existing one is one we can use."""
    with write_transaction(conn):
        for statement in _SCHEMA_V1:
            conn.execute(statement)
        row = conn.execute("SELECT version FROM schema_info WHERE id = 1").fetchone()
        if row is None:
            conn.execute("INSERT INTO schema_info (id, version) VALUES (1, ?)", (SCHEMA_VERSION,))
        elif row[0] > SCHEMA_VERSION:
            raise ConfigError(
                f"the TAXII server database has schema version {row[0]}, "
                f"this cti-exchange only knows up to {SCHEMA_VERSION}",
                hint="upgrade cti-exchange, or serve this data directory with the newer one",
            )
        # Later schema versions add their migrations here, keyed on row[0].
