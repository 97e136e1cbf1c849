"""Reading back an envelope from our own outbox: every envelope is also encrypted to us, so we
can recover exactly what we signed (to seal its content again, exchange/reseal.py).

The outbox is our own store, but a store can be damaged or tampered with: the JWE is decrypted
with every check, and the JWS signature must verify with our own key that made it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from cti_exchange.envelope.artifact import artifact_jwe
from cti_exchange.envelope.header import EnvelopeHeader
from cti_exchange.envelope.jose_framing import jwe_decrypt_general, jws_payload, jws_split, jws_verify
from cti_exchange.envelope.reasons import EnvelopeRejected
from cti_exchange.envelope.seal import envelope_digest
from cti_exchange.errors import IntegrityError
from cti_exchange.keys.model import Keyring

PrivateKeys = dict[str, dict[str, Any]]  # kid -> private JWK


@dataclass(frozen=True)
class OwnCopy:
    header: EnvelopeHeader
    digest: str  # its link in the channel's hash chain
    objects: list[dict[str, Any]]  # the signed bundle's objects, as sealed


def read_own_copy(
    artifact: dict[str, Any],
    private_keys: PrivateKeys,
    our_ring: Keyring,
    *,
    max_plaintext_bytes: int,
) -> OwnCopy:
    """The signed header and bundle objects of an envelope we sealed. IntegrityError if it
    does not decrypt with our keys or is not signed by our key."""
    envelope_id = str(artifact.get("id"))
    try:
        jwe = artifact_jwe(artifact, max_envelope_bytes=len(str(artifact.get("payload_bin", ""))))
        _, jws = jwe_decrypt_general(jwe, private_keys, max_plaintext_bytes=max_plaintext_bytes)
        protected, signing_input, signature = jws_split(jws)
        header = EnvelopeHeader.from_protected(protected)
        envelope_id = header.envelope_id
        key = our_ring.find(header.signing_kid)
        if (
            key is None
            or header.sender != our_ring.agency.id
            or not jws_verify(signing_input, signature, key.public_jwk)
        ):
            raise IntegrityError(
                f"the queued envelope {envelope_id} is not signed by our key",
                hint="run `cti-exchange doctor` and `cti-exchange audit verify`: "
                "the store may have been tampered with",
            )
        bundle = orjson.loads(jws_payload(signing_input))
        objects = bundle["objects"]
        if not isinstance(objects, list) or len(objects) != header.object_count:
            raise ValueError("the bundle does not hold the objects its header counts")
    except (EnvelopeRejected, ValueError, KeyError, TypeError) as exc:
        detail = exc.detail if isinstance(exc, EnvelopeRejected) else str(exc)
        raise IntegrityError(
            f"the queued envelope {envelope_id} cannot be read back: {detail}",
            hint="run `cti-exchange doctor`; restore the store from a backup if it persists",
        ) from None
    return OwnCopy(header=header, digest=envelope_digest(jws), objects=objects)
