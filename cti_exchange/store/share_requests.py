"""Push requests made idempotent: which request sealed which envelopes, and whether it finished.

A `push` of the same files to the same partners with the same options is one request
(exchange/push.py derives its id); an interrupted run is resumed, a finished one is not
repeated.
"""

from __future__ import annotations

import json

from cti_exchange.store.database import Database
from cti_exchange.store.outbound import DROPPED, FAILED, SEALED


class ShareRequests:
    """Makes a share idempotent. A request (e.g. one push of given files to given partners) is
    finished once every envelope it needs is sealed and acknowledged by a server (or queued,
    for `push --queue`). Running it again before that resumes it: only what was not sealed is
    sealed, only what was not posted is posted. Running it again after that shares nothing."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def state(self, request_id: str) -> tuple[str, str | None]:
        """("new", None), ("unfinished", None) or ("finished", finished_at)."""
        row = self.db.conn.execute(
            "SELECT finished_at FROM share_requests WHERE request_id = ?", (request_id,)
        ).fetchone()
        if row is None:
            return "new", None
        return ("finished", row[0]) if row[0] else ("unfinished", None)

    def start(self, request_id: str, at: str) -> None:
        """Called before sealing for the request. A request that finished is open again: it
        seals more now (objects the policy refused then and allows now), and is finished again
        only once those are posted too; an interruption before that is resumed, not taken
        for a request done."""
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO share_requests (request_id, created_at) VALUES (?, ?) "
                "ON CONFLICT (request_id) DO UPDATE SET finished_at = NULL",
                (request_id, at),
            )

    # Envelopes dropped from a removed partner's outbox (`partners remove --drop-outbox`) never
    # reached it: for a partner pinned again under that name, the request has shared nothing.
    def sealed_object_ids(self, request_id: str, partner: str) -> set[str]:
        ids: set[str] = set()
        for (object_ids,) in self.db.conn.execute(
            "SELECT s.object_ids FROM sent_envelopes s JOIN deliveries d USING (envelope_id) "
            "WHERE s.request_id = ? AND d.partner = ? AND d.status != ?",
            (request_id, partner, DROPPED),
        ):
            ids.update(json.loads(object_ids or "[]"))
        return ids

    def envelopes(self, request_id: str, partner: str) -> list[str]:
        return [
            row[0]
            for row in self.db.conn.execute(
                "SELECT s.envelope_id FROM sent_envelopes s JOIN deliveries d USING (envelope_id) "
                "WHERE s.request_id = ? AND d.partner = ? AND d.status != ? "
                "ORDER BY s.created_at, s.envelope_id",
                (request_id, partner, DROPPED),
            )
        ]

    def finish_if_done(self, request_id: str, at: str, *, queued: bool) -> bool:
        """Marks the request finished when nothing of it is left to post (or it was queued)."""
        with self.db.transaction() as conn:
            if not queued:
                pending = conn.execute(
                    "SELECT 1 FROM deliveries d JOIN sent_envelopes s USING (envelope_id) "
                    "WHERE s.request_id = ? AND d.status IN (?, ?) LIMIT 1",
                    (request_id, SEALED, FAILED),
                ).fetchone()
                if pending is not None:
                    return False
            conn.execute(
                "UPDATE share_requests SET finished_at = ? WHERE request_id = ? AND finished_at IS NULL",
                (at, request_id),
            )
        return True
