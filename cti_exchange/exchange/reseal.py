"""Sealing queued envelopes again, smaller, when a partner's server takes less than they were
sealed for.

`push --queue`, `sight --queue` and receipts are sealed to the server's limit as last read. If
the partner lowers that limit before they are posted, the first one too large could never be
posted (413), and every later envelope on the channel waits behind it: posting them first
would show the partner a gap. So the outbox seals that envelope's content again in envelopes
that fit, and the later queued ones after them, since their channel positions move:

- the content is read back from our own copy (every envelope is also encrypted to us), after
  checking it is signed by our key (envelope/own_copy.py);
- the same objects, byte for byte the same STIX, go into new envelopes with new ids, signed
  now, from the first one's channel position and previous digest: the partner sees an unbroken
  channel, because none of the old envelopes was ever posted to it;
- in one transaction the old envelopes leave the outbox as `resealed` (the sent log names
  what replaced them, the audit trail has a `reseal` record), and the new ones take their
  place. An interruption before the commit changes nothing.

Only envelopes for that partner alone are sealed again (what push, sight and receipts make);
an envelope to several partners keeps its place and the message says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from cti_exchange.clock import stix_timestamp, utc_now
from cti_exchange.envelope.header import ChannelPosition, ChannelState
from cti_exchange.envelope.own_copy import OwnCopy, read_own_copy
from cti_exchange.envelope.seal import SealedEnvelope
from cti_exchange.errors import InputError
from cti_exchange.exchange.parties import sender_keys
from cti_exchange.exchange.sealing import PartnerSealing, strictest_tlp
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.profile.model import PartnerConfig
from cti_exchange.store.outbound import PendingDelivery
from cti_exchange.store.store import Store

# Room for the TAXII envelope around the artifact in a request (exchange/delivery.py).
_REQUEST_OVERHEAD = 128


@dataclass(frozen=True)
class Resealed:
    replaced: list[str]  # the old envelope ids, in channel order
    sealed: list[str]  # the new ones, in channel order


def reseal_for_limit(
    home: ProfileHome,
    store: Store,
    partner: PartnerConfig,
    queued: list[PendingDelivery],
    limit: int,
    *,
    reason: str,
    now: datetime | None = None,
) -> Resealed | None:
    """Seals `queued` (the partner's unposted envelopes from the first too large on, in
    channel order) again for a server that takes `limit` bytes a request. None when one of
    them is also for another partner: its position is on their channels too."""
    profile = home.load_profile()
    private = home.private_keys()
    ring = home.keyring()
    copies = [
        read_own_copy(
            delivery.artifact,
            private,
            ring,
            max_plaintext_bytes=profile.envelope.max_plaintext_bytes,
        )
        for delivery in queued
    ]
    agency = partner.agency_id
    if any(copy.header.recipients != (agency,) for copy in copies):
        return None
    sealing = PartnerSealing(home, partner, sender_keys(home), now or utc_now())
    start = copies[0].header.channels[agency]
    position = [start]  # where the next new envelope goes
    replaced: list[tuple[str, list[tuple[SealedEnvelope, str | None, list[dict[str, Any]]]]]] = []
    for delivery, copy in zip(queued, copies, strict=True):
        pieces = []
        for sealed, part in sealing.pieces(copy.objects, limit, lambda: {agency: position[0]}):
            if len(orjson.dumps(sealed.artifact)) + _REQUEST_OVERHEAD > limit:
                # Sealing pieces never cuts below a few KiB: sealing again would not help, and
                # doing it at every sync would only fill the sent log.
                raise InputError(
                    f"envelope {delivery.envelope_id} holds an object that alone makes an envelope "
                    f"larger than {partner.name}'s server accepts ({limit:,} bytes)"
                )
            pieces.append((sealed, strictest_tlp(part), part))
            position[0] = ChannelPosition(sealed.header.channels[agency].sequence + 1, sealed.digest)
        replaced.append((delivery.envelope_id, pieces))
    store.outbound.replace_sealed(
        partner.name,
        agency,
        replaced,
        start=start,
        last=_channel_after(copies[-1], agency),
        reason=reason,
        at=stix_timestamp(utc_now()),
    )
    return Resealed(
        replaced=[old for old, _ in replaced],
        sealed=[sealed.header.envelope_id for _, pieces in replaced for sealed, _, _ in pieces],
    )


def _channel_after(copy: OwnCopy, agency: str) -> ChannelState:
    return ChannelState(sequence=copy.header.channels[agency].sequence, digest=copy.digest)
