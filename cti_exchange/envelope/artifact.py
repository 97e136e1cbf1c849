"""The envelope as a STIX 2.1 object: an `artifact` SCO (STIX 2.1 section 6.1) whose
`payload_bin` is the JWE, with `mime_type` application/jose+json and `encryption_algorithm`
"mime-type-indicated", plus a property extension carrying routing hints in the clear.

Any conformant TAXII 2.1 server stores it unchanged. The hints let a receiver skip envelopes
that are not for it without decrypting; they are never trusted: the receiver re-checks them
against the signed header.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

import pybase64

from cti_exchange.clock import stix_timestamp
from cti_exchange.envelope.header import EnvelopeHeader
from cti_exchange.envelope.reasons import EnvelopeRejected, RejectReason
from cti_exchange.readers.json_input import _DuplicateKey, _unique_keys

ENVELOPE_MIME_TYPE = "application/jose+json"
ROUTING_EXTENSION_ID = "extension-definition--4acc586a-3fea-4d6d-9f6f-c080f2ce59ba"
PROJECT_IDENTITY_ID = "identity--7595e7c5-d523-4604-a481-639ae569fbcc"
# STIX 2.1 section 2.9: deterministic SCO ids are UUIDv5 in this namespace.
SCO_NAMESPACE = uuid.UUID("00abedb4-aa42-466c-9c01-fed23315a9b7")


@dataclass(frozen=True)
class RoutingHints:
    envelope_id: str
    sender: str
    recipients: tuple[str, ...]
    sequences: dict[str, int]
    issued_at: str

    @classmethod
    def of(cls, header: EnvelopeHeader) -> RoutingHints:
        return cls(
            envelope_id=header.envelope_id,
            sender=header.sender,
            recipients=header.recipients,
            sequences={r: pos.sequence for r, pos in header.channels.items()},
            issued_at=stix_timestamp(header.issued_at),
        )

    def to_extension(self) -> dict[str, Any]:
        return {
            "extension_type": "property-extension",
            "envelope_id": self.envelope_id,
            "sender": self.sender,
            "recipients": list(self.recipients),
            "sequences": dict(self.sequences),
            "issued_at": self.issued_at,
        }


def envelope_artifact(jwe_json: bytes, header: EnvelopeHeader) -> dict[str, Any]:
    return _artifact(jwe_json, RoutingHints.of(header).to_extension())


def artifact_with_jwe(artifact: dict[str, Any], jwe_json: bytes) -> dict[str, Any]:
    """The same envelope carrying another serialisation of its JWE (re-addressed): the routing
    hints stay, the payload, hash and content-derived id follow the new bytes."""
    return _artifact(jwe_json, artifact["extensions"][ROUTING_EXTENSION_ID])


def _artifact(jwe_json: bytes, routing: dict[str, Any]) -> dict[str, Any]:
    payload_bin = pybase64.b64encode(jwe_json).decode("ascii")
    digest = hashlib.sha256(jwe_json).hexdigest()
    contributing = json.dumps(
        {"hashes": {"SHA-256": digest}, "payload_bin": payload_bin},
        separators=(",", ":"),
        sort_keys=True,
    )
    return {
        "type": "artifact",
        "spec_version": "2.1",
        "id": f"artifact--{uuid.uuid5(SCO_NAMESPACE, contributing)}",
        "mime_type": ENVELOPE_MIME_TYPE,
        "payload_bin": payload_bin,
        "hashes": {"SHA-256": digest},
        "encryption_algorithm": "mime-type-indicated",
        "extensions": {ROUTING_EXTENSION_ID: routing},
    }


def is_envelope_artifact(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and obj.get("type") == "artifact"
        and obj.get("mime_type") == ENVELOPE_MIME_TYPE
        and isinstance(obj.get("extensions"), dict)
        and ROUTING_EXTENSION_ID in obj["extensions"]
    )


def routing_hints(obj: dict[str, Any]) -> RoutingHints:
    """Reads the clear-text hints; raises malformed-envelope if they are not well formed."""
    ext = obj.get("extensions", {}).get(ROUTING_EXTENSION_ID)
    try:
        sequences = ext["sequences"]
        # Integers only: int() would turn 1.5 or "1" into a hint "equal" to the signed 1, and
        # raise OverflowError on the Infinity that Python's json module accepts.
        if not all(type(v) is int for v in sequences.values()):
            raise ValueError("sequences")
        hints = RoutingHints(
            envelope_id=str(ext["envelope_id"]),
            sender=str(ext["sender"]),
            recipients=tuple(str(r) for r in ext["recipients"]),
            sequences={str(k): v for k, v in sequences.items()},
            issued_at=str(ext["issued_at"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        raise EnvelopeRejected(
            RejectReason.MALFORMED_ENVELOPE, "the routing extension is missing or malformed"
        ) from None
    return hints


def artifact_jwe(obj: dict[str, Any], *, max_envelope_bytes: int) -> dict[str, Any]:
    if not is_envelope_artifact(obj):
        raise EnvelopeRejected(
            RejectReason.MALFORMED_ENVELOPE,
            "not a cti-exchange envelope (an artifact with mime_type application/jose+json "
            "and the routing extension)",
        )
    payload_bin = obj.get("payload_bin")
    if not isinstance(payload_bin, str):
        raise EnvelopeRejected(RejectReason.MALFORMED_ENVELOPE, "payload_bin is missing")
    if len(payload_bin) > max_envelope_bytes * 4 // 3 + 4:
        raise EnvelopeRejected(
            RejectReason.OVERSIZED_ENVELOPE,
            f"payload is {len(payload_bin)} base64 characters, over the {max_envelope_bytes}-byte limit",
        )
    try:
        raw = pybase64.b64decode(payload_bin, validate=True)
        # Each member once per object, recipient headers included: parsers disagree on which of
        # two counts (docs/ENVELOPE.md). Checked in this one parse (the JWE is mostly one string).
        jwe = json.loads(raw, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise EnvelopeRejected(
            RejectReason.MALFORMED_ENVELOPE, f"the JWE gives the member {str(exc)[:60]!r} twice in one object"
        ) from None
    except (ValueError, TypeError, RecursionError):  # RecursionError: "[[[[..." nested too deep
        raise EnvelopeRejected(
            RejectReason.MALFORMED_ENVELOPE, "payload_bin is not base64 of a JSON JWE (truncated?)"
        ) from None
    if not isinstance(jwe, dict):
        raise EnvelopeRejected(RejectReason.MALFORMED_ENVELOPE, "the JWE is not a JSON object")
    # Every envelope carries the hash (seal_bundle writes it): one without is not ours, and
    # optional checks are checks an attacker switches off.
    expected = obj.get("hashes", {}).get("SHA-256") if isinstance(obj.get("hashes"), dict) else None
    if expected is None:
        raise EnvelopeRejected(RejectReason.MALFORMED_ENVELOPE, "the artifact has no SHA-256 in hashes")
    if expected != hashlib.sha256(raw).hexdigest():
        raise EnvelopeRejected(RejectReason.MALFORMED_ENVELOPE, "payload_bin does not match hashes")
    return jwe


def routing_extension_definition() -> dict[str, Any]:
    """The extension-definition SDO for the routing hints (published in schemas/)."""
    return {
        "type": "extension-definition",
        "spec_version": "2.1",
        "id": ROUTING_EXTENSION_ID,
        "created_by_ref": PROJECT_IDENTITY_ID,
        "created": "2026-11-23T00:00:00.000Z",
        "modified": "2026-11-23T00:00:00.000Z",
        "name": "cti-exchange envelope routing hints",
        "description": (
            "Clear-text routing hints on an artifact holding a cti-exchange envelope (a JWE). "
            "Receivers must re-check every hint against the signed envelope header."
        ),
        "schema": "https://github.com/cti-exchange/cti-exchange/blob/main/schemas/envelope-routing-extension.schema.json",
        "version": "1.0.0",
        "extension_types": ["property-extension"],
    }
