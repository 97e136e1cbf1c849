"""The receipt object (exchange/receipts.py says how receipts travel), and cutting the receipts
owed to a partner into objects small enough for its server.

An envelope is cut between objects, never inside one (exchange/sealing.py): a receipt object
holding a large backlog's receipts could alone be larger than the partner's server takes, and
that envelope could never be posted. So receipt objects are cut to the server's limit first;
the sealing then puts as many of them in each envelope as fit, as for any push.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from cti_exchange.clock import stix_timestamp
from cti_exchange.exchange.sealing import estimated_artifact_bytes, request_budget
from cti_exchange.stix.tlp import Tlp
from cti_exchange.store.receipts import RECEIPT_TYPE

MAX_RECEIPTS_PER_OBJECT = 1000
# The share of an envelope's room one receipt object may take, as sealing.py estimates sizes.
_ESTIMATE_MARGIN = 0.85


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


def receipt_objects(
    identity_id: str, entries: list[dict[str, str]], now: datetime, max_request_bytes: int
) -> list[dict[str, Any]]:
    """`entries`, in order, in receipt objects of at most MAX_RECEIPTS_PER_OBJECT entries, each
    small enough that an envelope holding it alone fits a server taking `max_request_bytes` a
    request (as sealing.py estimates it). The same entries and limit are always cut the same
    way: a run resumed after an interruption finds the objects it sealed already sealed."""
    step = _entries_per_object(identity_id, entries, now, max_request_bytes)
    return [receipt_object(identity_id, entries[i : i + step], now) for i in range(0, len(entries), step)]


def receipts_cut_to_fit(
    objects: list[dict[str, Any]], now: datetime, max_request_bytes: int
) -> list[dict[str, Any]]:
    """`objects` with each receipt object too large for a server taking `max_request_bytes`
    replaced by receipt objects of the same entries that fit (receipt_objects); every other
    object, and a receipt object that fits, as it is. For envelopes sealed again
    (exchange/reseal.py): a receipt envelope sealed before receipts were cut to the server's
    limit, or for a larger limit than the server now takes."""
    cut: list[dict[str, Any]] = []
    for obj in objects:
        entries = obj.get("receipts")
        creator = obj.get("created_by_ref")
        if (
            obj.get("type") != RECEIPT_TYPE
            or not isinstance(entries, list)
            or not isinstance(creator, str)
            or not all(isinstance(e, dict) and "envelope_id" in e and "accepted_at" in e for e in entries)
        ):
            cut.append(obj)
            continue
        pieces = receipt_objects(creator, entries, now, max_request_bytes)
        cut += pieces if len(pieces) > 1 else [obj]
    return cut


def _entries_per_object(
    identity_id: str, entries: list[dict[str, str]], now: datetime, max_request_bytes: int
) -> int:
    """The most entries from the start of `entries` (at least 1) one receipt object can hold and
    still fit, by halving: the size of the envelope grows with the entries it holds."""
    room = request_budget(max_request_bytes) * _ESTIMATE_MARGIN
    low, high = 1, max(1, min(len(entries), MAX_RECEIPTS_PER_OBJECT))
    while low < high:
        middle = (low + high + 1) // 2
        if estimated_artifact_bytes([receipt_object(identity_id, entries[:middle], now)]) <= room:
            low = middle
        else:
            high = middle - 1
    return low
