"""Sealing: sign the exact bundle bytes (JWS), then encrypt to every recipient and to ourselves
(JWE), then wrap the JWE in a STIX artifact."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cti_exchange.envelope.artifact import envelope_artifact
from cti_exchange.envelope.header import JWE_CONTENT_TYPE, ChannelPosition, EnvelopeHeader
from cti_exchange.envelope.jose_framing import (
    COMPRESSION,
    CONTENT_ENCRYPTION,
    b64url_encode,
    jwe_encrypt_general,
    jws_sign_compact,
)


@dataclass(frozen=True)
class SenderKeys:
    agency_id: str
    signing_key: dict[str, Any]  # our current private Ed25519 JWK (with kid)
    own_encryption_key: dict[str, Any]  # our current public X25519 JWK: we can read what we sent


@dataclass(frozen=True)
class RecipientKey:
    agency_id: str
    encryption_key: dict[str, Any]  # the partner's current public X25519 JWK (with kid)


@dataclass(frozen=True)
class SealedEnvelope:
    header: EnvelopeHeader
    artifact: dict[str, Any]
    digest: str  # what the next envelope on each channel names as `previous`


def envelope_digest(jws_compact: bytes) -> str:
    """base64url SHA-256 of the envelope's JWS: the link in each channel's hash chain."""
    return b64url_encode(hashlib.sha256(jws_compact).digest()).decode()


def seal_bundle(
    bundle_bytes: bytes,
    *,
    bundle_id: str,
    object_count: int,
    sender: SenderKeys,
    recipients: list[RecipientKey],
    channels: dict[str, ChannelPosition],
    now: datetime,
    envelope_id: str | None = None,
) -> SealedEnvelope:
    header = EnvelopeHeader(
        envelope_id=envelope_id or str(uuid.uuid4()),
        sender=sender.agency_id,
        signing_kid=sender.signing_key["kid"],
        recipients=tuple(r.agency_id for r in recipients),
        issued_at=now,
        channels={r.agency_id: channels[r.agency_id] for r in recipients},
        bundle_id=bundle_id,
        object_count=object_count,
    )
    jws = jws_sign_compact(header.to_protected(), bundle_bytes, sender.signing_key)
    jwe = jwe_encrypt_general(
        jws,
        {"enc": CONTENT_ENCRYPTION, "zip": COMPRESSION, "cty": JWE_CONTENT_TYPE},
        [r.encryption_key for r in recipients] + [sender.own_encryption_key],
    )
    jwe_bytes = json.dumps(jwe, separators=(",", ":")).encode()
    return SealedEnvelope(
        header=header, artifact=envelope_artifact(jwe_bytes, header), digest=envelope_digest(jws)
    )
