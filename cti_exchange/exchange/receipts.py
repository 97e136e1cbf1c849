"""Delivery receipts: when we accept a partner's envelope we owe it a receipt; the next sync
sends it back, signed and encrypted like any envelope; when a partner's receipt arrives, our
sent log marks those envelopes as received and verified by that partner.

A receipt is a STIX 2.1 custom object in its own envelope:

    {"type": "x-cti-exchange-receipt", "spec_version": "2.1",
     "id": "x-cti-exchange-receipt--<uuid5 of our identity and the envelope ids>",
     "created": T, "modified": T, "created_by_ref": <our identity>,
     "object_marking_refs": [TLP:CLEAR],
     "receipts": [{"envelope_id": E, "digest": D, "accepted_at": T}, ...]}

`digest` is the envelope's channel digest (base64url SHA-256 of its JWS), so a receipt proves
that exactly the envelope we sent was accepted. Envelopes holding only receipts are never
acknowledged themselves (no receipts for receipts).

Receipt objects are cut to the partner server's request limit (exchange/receipt_objects.py), so
a receipt envelope always fits it; one sealed larger (before that, or for a larger limit than
the server now takes) is sealed again in envelopes that fit when `sync` posts it
(exchange/reseal.py).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from cti_exchange.clock import utc_now
from cti_exchange.exchange.push import ShareResult, assumed_max_content_length, share_objects
from cti_exchange.exchange.receipt_objects import MAX_RECEIPTS_PER_OBJECT, receipt_object, receipt_objects
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.partnership import get_partner
from cti_exchange.store.store import Store

__all__ = ["MAX_RECEIPTS_PER_OBJECT", "ReceiptsSent", "receipt_object", "send_owed_receipts"]


@dataclass
class ReceiptsSent:
    by_partner: dict[str, int] = field(default_factory=dict)
    shares: list[ShareResult] = field(default_factory=list)


def send_owed_receipts(home: ProfileHome, store: Store, *, queue_only: bool = True) -> ReceiptsSent:
    """Seals receipts for everything accepted since the last ones, per partner, in as few
    envelopes as fit its server's limit as last read (or 1 MiB for a server never reached)."""
    profile = home.load_profile()
    sent = ReceiptsSent()
    owed: dict[str, list[tuple[str, str, str]]] = {}
    for envelope_id, partner, digest, accepted_at in store.db.conn.execute(
        "SELECT envelope_id, partner, digest, accepted_at FROM receipts_owed "
        "WHERE receipt_envelope_id IS NULL ORDER BY accepted_at, envelope_id"
    ):
        owed.setdefault(partner, []).append((envelope_id, digest, accepted_at))
    for partner_name, rows in owed.items():
        configured = profile.partners.get(partner_name)
        if configured is None or not (configured.taxii and configured.taxii.write_collection):
            # Removed, or exchanging by files only (`seal`/`open`): a receipt could only wait
            # in the outbox for good. It stays owed, and goes once the partner has a server.
            continue
        partner = get_partner(home, partner_name)
        entries = [{"envelope_id": e, "digest": d, "accepted_at": a} for e, d, a in rows]
        # Cut to the limit share_objects seals queued envelopes to: an object too large for the
        # server would make an envelope that could never be posted, and all later ones on the
        # channel would wait behind it.
        limit, _ = assumed_max_content_length(store, partner)
        objects = receipt_objects(profile.identity_id, entries, utc_now(), limit)
        request_id = "receipt-" + str(uuid.uuid5(uuid.NAMESPACE_URL, ",".join(e for e, _, _ in rows)))
        result = share_objects(home, objects, [partner], queue_only=queue_only, request_id=request_id)
        envelope_ids = result.plans[0].envelopes if result.plans else []
        with store.db.transaction() as conn:
            conn.executemany(
                "UPDATE receipts_owed SET receipt_envelope_id = ? WHERE partner = ? AND envelope_id = ?",
                [(envelope_ids[-1] if envelope_ids else "none", partner_name, e) for e, _, _ in rows],
            )
        sent.by_partner[partner_name] = len(rows)
        sent.shares.append(result)
    return sent
