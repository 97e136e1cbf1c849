"""The audit trail in the store: appended in the same transaction as the action it records."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from cti_exchange.audit.chain import GENESIS, AuditRecord, SignedHead, canonical_json, record_hash
from cti_exchange.store.database import Database


def append_audit(
    conn: sqlite3.Connection,
    *,
    at: str,
    actor: str,
    action: str,
    partner: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditRecord:
    """Appends one record inside the caller's (write) transaction."""
    row = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (row[0] + 1, row[1]) if row else (1, GENESIS)
    details = details or {}
    body = {
        "seq": seq,
        "at": at,
        "actor": actor,
        "action": action,
        "partner": partner,
        "details": details,
        "prev": prev,
    }
    digest = record_hash(body)
    conn.execute(
        "INSERT INTO audit_log (seq, at, actor, action, partner, details, prev, hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, at, actor, action, partner, canonical_json(details), prev, digest),
    )
    return AuditRecord(seq, at, actor, action, partner, details, prev, digest)


class AuditLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    def append(self, **fields: Any) -> AuditRecord:
        with self.db.transaction() as conn:
            return append_audit(conn, **fields)

    def records(
        self,
        *,
        since: str | None = None,
        until: str | None = None,
        partner: str | None = None,
        action: str | None = None,
    ) -> list[AuditRecord]:
        sql = "SELECT seq, at, actor, action, partner, details, prev, hash FROM audit_log WHERE 1 = 1"
        params: list[Any] = []
        for clause, value in (
            (" AND at >= ?", since),
            (" AND at <= ?", until),
            (" AND partner = ?", partner),
            (" AND action = ?", action),
        ):
            if value is not None:
                sql += clause
                params.append(value)
        return [
            AuditRecord(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7])
            for r in self.db.conn.execute(sql + " ORDER BY seq", params)
        ]

    def latest_at(self, *, action: str, partner: str) -> str | None:
        """When `action` last happened for `partner` (newest first through the time index)."""
        row = self.db.conn.execute(
            "SELECT at FROM audit_log WHERE action = ? AND partner = ? ORDER BY seq DESC LIMIT 1",
            (action, partner),
        ).fetchone()
        return row[0] if row else None

    def head(self) -> tuple[int, str]:
        row = self.db.conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        return (row[0], row[1]) if row else (0, GENESIS)

    def signed_heads(self) -> list[SignedHead]:
        return [
            SignedHead(*row)
            for row in self.db.conn.execute(
                "SELECT seq, hash, signed_at, kid, jws FROM audit_heads ORDER BY seq"
            )
        ]

    def add_signed_head(self, head: SignedHead) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO audit_heads (seq, hash, signed_at, kid, jws) VALUES (?, ?, ?, ?, ?)",
                (head.seq, head.hash, head.signed_at, head.kid, head.jws),
            )
