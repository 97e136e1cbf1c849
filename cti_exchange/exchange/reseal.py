"""Sealing queued envelopes again when they cannot go as they are: larger than the partner's
server now takes, or holding what the partner's entry no longer lets it receive.

`push --queue`, `sight --queue` and receipts are sealed to the server's limit as last read. If
the partner lowers that limit before they are posted, the first one too large could never be
posted (413), and every later envelope on the channel waits behind it: posting them first
would show the partner a gap. Likewise, TLP is enforced when an envelope leaves: if the
partner's `max_tlp` was lowered or `allow_red` withdrawn after an envelope was queued, what it
holds above that must not go. So the outbox seals that envelope's content again (what may go,
in envelopes that fit), and the later queued ones after it, since their channel positions move:

- the content is read back from our own copy (every envelope is also encrypted to us), after
  checking it is signed by our key (envelope/own_copy.py);
- the same objects, byte for byte the same STIX (less those the sharing policy now refuses,
  which are withheld; a receipt object too large for the server goes as smaller receipt
  objects holding the same receipts: exchange/receipt_objects.py), go into new envelopes with
  new ids, signed now, from the first one's channel position and previous digest: the partner
  sees an unbroken channel, because none of the old envelopes was ever posted to it;
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
from cti_exchange.exchange.receipt_objects import receipts_cut_to_fit
from cti_exchange.exchange.sealing import PartnerSealing, strictest_tlp
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.policy.sharing import decide_sharing, partner_creators
from cti_exchange.profile.model import PartnerConfig
from cti_exchange.stix.bundle import content_objects, travelling_definitions
from cti_exchange.store.outbound import PendingDelivery
from cti_exchange.store.store import Store

# Room for the TAXII envelope around the artifact in a request (exchange/delivery.py).
_REQUEST_OVERHEAD = 128


@dataclass(frozen=True)
class Resealed:
    replaced: list[str]  # the old envelope ids, in channel order
    sealed: list[str]  # the new ones, in channel order
    withheld: int = 0  # objects left out: the partner's entry refuses them now


def reseal_queued(
    home: ProfileHome,
    store: Store,
    partner: PartnerConfig,
    queued: list[PendingDelivery],
    limit: int,
    *,
    reason: str,
    now: datetime | None = None,
) -> Resealed | None:
    """Seals `queued` (the partner's unposted envelopes from the first one that cannot go as
    it is, in channel order) again for a server that takes `limit` bytes a request, with only
    what the partner's entry lets it receive now (policy/sharing.py; the rest is withheld).
    None when one of them is also for another partner: its position is on their channels
    too."""
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
    moment = now or utc_now()
    sealing = PartnerSealing(home, partner, sender_keys(home, moment), moment)
    start = copies[0].header.channels[agency]
    position = [start]  # where the next new envelope goes
    replaced: list[tuple[str, list[tuple[SealedEnvelope, str | None, list[dict[str, Any]]]]]] = []
    withheld: dict[str, list[str]] = {}
    for delivery, copy in zip(queued, copies, strict=True):
        # `--allow-red` was given when it was sealed: the partner entry decides now.
        # Its marking-definitions travel with it again (below): a marking they define is known.
        travelling = travelling_definitions(copy.objects)
        decision = decide_sharing(
            content_objects(copy.objects),
            [partner],
            allow_red=True,
            creators=partner_creators(profile),
            definitions=travelling.values(),
        )
        # A receipt object too large for the server is cut into ones that fit: the same
        # receipts, in new objects (only ours: we sealed it, and nothing acknowledges receipts).
        allowed = receipts_cut_to_fit(decision.allowed[partner.name], moment, limit)
        if decision.refusals:
            withheld[delivery.envelope_id] = [r.object_id for r in decision.refusals]
        pieces: list[tuple[SealedEnvelope, str | None, list[dict[str, Any]]]] = []
        if not allowed:
            replaced.append((delivery.envelope_id, pieces))
            continue
        for sealed, part in sealing.pieces(allowed, limit, lambda: {agency: position[0]}, travelling):
            if len(orjson.dumps(sealed.artifact)) + _REQUEST_OVERHEAD > limit:
                # Sealing pieces never cuts below a few KiB: sealing again would not help, and
                # doing it at every sync would only fill the sent log.
                raise InputError(
                    f"envelope {delivery.envelope_id} holds an object that alone makes an envelope "
                    f"larger than {partner.name}'s server accepts ({limit:,} bytes)"
                )
            pieces.append((sealed, strictest_tlp(part, travelling), part))
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
        withheld=withheld,
    )
    return Resealed(
        replaced=[old for old, _ in replaced],
        sealed=[sealed.header.envelope_id for _, pieces in replaced for sealed, _, _ in pieces],
        withheld=sum(len(ids) for ids in withheld.values()),
    )


def _channel_after(copy: OwnCopy, agency: str) -> ChannelState:
    return ChannelState(sequence=copy.header.channels[agency].sequence, digest=copy.digest)
