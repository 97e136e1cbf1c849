"""What we sent: outbound channel positions, sealed envelopes and their delivery to each partner.

A sealed envelope, the channel position it takes and its pending deliveries are recorded in one
transaction before anything is posted, so an interrupted push re-posts the same envelope (same
id, same sequence) instead of sealing a new one: nothing is lost, nothing doubled, and the
partner never sees a gap.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cti_exchange.clock import stix_timestamp
from cti_exchange.envelope.header import ChannelPosition, ChannelState
from cti_exchange.errors import LockHeldError
from cti_exchange.stix.tlp import Tlp
from cti_exchange.store.audit_log import append_audit
from cti_exchange.store.database import Database
from cti_exchange.store.projection import summary

if TYPE_CHECKING:  # sealing (and JOSE) loads only when something is sealed
    from cti_exchange.envelope.seal import SealedEnvelope

# Delivery states. EXPORTED: sealed to a file (`seal`), handed over outside TAXII. RESEALED:
# never posted; its content was sealed again in smaller envelopes (exchange/reseal.py).
# DROPPED: never posted; the partner was removed with `partners remove --drop-outbox`.
SEALED, POSTED, FAILED, RECEIVED, EXPORTED = "sealed", "posted", "failed", "received", "exported"
RESEALED, DROPPED = "resealed", "dropped"


@dataclass(frozen=True)
class PendingDelivery:
    envelope_id: str
    partner: str
    status: str
    attempts: int
    artifact: dict[str, Any]
    tlp: str | None = None  # the strictest TLP of what it carries, as recorded when sealed


@dataclass(frozen=True)
class DeliveryRecord:
    envelope_id: str
    partner: str
    status: str
    attempts: int
    created_at: str
    posted_at: str | None
    received_at: str | None
    object_count: int
    last_error: str | None


@dataclass(frozen=True)
class SentCopy:
    artifact: dict[str, Any]  # as last handed over (re-addressed, if it was)
    tlp: str | None  # the strictest TLP of what it carries, as recorded when sealed
    deliveries: list[DeliveryRecord]  # one per partner it is for


class Outbound:
    def __init__(self, db: Database, actor: str = "cti-exchange") -> None:
        self.db = db
        self.actor = actor

    def next_positions(self, recipients: list[str]) -> dict[str, ChannelPosition]:
        positions = {}
        for recipient in recipients:
            row = self.db.conn.execute(
                "SELECT sequence, digest FROM channels_out WHERE recipient = ?", (recipient,)
            ).fetchone()
            positions[recipient] = (
                ChannelPosition(sequence=row[0] + 1, previous=row[1])
                if row
                else ChannelPosition(sequence=1, previous=None)
            )
        return positions

    def record_sealed(
        self,
        sealed: SealedEnvelope,
        *,
        partners: dict[str, str],  # recipient agency id -> local partner name
        tlp: str | None,
        objects: list[dict[str, Any]],  # the STIX objects the envelope carries
        status: str = SEALED,
        request_id: str | None = None,
    ) -> None:
        with self.db.transaction() as conn:
            self._insert_sealed(
                conn,
                sealed,
                partners=partners,
                tlp=tlp,
                objects=objects,
                status=status,
                request_id=request_id,
            )

    def _insert_sealed(
        self,
        conn: sqlite3.Connection,
        sealed: SealedEnvelope,
        *,
        partners: dict[str, str],
        tlp: str | None,
        objects: list[dict[str, Any]],
        status: str,
        request_id: str | None,
    ) -> None:
        header = sealed.header
        created = stix_timestamp(header.issued_at)
        for recipient, position in header.channels.items():
            # The position must still be the next one: two pushes racing would collide here.
            row = conn.execute(
                "SELECT sequence FROM channels_out WHERE recipient = ?", (recipient,)
            ).fetchone()
            if (row[0] if row else 0) != position.sequence - 1:
                raise LockHeldError(
                    f"another push sealed on the channel to {recipient} at the same time",
                    hint="run the command again",
                )
            conn.execute(
                "INSERT INTO channels_out (recipient, sequence, digest, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (recipient) DO UPDATE SET "
                "sequence = excluded.sequence, digest = excluded.digest, "
                "updated_at = excluded.updated_at",
                (recipient, position.sequence, sealed.digest, created),
            )
        summaries = sorted(summary(obj) for obj in objects)  # b-tree inserts in key order
        conn.execute(
            "INSERT INTO sent_envelopes (envelope_id, request_id, created_at, bundle_id, "
            "object_count, recipients, tlp, digest, artifact, object_ids) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                header.envelope_id,
                request_id,
                created,
                header.bundle_id,
                header.object_count,
                json.dumps(list(header.recipients)),
                tlp,
                sealed.digest,
                json.dumps(sealed.artifact, separators=(",", ":")),
                json.dumps([row[0] for row in summaries]),
            ),
        )
        conn.executemany(
            "INSERT INTO deliveries (envelope_id, partner, status) VALUES (?, ?, ?)",
            [(header.envelope_id, partners[r], status) for r in header.recipients],
        )
        conn.executemany(
            "INSERT INTO shared_objects (object_id, last_version, type, ioc_type, value, tlp, "
            "first_created, last_envelope_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (object_id) DO UPDATE SET last_version = excluded.last_version, "
            "type = excluded.type, ioc_type = excluded.ioc_type, value = excluded.value, "
            "tlp = excluded.tlp, last_envelope_id = excluded.last_envelope_id, "
            "first_created = COALESCE(shared_objects.first_created, excluded.first_created)",
            [(*row, header.envelope_id) for row in summaries],
        )
        conn.executemany(  # which partners each object was sealed for (a sighting's check)
            "INSERT OR IGNORE INTO shared_with (object_id, partner) VALUES (?, ?)",
            [(row[0], partners[r]) for r in header.recipients for row in summaries],
        )
        append_audit(
            conn,
            at=created,
            actor=self.actor,
            action="seal",
            partner=",".join(partners[r] for r in header.recipients),
            details={
                "envelope_id": header.envelope_id,
                "recipients": list(header.recipients),
                "sequences": {r: p.sequence for r, p in header.channels.items()},
                "digest": sealed.digest,
                "bundle_id": header.bundle_id,
                "objects": header.object_count,
                "tlp": tlp,
                "transport": "file" if status == EXPORTED else "taxii",
            },
        )

    def replace_sealed(
        self,
        partner: str,
        recipient: str,
        replaced: list[tuple[str, list[tuple[SealedEnvelope, str | None, list[dict[str, Any]]]]]],
        *,
        start: ChannelPosition,
        last: ChannelState,
        reason: str,
        at: str,
        withheld: dict[str, list[str]] | None = None,
    ) -> None:
        """Queued envelopes to `recipient` sealed again (exchange/reseal.py), in one transaction:
        each old envelope (id, [(new envelope, tlp, its objects)]) leaves the outbox as RESEALED,
        the channel goes back to just before the first of them (`start`), and the new ones take
        its positions from there. `last` is where the channel must stand (the last old envelope):
        if anything was sealed or posted since they were read, nothing changes. `withheld`: the
        ids of objects of each old envelope left out (the sharing policy now refuses them)."""
        withheld = withheld or {}
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT sequence, digest FROM channels_out WHERE recipient = ?", (recipient,)
            ).fetchone()
            if row is None or ChannelState(sequence=row[0], digest=row[1]) != last:
                raise LockHeldError(
                    f"another command sealed on the channel to {recipient} at the same time",
                    hint="run the command again",
                )
            for old_id, pieces in replaced:
                request = conn.execute(
                    "SELECT request_id FROM sent_envelopes WHERE envelope_id = ?", (old_id,)
                ).fetchone()
                new_ids = [sealed.header.envelope_id for sealed, _, _ in pieces]
                what = (
                    f"sealed again as {', '.join(new_ids)}"
                    if new_ids
                    else "withheld: nothing in it may be sent now"
                )
                cursor = conn.execute(
                    "UPDATE deliveries SET status = ?, last_error = ? "
                    "WHERE envelope_id = ? AND partner = ? AND status IN (?, ?)",
                    (RESEALED, what, old_id, partner, SEALED, FAILED),
                )
                if cursor.rowcount != 1:
                    raise LockHeldError(
                        f"envelope {old_id} to {partner} was posted or changed at the same time",
                        hint="run the command again",
                    )
                append_audit(
                    conn,
                    at=at,
                    actor=self.actor,
                    action="reseal",
                    partner=partner,
                    details={
                        "envelope_id": old_id,
                        "sealed_as": new_ids,
                        "withheld": withheld.get(old_id, []),
                        "reason": reason,
                    },
                )
                if old_id == replaced[0][0]:
                    if start.previous is None:
                        conn.execute("DELETE FROM channels_out WHERE recipient = ?", (recipient,))
                    else:
                        conn.execute(
                            "UPDATE channels_out SET sequence = ?, digest = ? WHERE recipient = ?",
                            (start.sequence - 1, start.previous, recipient),
                        )
                for sealed, tlp, objects in pieces:
                    self._insert_sealed(
                        conn,
                        sealed,
                        partners={recipient: partner},
                        tlp=tlp,
                        objects=objects,
                        status=SEALED,
                        request_id=request[0] if request else None,
                    )

    def shared_tlps(self, object_ids: list[str]) -> dict[str, Tlp]:
        """The TLP each of these objects was last shared at, for those we shared."""
        return {object_id: Tlp(level) for object_id, level in self._shared("tlp", object_ids).items()}

    def first_created(self, object_ids: list[str]) -> dict[str, str]:
        """The `created` we gave objects we already shared, by id (for re-shares)."""
        return self._shared("first_created", object_ids)

    def _shared(self, column: str, object_ids: list[str]) -> dict[str, str]:
        """One column of the sent log per object, for the objects we shared that have it."""
        found: dict[str, str] = {}
        for start in range(0, len(object_ids), 500):
            chunk = object_ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for object_id, value in self.db.conn.execute(
                f"SELECT object_id, {column} FROM shared_objects "  # noqa: S608
                f"WHERE object_id IN ({marks}) AND {column} IS NOT NULL",  # a fixed name, placeholders
                chunk,
            ):
                found[object_id] = value
        return found

    def remember_max_content_length(self, partner: str, limit: int, at: str) -> None:
        if self.known_max_content_length(partner) == limit:
            return  # no commit (and fsync) for what is already known
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO partner_servers (partner, max_content_length, seen_at) VALUES (?, ?, ?) "
                "ON CONFLICT (partner) DO UPDATE SET max_content_length = excluded.max_content_length, "
                "seen_at = excluded.seen_at",
                (partner, limit, at),
            )

    def known_max_content_length(self, partner: str) -> int | None:
        row = self.db.conn.execute(
            "SELECT max_content_length FROM partner_servers WHERE partner = ?", (partner,)
        ).fetchone()
        return int(row[0]) if row else None

    def pending(self, partner: str | None = None) -> list[PendingDelivery]:
        """Deliveries sealed but not yet acknowledged by a TAXII server, oldest first."""
        return self._deliveries_in((SEALED, FAILED), partner)

    def pending_ids(self, partner: str) -> list[str]:
        """The envelopes `pending` would return, by id only (no artifact read)."""
        return [
            row[0]
            for row in self.db.conn.execute(
                "SELECT d.envelope_id FROM deliveries d JOIN sent_envelopes s USING (envelope_id) "
                "WHERE d.status IN (?, ?) AND d.partner = ? ORDER BY s.rowid",
                (SEALED, FAILED, partner),
            )
        ]

    def posted_unconfirmed(self, partner: str) -> list[PendingDelivery]:
        """Envelopes a partner's server acknowledged, with no receipt from the partner yet."""
        return self._deliveries_in((POSTED,), partner)

    def exported_unconfirmed(self, partner: str) -> list[PendingDelivery]:
        """Envelopes sealed to a file for a partner (`seal`), with no receipt from it yet."""
        return self._deliveries_in((EXPORTED,), partner)

    def sent_copy(self, envelope_id: str) -> SentCopy | None:
        """An envelope we sealed, as the store keeps it, and its delivery to each partner it is
        for; None if we sealed none under that id."""
        row = self.db.conn.execute(
            "SELECT artifact, tlp FROM sent_envelopes WHERE envelope_id = ?", (envelope_id,)
        ).fetchone()
        if row is None:
            return None
        return SentCopy(json.loads(row[0]), row[1], self.deliveries(envelope_id=envelope_id))

    def _deliveries_in(self, statuses: tuple[str, ...], partner: str | None) -> list[PendingDelivery]:
        marks = ",".join("?" * len(statuses))
        sql = (
            "SELECT d.envelope_id, d.partner, d.status, d.attempts, s.artifact, s.tlp "  # noqa: S608 - placeholders only
            "FROM deliveries d JOIN sent_envelopes s USING (envelope_id) "
            f"WHERE d.status IN ({marks})"
        )
        params: list[Any] = list(statuses)
        if partner is not None:
            sql += " AND d.partner = ?"
            params.append(partner)
        # In the order they were sealed, which is each channel's sequence order (sealing
        # records the envelope and moves the channel in one transaction): envelopes of one
        # push share created_at, and the clock may step back between pushes, so neither the
        # time nor the random envelope id gives that order.
        sql += " ORDER BY s.rowid"
        return [
            PendingDelivery(row[0], row[1], row[2], row[3], json.loads(row[4]), row[5])
            for row in self.db.conn.execute(sql, params)
        ]

    def drop_pending(self, partner: str, at: str) -> list[str]:
        """Takes every envelope still queued for `partner` out of the outbox for good (DROPPED),
        with the audit record, in one transaction: the partner is being removed, and a partner
        pinned again under the same name must not be sent what was sealed to the old one."""
        with self.db.transaction() as conn:
            dropped = [
                row[0]
                for row in conn.execute(
                    "SELECT d.envelope_id FROM deliveries d JOIN sent_envelopes s USING (envelope_id) "
                    "WHERE d.partner = ? AND d.status IN (?, ?) ORDER BY s.rowid",
                    (partner, SEALED, FAILED),
                )
            ]
            conn.execute(
                "UPDATE deliveries SET status = ?, last_error = ? WHERE partner = ? AND status IN (?, ?)",
                (DROPPED, "dropped: partner removed", partner, SEALED, FAILED),
            )
            if dropped:
                append_audit(
                    conn,
                    at=at,
                    actor=self.actor,
                    action="drop",
                    partner=partner,
                    details={"envelope_ids": dropped, "reason": "partner removed with --drop-outbox"},
                )
        return dropped

    def requeue(self, partner: str, envelope_ids: list[str], reason: str, at: str) -> None:
        """Posted envelopes to post again (the partner could not open them), with the audit
        record saying why, in one transaction."""
        with self.db.transaction() as conn:
            conn.executemany(
                "UPDATE deliveries SET status = ?, last_error = ? "
                "WHERE envelope_id = ? AND partner = ? AND status = ?",
                [(SEALED, reason[:500], envelope_id, partner, POSTED) for envelope_id in envelope_ids],
            )
            append_audit(
                conn,
                at=at,
                actor=self.actor,
                action="requeue",
                partner=partner,
                details={"envelope_ids": envelope_ids, "reason": reason},
            )

    def readdress(
        self, envelope_id: str, artifact: dict[str, Any], keys: dict[str, list[str]], at: str
    ) -> None:
        """The queued envelope now wrapped for other keys (envelope/readdress.py), with the
        audit record saying which, in one transaction."""
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE sent_envelopes SET artifact = ? WHERE envelope_id = ?",
                (json.dumps(artifact, separators=(",", ":")), envelope_id),
            )
            append_audit(
                conn,
                at=at,
                actor=self.actor,
                action="readdress",
                details={"envelope_id": envelope_id, "artifact_id": artifact["id"], **keys},
            )

    def readdress_exported(
        self,
        envelope_id: str,
        partners: list[str],
        artifact: dict[str, Any],
        keys: dict[str, list[str]],
        at: str,
    ) -> None:
        """An envelope sealed to a file, wrapped for other keys to be handed over again
        (`seal --readdress`, exchange/offline.py), in one transaction: the artifact, a note on
        each partner's delivery (the sent log shows it) and the audit record."""
        note = (
            f"re-addressed {at} to key(s) {', '.join(keys.get('added', [])) or 'none'} "
            "(`seal --readdress`): hand over the new file"
        )
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE sent_envelopes SET artifact = ? WHERE envelope_id = ?",
                (json.dumps(artifact, separators=(",", ":")), envelope_id),
            )
            conn.executemany(
                "UPDATE deliveries SET last_error = ? WHERE envelope_id = ? AND partner = ? AND status = ?",
                [(note, envelope_id, partner, EXPORTED) for partner in partners],
            )
            append_audit(
                conn,
                at=at,
                actor=self.actor,
                action="readdress",
                partner=",".join(partners),
                details={
                    "envelope_id": envelope_id,
                    "artifact_id": artifact["id"],
                    **keys,
                    "transport": "file",
                },
            )

    def mark_posted(self, envelope_id: str, partner: str, at: str) -> None:
        with self.db.transaction() as conn:
            cursor = conn.execute(
                "UPDATE deliveries SET status = ?, posted_at = ?, attempts = attempts + 1, "
                "last_error = NULL WHERE envelope_id = ? AND partner = ? AND status != ? "
                "AND status != ?",
                (POSTED, at, envelope_id, partner, RECEIVED, POSTED),
            )
            if cursor.rowcount:
                append_audit(
                    conn,
                    at=at,
                    actor=self.actor,
                    action="push",
                    partner=partner,
                    details={"envelope_id": envelope_id, "status": POSTED},
                )

    def mark_failed(self, envelope_id: str, partner: str, error: str) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE deliveries SET status = ?, attempts = attempts + 1, last_error = ? "
                "WHERE envelope_id = ? AND partner = ? AND status IN (?, ?)",
                (FAILED, error[:500], envelope_id, partner, SEALED, FAILED),
            )

    def mark_received(self, envelope_id: str, partner: str, at: str) -> bool:
        with self.db.transaction() as conn:
            cursor = conn.execute(
                "UPDATE deliveries SET status = ?, received_at = ? "
                "WHERE envelope_id = ? AND partner = ? AND status != ?",
                (RECEIVED, at, envelope_id, partner, RECEIVED),
            )
        return cursor.rowcount > 0

    def deliveries(
        self, partner: str | None = None, *, envelope_id: str | None = None
    ) -> list[DeliveryRecord]:
        sql = (
            "SELECT d.envelope_id, d.partner, d.status, d.attempts, s.created_at, d.posted_at, "
            "d.received_at, s.object_count, d.last_error FROM deliveries d "
            "JOIN sent_envelopes s USING (envelope_id)"
        )
        terms, params = [], []
        if partner is not None:
            terms.append("d.partner = ?")
            params.append(partner)
        if envelope_id is not None:
            terms.append("d.envelope_id = ?")
            params.append(envelope_id)
        if terms:
            sql += " WHERE " + " AND ".join(terms)
        order = " ORDER BY s.created_at, d.rowid"
        return [DeliveryRecord(*row) for row in self.db.conn.execute(sql + order, params)]
