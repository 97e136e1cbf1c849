"""The audit trail in the store: appended in the same transaction as the action it records."""

from __future__ import annotations

import json
import math
import re
import sqlite3
from typing import Any

from cti_exchange.audit.chain import (
    GENESIS,
    AuditRecord,
    SignedHead,
    canonical_json,
    parse_strict_json,
    record_hash,
)
from cti_exchange.store.database import Database

# A lone surrogate (a file name in an undecodable encoding, kept by Python's surrogateescape)
# has no UTF-8 form: neither SQLite nor the hash (UTF-8 of the canonical JSON) can take it.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _storable(value: Any) -> Any:
    """`value` with each lone surrogate in its strings written as `\\udcff` text, and each
    NaN or infinity as the text `NaN`, `Infinity` or `-Infinity`: not JSON (RFC 8259 section
    6), they would be read back as a tampered record's text."""
    if isinstance(value, float) and not math.isfinite(value):
        return json.dumps(value)
    if isinstance(value, str):
        return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", value)
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(v) for v in value]
    return value


def _text(raw: bytes | None) -> str | None:
    """A column read as bytes: exact for what we wrote (UTF-8 text); whatever else a hand on
    the file put there (another type, invalid UTF-8) still reads, and fails its hash."""
    return None if raw is None else raw.decode("utf-8", "replace")


def _details(raw: str) -> Any:
    """The stored details; their raw text if it is not JSON (edited by hand: fails its hash),
    NaN and Infinity included: `audit show --json` must print JSON whatever the store holds."""
    try:
        return parse_strict_json(raw)
    except (ValueError, RecursionError):
        return raw


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
    at, actor, action, partner = _storable(at), _storable(actor), _storable(action), _storable(partner)
    # Hashed as it reads back from the store (JSON object keys are strings), so a key that is
    # not a string (an int) does not make the intact record fail its hash.
    details = json.loads(canonical_json(_storable(details or {})))
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


def insert_signed_head(conn: sqlite3.Connection, head: SignedHead) -> None:
    """Stores a signed head inside the caller's (write) transaction."""
    conn.execute(
        "INSERT OR REPLACE INTO audit_heads (seq, hash, signed_at, kid, jws) VALUES (?, ?, ?, ?, ?)",
        (head.seq, head.hash, head.signed_at, head.kid, head.jws),
    )


class AuditLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    def append(self, **fields: Any) -> AuditRecord:
        with self.db.transaction() as conn:
            return append_audit(conn, **fields)

    def names(self) -> tuple[list[str], list[str]]:
        """The actions and the partners the trail's records name, sorted (for telling a
        mistyped filter from one that matches nothing)."""
        actions: set[str] = set()
        partners: set[str] = set()
        for action, partner in self.db.conn.execute(
            "SELECT DISTINCT CAST(action AS BLOB), CAST(partner AS BLOB) FROM audit_log"
        ):
            actions.add(bytes(action or b"").decode("utf-8", "replace"))
            partners.update(p for p in bytes(partner or b"").decode("utf-8", "replace").split(",") if p)
        return sorted(actions), sorted(partners)

    def records(
        self,
        *,
        since: str | None = None,
        until: str | None = None,
        partner: str | None = None,
        action: str | None = None,
        from_seq: int | None = None,
    ) -> list[AuditRecord]:
        # Text columns as bytes (decoded by `_text`): a tampered row must fail its hash in
        # `audit verify`, not stop it with a decoding or type error.
        sql = (
            "SELECT seq, CAST(at AS BLOB), CAST(actor AS BLOB), CAST(action AS BLOB), "
            "CAST(partner AS BLOB), CAST(details AS BLOB), CAST(prev AS BLOB), CAST(hash AS BLOB) "
            "FROM audit_log WHERE 1 = 1"
        )
        params: list[Any] = []
        for clause, value in (
            (" AND at >= ?", since),
            (" AND at <= ?", until),
            (" AND partner = ?", partner),
            (" AND action = ?", action),
            (" AND seq >= ?", from_seq),
        ):
            if value is not None:
                sql += clause
                params.append(value)
        records = []
        for row in self.db.conn.execute(sql + " ORDER BY seq", params):
            at, actor, action, partner, details, prev, digest = (_text(v) for v in row[1:])
            records.append(
                AuditRecord(
                    row[0],
                    at or "",
                    actor or "",
                    action or "",
                    partner,
                    _details(details or ""),
                    prev or "",
                    digest or "",
                    details_text=details or "",
                )
            )
        return records

    def last_pull(self, partner: str) -> tuple[str | None, str | None]:
        """When a pull from `partner` last reached its server (every attempt is audited, a
        failed one with its error), and the error of the latest attempt if it failed."""
        conn = self.db.conn
        ok = conn.execute(
            "SELECT at FROM audit_log WHERE action = 'pull' AND partner = ? "
            "AND json_extract(details, '$.error') IS NULL ORDER BY seq DESC LIMIT 1",
            (partner,),
        ).fetchone()
        latest = conn.execute(
            "SELECT json_extract(details, '$.error') FROM audit_log WHERE action = 'pull' "
            "AND partner = ? ORDER BY seq DESC LIMIT 1",
            (partner,),
        ).fetchone()
        return (ok[0] if ok else None), (latest[0] if latest else None)

    def head(self) -> tuple[int, str]:
        row = self.db.conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        return (row[0], row[1]) if row else (0, GENESIS)

    def signed_heads(self) -> list[SignedHead]:
        return [
            SignedHead(row[0], *(_text(v) or "" for v in row[1:]))
            for row in self.db.conn.execute(
                "SELECT seq, CAST(hash AS BLOB), CAST(signed_at AS BLOB), CAST(kid AS BLOB), "
                "CAST(jws AS BLOB) FROM audit_heads ORDER BY seq"
            )
        ]

    def add_signed_head(self, head: SignedHead) -> None:
        with self.db.transaction() as conn:
            insert_signed_head(conn, head)
