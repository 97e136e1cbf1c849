"""The signed envelope header: everything a receiver needs to judge an envelope.

It is the JWS protected header (RFC 7515 section 4): the registered parameters `alg`, `kid`,
`typ` (explicit typing, RFC 8725 section 3.11) and `cty`, plus one private parameter `cti`
holding the envelope's own fields. Being in the protected header, all of it is covered by the
signature.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cti_exchange.clock import parse_timestamp, stix_timestamp
from cti_exchange.envelope.reasons import EnvelopeRejected, RejectReason
from cti_exchange.keys.model import AGENCY_ID

ENVELOPE_VERSION = 1
JWS_TYPE = "cti-envelope+jws"
JWE_CONTENT_TYPE = "cti-envelope+jws"
BUNDLE_CONTENT_TYPE = "application/stix+json;version=2.1"
# Far more envelopes than a channel will ever carry; bounds what a gap can name.
MAX_SEQUENCE = 2**31 - 1
# Recipient entries in one JWE: the partner agencies plus the sender's own copy. Far more
# partners than an agency has; bounds what a receiver reads before anything is authenticated.
MAX_RECIPIENTS = 256
# JWS header parameters that carry or point to a key or certificate (RFC 7515 section 4.1.2 to
# 4.1.8): a receiver verifies with the sender's pinned key only, so one of these is refused
# rather than ignored (RFC 8725 section 3.10): a reader that honoured it would trust the signer's
# own word for its key.
KEY_PARAMETERS = ("jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_DIGEST = re.compile(r"^[A-Za-z0-9_-]{43}$")


@dataclass(frozen=True)
class ChannelPosition:
    """Where an envelope sits on one sender-to-recipient channel."""

    sequence: int  # 1 for the first envelope on the channel
    previous: str | None  # base64url SHA-256 of the previous envelope's JWS; None for the first

    def to_dict(self) -> dict[str, Any]:
        return {"sequence": self.sequence, "previous": self.previous}


@dataclass(frozen=True)
class ChannelState:
    """The last envelope a receiver accepted on a sender-to-us channel."""

    sequence: int
    digest: str
    issued_at: datetime | None = None  # as it says (None: accepted before this was kept)


@dataclass(frozen=True)
class EnvelopeHeader:
    envelope_id: str  # a UUID (v4)
    sender: str  # agency id
    signing_kid: str
    recipients: tuple[str, ...]  # partner agency ids (the sender's own copy is not listed)
    issued_at: datetime
    channels: dict[str, ChannelPosition]  # one per recipient
    bundle_id: str
    object_count: int
    content_type: str = BUNDLE_CONTENT_TYPE

    def to_protected(self) -> dict[str, Any]:
        return {
            "alg": "EdDSA",
            "kid": self.signing_kid,
            "typ": JWS_TYPE,
            "cty": self.content_type,
            "cti": {
                "version": ENVELOPE_VERSION,
                "envelope_id": self.envelope_id,
                "sender": self.sender,
                "recipients": list(self.recipients),
                "issued_at": stix_timestamp(self.issued_at),
                "channels": {r: pos.to_dict() for r, pos in self.channels.items()},
                "bundle_id": self.bundle_id,
                "object_count": self.object_count,
            },
        }

    @classmethod
    def from_protected(cls, header: dict[str, Any]) -> EnvelopeHeader:
        """Parses a protected header whose signature has already been verified."""
        cti = header.get("cti")
        problem = _header_problem(header, cti)
        if problem:
            raise EnvelopeRejected(RejectReason.BAD_HEADER, problem)
        assert isinstance(cti, dict)
        return cls(
            envelope_id=cti["envelope_id"],
            sender=cti["sender"],
            signing_kid=header["kid"],
            recipients=tuple(cti["recipients"]),
            issued_at=parse_timestamp(cti["issued_at"]),
            channels={
                r: ChannelPosition(sequence=c["sequence"], previous=c["previous"])
                for r, c in cti["channels"].items()
            },
            bundle_id=cti["bundle_id"],
            object_count=cti["object_count"],
            content_type=header["cty"],
        )


def _header_problem(header: dict[str, Any], cti: Any) -> str | None:
    if header.get("typ") != JWS_TYPE:
        return f"typ is {header.get('typ')!r}, not {JWS_TYPE!r}"
    if header.get("cty") != BUNDLE_CONTENT_TYPE:
        return f"cty is {header.get('cty')!r}, not {BUNDLE_CONTENT_TYPE!r}"
    if "crit" in header:
        return "crit is not supported"
    if carried := [name for name in KEY_PARAMETERS if name in header]:
        return f"{carried[0]} is not accepted: the signature is verified with the sender's pinned key only"
    if not isinstance(cti, dict):
        return "the cti header parameter is missing"
    if cti.get("version") != ENVELOPE_VERSION:
        return f"envelope version {cti.get('version')!r} is not supported"
    if not isinstance(cti.get("envelope_id"), str) or not _UUID.match(cti["envelope_id"]):
        return "envelope_id is not a UUID"
    if not isinstance(cti.get("sender"), str) or not AGENCY_ID.fullmatch(cti["sender"]):
        return "sender is not an agency id"
    recipients = cti.get("recipients")
    if (
        not isinstance(recipients, list)
        or not recipients
        or not all(isinstance(r, str) and AGENCY_ID.fullmatch(r) for r in recipients)
        or len(set(recipients)) != len(recipients)
    ):
        return "recipients is not a non-empty list of distinct agency ids"
    if len(recipients) >= MAX_RECIPIENTS:  # one JWE entry each, and one for the sender's copy
        return (
            f"{len(recipients)} recipients: at most {MAX_RECIPIENTS - 1} "
            f"(with the sender's own copy, {MAX_RECIPIENTS} entries)"
        )
    try:
        parse_timestamp(cti["issued_at"])
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
        return "issued_at is not a timestamp"
    channels = cti.get("channels")
    if not isinstance(channels, dict) or set(channels) != set(recipients):
        return "channels must name exactly the recipients"
    for name, position in channels.items():
        if (
            not isinstance(position, dict)
            or not isinstance(position.get("sequence"), int)
            or isinstance(position.get("sequence"), bool)
            or not 1 <= position["sequence"] <= MAX_SEQUENCE
        ):
            return f"channel {name}: sequence must be a positive integer up to {MAX_SEQUENCE}"
        previous = position.get("previous")
        if position["sequence"] == 1 and previous is not None:
            return f"channel {name}: the first envelope has no previous digest"
        if position["sequence"] > 1 and not (isinstance(previous, str) and _DIGEST.match(previous)):
            return f"channel {name}: previous must be a base64url SHA-256 digest"
    if not isinstance(cti.get("bundle_id"), str) or not cti["bundle_id"].startswith("bundle--"):
        return "bundle_id is not a bundle id"
    count = cti.get("object_count")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        return "object_count must be a positive integer"
    return None
