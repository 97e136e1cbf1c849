"""Delivery receipts in the store: receipts we owe partners, and receipts partners send us.

See cti_exchange/exchange/receipts.py for the receipt object and how receipts travel.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from cti_exchange.store.outbound import RECEIVED

RECEIPT_TYPE = "x-cti-exchange-receipt"
_CONTEXT_TYPES = frozenset({"identity", "marking-definition", "extension-definition"})


def is_receipt_only(objects: list[dict[str, Any]]) -> bool:
    kinds = {o.get("type") for o in objects} - _CONTEXT_TYPES
    return kinds == {RECEIPT_TYPE}


def receipt_only_envelopes(conn: sqlite3.Connection) -> set[str]:
    """The envelopes we sealed holding only receipts. Partners never acknowledge them (no
    receipts for receipts): once a server took one, nothing more will happen to it."""
    rows = conn.execute(
        "SELECT envelope_id, object_ids FROM sent_envelopes WHERE object_ids LIKE ?",
        (f'%"{RECEIPT_TYPE}--%',),
    )
    return {
        envelope_id
        for envelope_id, object_ids in rows
        if is_receipt_only([{"type": i.split("--", 1)[0]} for i in json.loads(object_ids)])
    }


def owe_receipt(conn: sqlite3.Connection, *, envelope_id: str, partner: str, digest: str, at: str) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO receipts_owed (envelope_id, partner, digest, accepted_at) VALUES (?, ?, ?, ?)",
        (envelope_id, partner, digest, at),
    )


def apply_receipts(conn: sqlite3.Connection, *, partner: str, objects: list[dict[str, Any]]) -> int:
    """Marks our envelopes the partner acknowledged as received; returns how many."""
    marked = 0
    for obj in objects:
        if obj.get("type") != RECEIPT_TYPE or not isinstance(obj.get("receipts"), list):
            continue
        for entry in obj["receipts"]:
            if not isinstance(entry, dict):
                continue
            cursor = conn.execute(
                "UPDATE deliveries SET status = ?, received_at = ? WHERE envelope_id = ? "
                "AND partner = ? AND status != ? AND EXISTS (SELECT 1 FROM sent_envelopes s "
                "WHERE s.envelope_id = deliveries.envelope_id AND s.digest = ?)",
                (
                    RECEIVED,
                    str(entry.get("accepted_at") or ""),
                    str(entry.get("envelope_id")),
                    partner,
                    RECEIVED,
                    str(entry.get("digest")),
                ),
            )
            marked += cursor.rowcount
    return marked
