"""Status resources (TAXII 2.1 section 4.3): written in the same transaction as the objects of
their POST, read back by id.

Writes are synchronous, so a stored status is always "complete" with nothing pending; the
pending columns and outcome exist so that an asynchronous writer could use them later.

Status resources are kept for STATUS_LIFETIME (7 days), long enough for any client to read
the outcome of its POST (cti-exchange's push reads it at once), then removed by later POSTs,
a few at a time: without that, every POST ever made would stay in the database.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cti_exchange.server.connection import read_transaction
from cti_exchange.server.timestamps import format_date_added

STATUS_LIFETIME = timedelta(days=7)
# Statuses removed per POST: the first POST after a long quiet period must not hold the
# write lock while it deletes weeks of them; each POST adds one, so removal keeps up.
EXPIRED_PER_WRITE = 20


@dataclass(frozen=True)
class StatusDetail:
    """One object's outcome in a status resource (TAXII 2.1 section 4.3.1)."""

    outcome: str  # "success", "failure" or "pending"
    object_id: str
    version: str
    message: str | None = None


@dataclass(frozen=True)
class StoredStatus:
    collection_id: str
    resource: dict[str, Any]


def save_status(
    conn: sqlite3.Connection,
    status_id: str,
    api_root: str,
    collection_id: str,
    request_timestamp: str,
    details: list[StatusDetail],
) -> None:
    """Inside the caller's write transaction."""
    successes = sum(1 for d in details if d.outcome == "success")
    conn.execute(
        "INSERT INTO statuses (id, api_root, collection_id, status, request_timestamp,"
        " total_count, success_count, failure_count, pending_count)"
        " VALUES (?, ?, ?, 'complete', ?, ?, ?, ?, 0)",
        (
            status_id,
            api_root,
            collection_id,
            request_timestamp,
            len(details),
            successes,
            len(details) - successes,
        ),
    )
    conn.executemany(
        "INSERT INTO status_details (status_id, position, outcome, object_id, version, message)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [
            (status_id, position, d.outcome, d.object_id, d.version, d.message)
            for position, d in enumerate(details)
        ],
    )


def expire_statuses(conn: sqlite3.Connection, now: datetime) -> int:
    """Inside the caller's write transaction: removes up to EXPIRED_PER_WRITE of the statuses
    older than STATUS_LIFETIME, oldest first. How many were removed."""
    cutoff = format_date_added(now - STATUS_LIFETIME)
    expired = [
        (status_id,)
        for (status_id,) in conn.execute(
            "SELECT id FROM statuses WHERE request_timestamp < ? ORDER BY request_timestamp LIMIT ?",
            (cutoff, EXPIRED_PER_WRITE),
        )
    ]
    conn.executemany("DELETE FROM status_details WHERE status_id = ?", expired)
    conn.executemany("DELETE FROM statuses WHERE id = ?", expired)
    return len(expired)


def load_status(conn: sqlite3.Connection, api_root: str, status_id: str) -> StoredStatus | None:
    with read_transaction(conn):
        row = conn.execute(
            "SELECT collection_id, request_timestamp FROM statuses WHERE id = ? AND api_root = ?",
            (status_id, api_root),
        ).fetchone()
        if row is None:
            return None
        details = [
            StatusDetail(*detail)
            for detail in conn.execute(
                "SELECT outcome, object_id, version, message FROM status_details"
                " WHERE status_id = ? ORDER BY position",
                (status_id,),
            )
        ]
    return StoredStatus(row[0], status_resource(status_id, row[1], details))


def status_resource(status_id: str, request_timestamp: str, details: list[StatusDetail]) -> dict[str, Any]:
    """The status resource, shaped as medallion.common.generate_status shapes it."""
    lists: dict[str, list[dict[str, str]]] = {"success": [], "failure": [], "pending": []}
    for detail in details:
        entry = {"id": detail.object_id, "version": detail.version}
        if detail.message:
            entry["message"] = detail.message
        lists[detail.outcome].append(entry)
    resource: dict[str, Any] = {
        "id": status_id,
        "status": "pending" if lists["pending"] else "complete",
        "request_timestamp": request_timestamp,
        "total_count": len(details),
        "success_count": len(lists["success"]),
        "failure_count": len(lists["failure"]),
        "pending_count": len(lists["pending"]),
    }
    for outcome, key in (
        ("success", "successes"),
        ("failure", "failures"),
        ("pending", "pendings"),
    ):
        if lists[outcome]:
            resource[key] = lists[outcome]
    return resource
