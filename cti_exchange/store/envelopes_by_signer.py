"""Accepted envelopes by the key that signed them, and taking their objects out of use.

When `partners update-keys` learns that a partner's signing key was revoked (or retired)
before the time an envelope we already accepted claims, that envelope was signed by whoever
holds the key, not necessarily by the partner (partnership.py). Its objects are set to
`rejected` by the store itself, so that no export (which takes `accepted` objects by default)
and no analyst working through the `new` queue uses them unawares.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from cti_exchange.store.audit_log import append_audit

SYSTEM_ANALYST = "cti-exchange"  # as store/objects.py writes its own triage_log entries
REJECTED = "rejected"


@dataclass(frozen=True)
class AcceptedEnvelope:
    envelope_id: str
    partner: str  # our name for the partner it was read from
    signer_kid: str
    issued_at: str  # as signed, RFC 3339


def accepted_signed_by(conn: sqlite3.Connection, sender: str, kids: list[str]) -> list[AcceptedEnvelope]:
    """Envelopes accepted from agency `sender` signed by one of `kids`, in channel order."""
    if not kids:
        return []
    marks = ", ".join("?" for _ in kids)
    rows = conn.execute(
        "SELECT envelope_id, partner, signer_kid, issued_at FROM envelopes_in "  # noqa: S608 - placeholders only
        f"WHERE sender = ? AND signer_kid IN ({marks}) ORDER BY sequence, received_at, envelope_id",
        (sender, *kids),
    ).fetchall()
    return [AcceptedEnvelope(*row) for row in rows]


def reject_objects_of(
    conn: sqlite3.Connection,
    envelope: AcceptedEnvelope,
    *,
    actor: str,
    at: str,
    note: str,
    audit_details: dict[str, object],
) -> list[str]:
    """Inside the caller's transaction: sets to `rejected`, with `note` in the object's row and
    in triage_log, every current object version that came to us in this envelope and in no
    other (a version another envelope also brought stands on that one), whatever an analyst
    decided before. Appends one `key-alert` audit record. Returns the object ids."""
    rows = conn.execute(
        "SELECT o.object_id FROM objects o WHERE o.is_current = 1 AND o.partner = ?1 "
        "AND o.envelope_id = ?2 AND NOT EXISTS (SELECT 1 FROM object_sources s "
        "WHERE s.object_id = o.object_id AND s.version = o.version "
        "AND NOT (s.partner = ?1 AND s.envelope_id = ?2)) ORDER BY o.object_id",
        (envelope.partner, envelope.envelope_id),
    ).fetchall()
    object_ids = [row[0] for row in rows]
    conn.executemany(
        "UPDATE objects SET status = ?, status_by = ?, status_at = ?, status_note = ? "
        "WHERE object_id = ? AND is_current = 1",
        [(REJECTED, SYSTEM_ANALYST, at, note, object_id) for object_id in object_ids],
    )
    conn.executemany(
        "INSERT INTO triage_log (object_id, decision, analyst, decided_at, note) VALUES (?, ?, ?, ?, ?)",
        [(object_id, REJECTED, SYSTEM_ANALYST, at, note) for object_id in object_ids],
    )
    append_audit(
        conn,
        at=at,
        actor=actor,
        action="key-alert",
        partner=envelope.partner,
        details={
            "envelope_id": envelope.envelope_id,
            "signer_kid": envelope.signer_kid,
            "issued_at": envelope.issued_at,
            **audit_details,
            "objects_rejected": object_ids,
        },
    )
    return object_ids
