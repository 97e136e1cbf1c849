"""What we received: accepted envelopes, inbound channel state, quarantine, TAXII cursors."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from cti_exchange.clock import parse_timestamp, stix_timestamp
from cti_exchange.envelope.header import ChannelState
from cti_exchange.envelope.reasons import EnvelopeRejected, RejectReason
from cti_exchange.errors import LockHeldError
from cti_exchange.store.audit_log import append_audit

if TYPE_CHECKING:  # the envelope code (and JOSE) loads only when envelopes are opened
    from cti_exchange.envelope.open import OpenedEnvelope

from cti_exchange.store.database import Database
from cti_exchange.store.erasure_tombstones import has_tombstones, withhold_erased
from cti_exchange.store.object_queries import SpellingForms
from cti_exchange.store.objects import StoredObjects, write_objects
from cti_exchange.store.receipts import RECEIPT_TYPE, apply_receipts, is_receipt_only, owe_receipt

# Refused for now, not for good: a gap may fill, a sender's clock that ran ahead comes back, and
# an envelope too old to open alone opens once it is the next on its channel (envelope/open.py).
# Pull opens them again (exchange/held.py).
HELD_REASONS = (
    RejectReason.SEQUENCE_GAP.value,
    RejectReason.ISSUED_IN_FUTURE.value,
    RejectReason.TOO_OLD.value,
    # Signed with a key of the partner we have not pinned: after `keys rotate` a partner's
    # next envelope usually arrives before we run `partners update-keys`. Held, it goes through
    # once its key is pinned (with the envelopes held behind it), instead of needing the
    # artifact exported and opened by hand.
    RejectReason.UNKNOWN_KEY.value,
    # Sealed to an encryption key of ours the profile does not hold (keys/ restored from a
    # backup older than the partner's copy of our keys): dropped as not for us, it was lost for
    # good. Held, it goes through once the right keys are back.
    RejectReason.SEALED_TO_UNKNOWN_KEY_OF_OURS.value,
)
_RECORD_COLUMNS = "id, partner, envelope_id, sender, reason, detail, received_at, resolved_at, resolution"
_QUARANTINE_RECORD = f"SELECT {_RECORD_COLUMNS} FROM quarantine"  # noqa: S608 - constant text

# Versions not applied are counted in the audit record; this many are named.
_AUDITED_NOT_APPLIED = 20


@dataclass(frozen=True)
class TaxiiOrigin:
    """Where an envelope was read from, so a re-read never processes it twice."""

    partner: str
    collection: str
    object_id: str
    version: str


@dataclass(frozen=True)
class QuarantineRecord:
    id: int
    partner: str | None
    envelope_id: str | None
    sender: str | None
    reason: str
    detail: str
    received_at: str
    resolved_at: str | None
    resolution: str | None = None


@dataclass(frozen=True)
class QuarantinedEnvelope:
    """A refused envelope as its quarantine record keeps it. `received`: the bytes of the
    envelope file `open` read, exactly (kept as a BLOB in the `artifact` column). Otherwise
    `stored`: the artifact as parsed and written again in compact JSON, its keys in the order
    received; so for one read from TAXII (`from_taxii`: one object of a server's response,
    which has no bytes of its own), one that came inside a bundle file, and every record made
    before the bytes were kept."""

    stored: str | None
    received: bytes | None
    from_taxii: bool


def artifact_digest(artifact: Any) -> str:
    """SHA-256 of the artifact's canonical JSON (keys sorted, no spaces, ASCII): the same
    envelope written with other whitespace, key order or escapes has the same digest."""
    canonical = json.dumps(artifact, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


class Inbound:
    def __init__(self, db: Database, actor: str = "cti-exchange") -> None:
        self.db = db
        self.actor = actor
        # (record id, recipient) -> the sequence number its routing hints give that recipient
        # (0: none), read once per store handle (`hinted_sequence`).
        self._hinted: dict[tuple[int, str], int] = {}
        # Partners whose held records this handle added: their gap records are described
        # again at the end of the retry (exchange/held.py, `describe_held_gaps`).
        self.newly_held: set[str | None] = set()

    def seen_envelope(self, sender: str, envelope_id: str) -> bool:
        """Per sender: an envelope id is the sender's choice, so another partner must not be
        able to use it up (migration 5)."""
        row = self.db.conn.execute(
            "SELECT 1 FROM envelopes_in WHERE sender = ? AND envelope_id = ?", (sender, envelope_id)
        ).fetchone()
        return row is not None

    def copy_of_accepted(self, rejected: EnvelopeRejected) -> str | None:
        """When a `replayed-envelope` is exactly the signed envelope we accepted under that id
        (its digest, checked after its signature), when we accepted it: a copy (a file opened
        again, an envelope posted twice or re-addressed), not a replay to alert about."""
        if rejected.reason is not RejectReason.REPLAYED or not (rejected.digest and rejected.sender):
            return None
        row = self.db.conn.execute(
            "SELECT digest, received_at FROM envelopes_in WHERE sender = ? AND envelope_id = ?",
            (rejected.sender, rejected.envelope_id or ""),
        ).fetchone()
        return str(row[1]) if row and row[0] == rejected.digest else None

    def accepted_artifact(self, partner: str, artifact_id: str) -> bool:
        row = self.db.conn.execute(
            "SELECT 1 FROM envelopes_in WHERE partner = ? AND artifact_id = ?", (partner, artifact_id)
        ).fetchone()
        return row is not None

    def channel_state(self, sender: str) -> ChannelState | None:
        row = self.db.conn.execute(
            "SELECT sequence, digest, issued_at FROM channels_in WHERE sender = ?", (sender,)
        ).fetchone()
        if row is None:
            return None
        issued = parse_timestamp(row[2]) if row[2] else None
        return ChannelState(sequence=row[0], digest=row[1], issued_at=issued)

    def accepted_at_sequence(self, sender: str, sequence: int) -> bool:
        """Whether an envelope from `sender` was accepted at that position of its channel to
        us (one passed over by an accepted gap was not)."""
        row = self.db.conn.execute(
            "SELECT 1 FROM envelopes_in WHERE sender = ? AND sequence = ? LIMIT 1", (sender, sequence)
        ).fetchone()
        return row is not None

    def accept(
        self,
        opened: OpenedEnvelope,
        *,
        partner: str,
        received_at: str,
        artifact_id: str | None,
        origin: TaxiiOrigin | None = None,
        partner_identity: str | None = None,
        resolves: tuple[int, str] | None = None,
        restart: dict[str, Any] | None = None,
    ) -> StoredObjects:
        """Stores an opened envelope and its objects in one transaction. `partner_identity` is
        the STIX identity the partner's signed key document names: objects it created are its
        to version even when another partner sent them first (store/objects.py). `resolves`
        (quarantine record id, resolution) closes the record of a held envelope with it.
        `restart`: the envelope is accepted as the new start of its sender's channel
        (`quarantine accept-restart`); the `channel-restart` audit record, with these details,
        is written in the same transaction, before the `accept` one."""
        header = opened.header
        with self.db.transaction() as conn:
            # Receipts are the exchange's own acknowledgements (apply_receipts below), not
            # intelligence to triage or export: the envelope record keeps them.
            objects = [o for o in opened.bundle["objects"] if o.get("type") != RECEIPT_TYPE]
            withheld: list[str] = []
            if has_tombstones(conn):  # what was erased on request is not stored again
                objects, withheld = withhold_erased(conn, objects, partner, _value_forms(), at=received_at)
            if restart is not None:
                append_audit(
                    conn,
                    at=received_at,
                    actor=self.actor,
                    action="channel-restart",
                    partner=partner,
                    details=restart,
                )
                # The records held for a gap were tried at a position of the old channel: the
                # new one may stand at the same number, and they must be opened again.
                conn.execute(
                    "UPDATE quarantine SET tried_at_sequence = NULL WHERE sender = ? AND resolved_at IS NULL",
                    (header.sender,),
                )
            conn.execute(
                "INSERT INTO envelopes_in (envelope_id, partner, sender, sequence, digest, "
                "issued_at, received_at, signer_kid, signer_thumbprint, bundle_id, object_count, "
                "artifact_id, jws_deflated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    header.envelope_id,
                    partner,
                    header.sender,
                    opened.channel.sequence if opened.channel else None,
                    opened.digest,
                    stix_timestamp(header.issued_at),
                    received_at,
                    opened.signer.kid,
                    opened.signer.thumbprint,
                    header.bundle_id,
                    header.object_count,
                    artifact_id,
                    # The signed copy holds what was withheld: not kept (as the erasure blanks it).
                    b"" if withheld else opened.jws_deflated,
                ),
            )
            if opened.channel is not None:
                conn.execute(
                    "INSERT INTO channels_in (sender, sequence, digest, updated_at, issued_at) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (sender) DO UPDATE SET "
                    "sequence = excluded.sequence, digest = excluded.digest, "
                    "updated_at = excluded.updated_at, issued_at = excluded.issued_at",
                    (
                        header.sender,
                        opened.channel.sequence,
                        opened.digest,
                        received_at,
                        stix_timestamp(header.issued_at),
                    ),
                )
            stored = write_objects(
                conn,
                objects,
                envelope_id=header.envelope_id,
                partner=partner,
                received_at=received_at,
                partner_identity=partner_identity,
            )
            if origin is not None:
                _mark_processed(conn, origin, "accepted")
            if resolves is not None:  # a held envelope, accepted when retried
                conn.execute(
                    "UPDATE quarantine SET resolved_at = ?, resolution = ? WHERE id = ?",
                    (received_at, resolves[1], resolves[0]),
                )
            # Other records of this same envelope waiting in quarantine are closed with it:
            # - a copy we could not open because it was wrapped for a key we revoked: the sender
            #   re-addressed it (envelope/readdress.py), and this is the same signed envelope;
            # - a copy held (a gap, a clock) and now accepted another way (`open --accept-gap`,
            #   or read again from a file): otherwise its next retry would call it a replay.
            held = ", ".join(f"?{7 + n}" for n in range(len(HELD_REASONS)))
            conn.execute(
                "UPDATE quarantine SET resolved_at = ?1, resolution = CASE reason WHEN ?2 THEN ?3 "  # noqa: S608 - numbered placeholders only
                "ELSE ?4 END WHERE resolved_at IS NULL AND sender = ?5 AND envelope_id = ?6 "
                f"AND reason IN (?2, {held})",
                (
                    received_at,
                    RejectReason.ENCRYPTED_TO_REVOKED_KEY.value,
                    "accepted when re-addressed to our current key",
                    f"accepted: the same envelope, received again ({header.envelope_id})",
                    header.sender,
                    header.envelope_id,
                    *HELD_REASONS,
                ),
            )
            if withheld:
                stored.withheld_erased = withheld
                # Nor does a quarantine record closed with it keep its copy (nor one closed before).
                conn.execute(
                    "UPDATE quarantine SET artifact = '' WHERE resolved_at IS NOT NULL AND artifact != '' "
                    "AND (id = ? OR (sender = ? AND envelope_id = ?))",
                    (resolves[0] if resolves else None, header.sender, header.envelope_id),
                )
            objects = opened.bundle["objects"]
            if opened.channel is not None and not is_receipt_only(objects):
                owe_receipt(
                    conn,
                    envelope_id=header.envelope_id,
                    partner=partner,
                    digest=opened.digest,
                    at=received_at,
                )
            acknowledged = apply_receipts(conn, partner=partner, objects=objects)
            append_audit(
                conn,
                at=received_at,
                actor=self.actor,
                action="accept",
                partner=partner,
                details={
                    "envelope_id": header.envelope_id,
                    "sender": header.sender,
                    "sequence": opened.channel.sequence if opened.channel else None,
                    "gap_accepted": list(opened.gap_skipped),
                    "digest": opened.digest,
                    "signer_kid": opened.signer.kid,
                    "signer_thumbprint": opened.signer.thumbprint,
                    "bundle_id": header.bundle_id,
                    "objects": header.object_count,
                    "new_versions": stored.new_versions,
                    "versions_not_applied": len(stored.not_applied),
                    "not_applied_sample": [
                        {"object_id": n.object_id, "version": n.version, "owner": n.owner}
                        for n in stored.not_applied[:_AUDITED_NOT_APPLIED]
                    ],
                    "receipts_for_our_envelopes": acknowledged,
                    # Erased on request, not stored again (store/erasure_tombstones.py): ids only.
                    **(
                        {
                            "withheld_as_erased": len(withheld),
                            "withheld_sample": withheld[:_AUDITED_NOT_APPLIED],
                        }
                        if withheld
                        else {}
                    ),
                },
            )
        return stored

    def quarantine(
        self,
        artifact: dict[str, Any],
        rejected: EnvelopeRejected,
        *,
        partner: str | None,
        received_at: str,
        origin: TaxiiOrigin | None = None,
        received: bytes | None = None,
        tried_with_keys: str | None = None,
    ) -> int:
        """Keeps the envelope and why it was refused; nothing from it is accepted. `received`:
        the bytes of the file that is this artifact, exactly as read (`quarantine show ID
        --artifact` prints them back); they are kept as a BLOB in place of the compact JSON,
        and parse to the same artifact. `tried_with_keys`: for one held until a key ring
        changes, that ring's fingerprint now (`keys_unchanged`)."""
        stored: str | bytes = (
            received if received is not None else json.dumps(artifact, separators=(",", ":"))
        )
        with self.db.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO quarantine (partner, collection, taxii_object_id, envelope_id, "
                "sender, reason, detail, received_at, artifact, tried_at_sequence, tried_with_keys) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    partner,
                    origin.collection if origin else None,
                    artifact.get("id") if isinstance(artifact, dict) else None,
                    rejected.envelope_id,
                    rejected.sender,
                    rejected.reason.value,
                    rejected.detail,
                    received_at,
                    stored,
                    _channel_sequence(conn, rejected.sender)
                    if rejected.reason is RejectReason.SEQUENCE_GAP
                    else None,
                    tried_with_keys,
                ),
            )
            if origin is not None:
                _mark_processed(conn, origin, "quarantined")
            append_audit(
                conn,
                at=received_at,
                actor=self.actor,
                action="reject",
                partner=partner,
                details={
                    "envelope_id": rejected.envelope_id,
                    "sender": rejected.sender,
                    "reason": rejected.reason.value,
                    "detail": rejected.detail,
                    "quarantine_id": cursor.lastrowid,
                },
            )
        if rejected.reason.value in HELD_REASONS:
            self.newly_held.add(partner)
        return int(cursor.lastrowid or 0)

    def quarantined(self, *, include_resolved: bool = False) -> list[QuarantineRecord]:
        sql = _QUARANTINE_RECORD
        if not include_resolved:
            sql += " WHERE resolved_at IS NULL"
        return [QuarantineRecord(*row) for row in self.db.conn.execute(sql + " ORDER BY id")]

    def quarantine_record(self, record_id: int) -> QuarantineRecord | None:
        """None for an id no record has, including one SQLite cannot even hold (a typo)."""
        if not _storable_id(record_id):
            return None
        row = self.db.conn.execute(_QUARANTINE_RECORD + " WHERE id = ?", (record_id,)).fetchone()
        return QuarantineRecord(*row) if row else None

    def open_record_holding(
        self, artifact: dict[str, Any], rejected: EnvelopeRejected
    ) -> QuarantineRecord | None:
        """The open record that already holds this envelope, refused from the same sender
        under the same envelope id (the same file opened twice), or None. Compared by content
        (`artifact_digest`), not by the text: the copy `quarantine show ID --artifact` printed,
        or one a tool indented again, is the same envelope. Another artifact under that id (a
        replay, a re-addressed copy) is not it."""
        wanted = artifact_digest(artifact)
        rows = self.db.conn.execute(
            f"SELECT {_RECORD_COLUMNS}, artifact FROM quarantine "  # noqa: S608 - constant text
            "WHERE resolved_at IS NULL AND envelope_id IS ? AND sender IS ? ORDER BY id",
            (rejected.envelope_id, rejected.sender),
        )
        for *fields, stored in rows:
            try:
                if artifact_digest(json.loads(stored)) == wanted:
                    return QuarantineRecord(*fields)
            except (ValueError, RecursionError):
                continue
        return None

    def gap_unchanged(self, record_id: int, sender: str | None) -> bool:
        """Whether a record held for a sequence gap was last opened with its sender's channel
        where it is now: opening it again would only find the same gap."""
        row = self.db.conn.execute(
            "SELECT tried_at_sequence FROM quarantine WHERE id = ?", (record_id,)
        ).fetchone()
        return row is not None and row[0] is not None and row[0] == _channel_sequence(self.db.conn, sender)

    def note_gap_tried(self, record_id: int, sender: str | None) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE quarantine SET tried_at_sequence = ? WHERE id = ?",
                (_channel_sequence(conn, sender), record_id),
            )

    def keys_unchanged(self, record_id: int, fingerprint: str) -> bool:
        """Whether a record held until a key ring changes (unknown-key, sealed-to-unknown-key-
        of-ours) was last opened with that ring as it is now (`fingerprint`): opening it again
        would only decrypt and inflate it to the same refusal."""
        row = self.db.conn.execute(
            "SELECT tried_with_keys FROM quarantine WHERE id = ?", (record_id,)
        ).fetchone()
        return row is not None and row[0] == fingerprint

    def note_keys_tried(self, record_id: int, fingerprint: str | None) -> None:
        with self.db.transaction() as conn:
            conn.execute("UPDATE quarantine SET tried_with_keys = ? WHERE id = ?", (fingerprint, record_id))

    def note_held_again(self, record: QuarantineRecord, rejected: EnvelopeRejected) -> None:
        """A held envelope opened again and held for another reason (its sender's clock came
        back, and now the gap behind it shows): the open record says why it is held now, so
        `quarantine list` names the right check and `accept-gap` takes a gap. The first
        refusal stays in the audit trail (`reject`)."""
        if (record.reason, record.detail) == (rejected.reason.value, rejected.detail):
            return
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE quarantine SET reason = ?, detail = ? WHERE id = ? AND resolved_at IS NULL",
                (rejected.reason.value, rejected.detail, record.id),
            )

    def quarantined_artifact(self, record_id: int) -> dict[str, Any] | None:
        if not _storable_id(record_id):
            return None
        row = self.db.conn.execute("SELECT artifact FROM quarantine WHERE id = ?", (record_id,)).fetchone()
        return json.loads(row[0]) if row and row[0] else None  # '': erased (store/erasure.py)

    def quarantined_envelope(self, record_id: int) -> QuarantinedEnvelope | None:
        """The refused envelope of a record, with the bytes received where they were kept."""
        if not _storable_id(record_id):
            return None
        row = self.db.conn.execute(
            "SELECT artifact, collection FROM quarantine WHERE id = ?", (record_id,)
        ).fetchone()
        if row is None:
            return None
        kept, collection = row
        if not kept:  # erased (store/erasure.py)
            return None
        if isinstance(kept, bytes):
            return QuarantinedEnvelope(stored=None, received=kept, from_taxii=False)
        return QuarantinedEnvelope(stored=str(kept), received=None, from_taxii=collection is not None)

    def held_records(self, partner: str | None) -> list[QuarantineRecord]:
        """The open held records read from `partner`, oldest first."""
        held = ", ".join("?" for _ in HELD_REASONS)
        rows = self.db.conn.execute(
            f"{_QUARANTINE_RECORD} WHERE resolved_at IS NULL AND partner IS ? "
            f"AND reason IN ({held}) ORDER BY id",
            (partner, *HELD_REASONS),
        )
        return [QuarantineRecord(*row) for row in rows]

    def hinted_sequence(self, record_id: int, recipient: str) -> int:
        """The sequence number a record's routing hints give `recipient` (0: none, or hints
        that do not read), read once per store handle. Equal to the signed header for an
        envelope held as sequence-gap or too-old (checked before those reasons); for one held
        as issued-in-future or unknown-key, only what the envelope claims."""
        from cti_exchange.envelope.artifact import routing_hints

        key = (record_id, recipient)
        if key not in self._hinted:
            artifact = self.quarantined_artifact(record_id)
            sequence = 0
            if isinstance(artifact, dict):
                try:
                    sequence = routing_hints(artifact).sequences.get(recipient, 0)
                except EnvelopeRejected:
                    pass
            self._hinted[key] = sequence if 0 < sequence < 2**62 else 0
        return self._hinted[key]

    def note_gap_details(self, details: dict[int, str]) -> None:
        """Says again why open records are held for a gap, now that the envelopes held before
        them or our channel changed (exchange/held.py, `describe_held_gaps`)."""
        if not details:
            return
        with self.db.transaction() as conn:
            conn.executemany(
                "UPDATE quarantine SET detail = ? WHERE id = ? AND resolved_at IS NULL AND reason = ?",
                [(text, record_id, RejectReason.SEQUENCE_GAP.value) for record_id, text in details.items()],
            )

    def resolve_quarantine(self, record_ids: list[int], resolution: str, at: str) -> None:
        """Closes records (all or none), each with an audit `quarantine-resolve` record: what
        was refused is never deleted, and closing it is on the record too."""
        with self.db.transaction() as conn:
            for record_id in record_ids:
                row = conn.execute(
                    "SELECT partner, envelope_id, sender, reason FROM quarantine WHERE id = ?",
                    (record_id,),
                ).fetchone()
                closed = conn.execute(
                    "UPDATE quarantine SET resolved_at = ?, resolution = ? "
                    "WHERE id = ? AND resolved_at IS NULL",
                    (at, resolution, record_id),
                )
                if not closed.rowcount:  # closed meanwhile (a pull accepted it): keep its resolution
                    raise LockHeldError(
                        f"quarantine record {record_id} was resolved at the same time",
                        hint="see `cti-exchange quarantine list --all`",
                    )
                append_audit(
                    conn,
                    at=at,
                    actor=self.actor,
                    action="quarantine-resolve",
                    partner=row[0] if row else None,
                    details={
                        "quarantine_id": record_id,
                        "envelope_id": row[1] if row else None,
                        "sender": row[2] if row else None,
                        "reason": row[3] if row else None,
                        "resolution": resolution,
                    },
                )

    # -- TAXII reading position --------------------------------------------------------------

    def processed(self, origin: TaxiiOrigin) -> bool:
        row = self.db.conn.execute(
            "SELECT 1 FROM taxii_processed WHERE partner = ? AND collection = ? "
            "AND object_id = ? AND version = ?",
            (origin.partner, origin.collection, origin.object_id, origin.version),
        ).fetchone()
        return row is not None

    def mark_processed(self, origin: TaxiiOrigin, outcome: str) -> None:
        with self.db.transaction() as conn:
            _mark_processed(conn, origin, outcome)

    def cursor(self, partner: str, collection: str) -> str | None:
        row = self.db.conn.execute(
            "SELECT added_after FROM pull_cursors WHERE partner = ? AND collection = ?",
            (partner, collection),
        ).fetchone()
        return row[0] if row else None

    def move_cursor(self, partner: str, collection: str, added_after: str, at: str) -> None:
        """Called only once everything up to `added_after` is committed (see exchange/pull.py)."""
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO pull_cursors (partner, collection, added_after, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (partner, collection) DO UPDATE SET "
                "added_after = excluded.added_after, updated_at = excluded.updated_at "
                "WHERE excluded.added_after > pull_cursors.added_after "
                "OR pull_cursors.added_after IS NULL",
                (partner, collection, added_after, at),
            )


@cache
def _value_forms() -> SpellingForms:
    """The canonical form of values, to match erased ones (loaded only when the store has any)."""
    from cti_exchange.exporters.value_forms import bundled_value_forms

    return bundled_value_forms()


def _mark_processed(conn: sqlite3.Connection, origin: TaxiiOrigin, outcome: str) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO taxii_processed (partner, collection, object_id, version, outcome) "
        "VALUES (?, ?, ?, ?, ?)",
        (origin.partner, origin.collection, origin.object_id, origin.version, outcome),
    )


def _storable_id(record_id: int) -> bool:
    """Whether an id fits SQLite's INTEGER; binding a larger one raises OverflowError."""
    return -(2**63) <= record_id < 2**63


def _channel_sequence(conn: sqlite3.Connection, sender: str | None) -> int:
    """The last sequence accepted on a sender's channel; 0 before the first."""
    row = conn.execute("SELECT sequence FROM channels_in WHERE sender = ?", (sender,)).fetchone()
    return int(row[0]) if row else 0
