"""Cutting objects into envelopes that each fit a partner server's request limit, and sealing
them for that partner: for a push (exchange/push.py) and to seal queued envelopes again
(exchange/reseal.py)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import orjson

from cti_exchange.envelope.header import ChannelPosition
from cti_exchange.envelope.jose_framing import b64url_encode, deflate
from cti_exchange.envelope.seal import SealedEnvelope, SenderKeys, seal_bundle
from cti_exchange.errors import InputError
from cti_exchange.exchange.parties import recipient_key
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.keys.material import generate_key_pair
from cti_exchange.keys.model import KeyUse
from cti_exchange.policy.sharing import sharing_level
from cti_exchange.profile.model import PartnerConfig
from cti_exchange.stix.bundle import build_bundle, content_objects, serialise_bundle, travelling_with
from cti_exchange.stix.tlp import Tlp, tlp_markings_defined_in

# Room for the TAXII envelope around the artifact and for JSON escaping differences.
_REQUEST_OVERHEAD = 1024


def strictest_tlp(
    objects: list[dict[str, Any]], travelling: dict[str, dict[str, Any]] | None = None
) -> str | None:
    """The strictest TLP among `objects` as the partner will read them, recorded with the
    envelope (delivery_refusal checks it again when it leaves): a marking-definition stating a
    TLP under an id of its own counts at that level, and a reference to one neither TLP nor
    among `travelling` (the definitions that go along) as TLP:RED (policy/sharing.py)."""
    pool = travelling or {}
    inline = tlp_markings_defined_in(pool.values()) or None
    defined = frozenset(pool)
    levels = [level for o in objects if (level := sharing_level(o, inline, defined)[0]) is not None]
    return Tlp.strictest(levels).value if levels else None


class PartnerSealing:
    """Cutting objects into envelopes for one partner that each fit its server's request
    limit. Where each envelope sits on the channel is the caller's (`positions`, asked again
    for every envelope): the store's next position for a push, a rewound one to seal queued
    envelopes again (exchange/reseal.py)."""

    def __init__(self, home: ProfileHome, partner: PartnerConfig, sender: Any, now: datetime) -> None:
        self.identity = home.load_profile().identity
        self.recipient = recipient_key(home, partner)
        self.partner = partner
        self.sender = sender
        self.now = now

    @classmethod
    def for_counting(cls, home: ProfileHome, partner: PartnerConfig, now: datetime) -> PartnerSealing:
        """Seals as a push does, but signs with a key made for the purpose and forgotten, under
        our current key id: envelopes of the size of ours, for a dry run to count them without
        unlocking our private keys (no passphrase). Nothing it seals is kept."""
        keyring = home.keyring()
        agency_id = home.load_profile().agency_id
        throwaway, _ = generate_key_pair(KeyUse.SIG, agency_id, now, 1)
        sender = SenderKeys(
            agency_id=agency_id,
            signing_key=throwaway | {"kid": keyring.current(KeyUse.SIG).kid},
            own_encryption_key=keyring.current(KeyUse.ENC).public_jwk,
        )
        return cls(home, partner, sender, now)

    def count(self, objects: list[dict[str, Any]], max_request_bytes: int, first: ChannelPosition) -> int:
        """How many envelopes `pieces` cuts `objects` into, the first at channel position
        `first`: each one is sealed and measured as a push would, then dropped (nothing is
        recorded). Sealing is what tells an envelope's size: the estimate `pieces` starts
        from counts too few under small limits (44 for the 72 envelopes of 20,000 indicators
        cut to 48 KiB)."""
        # The next position, as the store would give it once this envelope were recorded.
        channel = {self.partner.agency_id: first}
        envelopes = 0
        for sealed, _ in self.pieces(objects, max_request_bytes, lambda: dict(channel)):
            envelopes += 1
            sequence = channel[self.partner.agency_id].sequence + 1
            channel[self.partner.agency_id] = ChannelPosition(sequence=sequence, previous=sealed.digest)
        return envelopes

    def pieces(
        self,
        objects: list[dict[str, Any]],
        max_request_bytes: int,
        positions: Callable[[], dict[str, ChannelPosition]],
        travelling: dict[str, dict[str, Any]] | None = None,
    ) -> Iterator[tuple[SealedEnvelope, list[dict[str, Any]]]]:
        """(envelope, the objects it carries), one at a time: the next one is sealed only once
        the caller has taken this one (and moved the channel). Each envelope also carries the
        definitions of `travelling` (`travelling_definitions`) its objects refer to."""
        budget = request_budget(max_request_bytes)
        content = content_objects(objects)
        # Cut into pieces up front from an estimate, rather than sealing everything once to
        # learn its size: sealing 100,000 indicators costs most of a second.
        count = math.ceil(estimated_artifact_bytes(content) / (budget * 0.85))
        step = math.ceil(len(content) / max(count, 1))
        queue = [content[i : i + step] for i in range(0, len(content), step)]
        while queue:
            part = queue.pop(0)
            bundle = build_bundle(
                part + travelling_with(part, travelling or {}), self.identity, validate=False
            )
            sealed = seal_bundle(
                serialise_bundle(bundle),
                bundle_id=bundle["id"],
                object_count=len(bundle["objects"]),
                sender=self.sender,
                recipients=[self.recipient],
                channels=positions(),
                now=self.now,
            )
            if len(orjson.dumps(sealed.artifact)) > budget:
                # The estimate was short: halve and try again (nothing was recorded).
                if len(part) == 1:
                    raise InputError(
                        f"object {part[0].get('id')} alone is larger than "
                        f"{self.partner.name}'s server accepts ({max_request_bytes:,} bytes)"
                    )
                half = len(part) // 2
                queue[:0] = [part[:half], part[half:]]
                continue
            yield sealed, part


def request_budget(max_request_bytes: int) -> int:
    """The most an envelope's artifact may take for a server taking `max_request_bytes` a
    request: `pieces` cuts to it, and receipts cut their objects to it (exchange/receipt_objects.py)."""
    return max(max_request_bytes - _REQUEST_OVERHEAD, 4096)


_SAMPLE_OBJECTS = 2000


def estimated_artifact_bytes(objects: list[dict[str, Any]]) -> int:
    """The size of the artifact sealing `objects` would make, from a sample: the JWS payload is
    base64url of the bundle, DEFLATE-compressed, encrypted, then base64 twice (JWE, payload_bin).
    """
    stride = max(1, len(objects) // _SAMPLE_OBJECTS)
    sample = objects[::stride]
    text = orjson.dumps(sample)
    compressed = len(deflate(b64url_encode(text)))
    return int(compressed * 1.34 * 1.34 * len(objects) / max(len(sample), 1)) + 4096
