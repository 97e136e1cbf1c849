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
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cti_exchange.clock import stix_timestamp, utc_now
from cti_exchange.exchange.push import ShareResult, share_objects
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.partnership import get_partner
from cti_exchange.stix.tlp import Tlp
from cti_exchange.store.receipts import RECEIPT_TYPE
from cti_exchange.store.store import Store

MAX_RECEIPTS_PER_OBJECT = 1000


def receipt_object(identity_id: str, entries: list[dict[str, str]], now: datetime) -> dict[str, Any]:
    """One receipt object for `entries`. Its id and date follow from what it acknowledges, so a
    run interrupted after sealing it and resumed finds it already sealed instead of sealing a
    second receipt under a new sequence number."""
    created = max((e["accepted_at"] for e in entries), default=stix_timestamp(now))
    name = f"{identity_id}|" + ",".join(e["envelope_id"] for e in entries)
    return {
        "type": RECEIPT_TYPE,
        "spec_version": "2.1",
        "id": f"{RECEIPT_TYPE}--{uuid.uuid5(uuid.NAMESPACE_URL, name)}",
        "created": created,
        "modified": created,
        "created_by_ref": identity_id,
        "object_marking_refs": [Tlp.CLEAR.marking_id],
        "receipts": entries,
    }


@dataclass
class ReceiptsSent:
    by_partner: dict[str, int] = field(default_factory=dict)
    shares: list[ShareResult] = field(default_factory=list)


def send_owed_receipts(home: ProfileHome, store: Store, *, queue_only: bool = True) -> ReceiptsSent:
    """Seals one receipt envelope per partner for everything accepted since the last one."""
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
        objects = [
            receipt_object(profile.identity_id, entries[i : i + MAX_RECEIPTS_PER_OBJECT], utc_now())
            for i in range(0, len(entries), MAX_RECEIPTS_PER_OBJECT)
        ]
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
