"""Why an envelope was rejected: one named reason per failed check.

The names are stable: they go into quarantine records, the audit log, `--json` output and tests.
"""

from __future__ import annotations

from enum import StrEnum


class RejectReason(StrEnum):
    MALFORMED_ENVELOPE = "malformed-envelope"  # not an envelope artifact, bad base64/JSON, truncated
    OVERSIZED_ENVELOPE = "oversized-envelope"
    UNSUPPORTED_ALGORITHM = "unsupported-algorithm"  # alg none, HS256, anything not in the profile
    NOT_ADDRESSED_TO_US = "not-addressed-to-us"
    DECRYPTION_FAILED = "decryption-failed"  # wrong key, altered ciphertext, bad or low-order point
    # For us, but only to a key of ours we revoked: the sender re-addresses it once it pins our
    # current keys (envelope/readdress.py), and the record is closed when that copy is accepted.
    ENCRYPTED_TO_REVOKED_KEY = "encrypted-to-revoked-key"
    # For us by its clear text (a recipient kid named as ours, or the routing hints naming our
    # agency), but sealed to an encryption key of ours the profile does not hold: keys/ older
    # than the key the partner sealed to (restored from a backup taken before `keys rotate`).
    # Held, and opened again once our keys change (exchange/held.py): never dropped as not for us.
    SEALED_TO_UNKNOWN_KEY_OF_OURS = "sealed-to-unknown-key-of-ours"
    DECOMPRESSION_LIMIT = "decompression-limit"
    MALFORMED_SIGNATURE = "malformed-signature"
    UNKNOWN_SENDER = "unknown-sender"  # the sender is not a pinned partner
    UNKNOWN_KEY = "unknown-key"
    WRONG_KEY_USE = "wrong-key-use"
    REVOKED_KEY = "revoked-key"
    # Signed with a key the sender had rotated out before `issued_at` (+ the clock skew): a
    # retired key only verifies what it signed before its retirement (keys/model.py).
    RETIRED_KEY = "retired-key"
    EXPIRED_KEY = "expired-key"
    KEY_NOT_YET_VALID = "key-not-yet-valid"
    SENDER_KEY_MISMATCH = "sender-key-mismatch"  # the key is not the sender agency's
    BAD_SIGNATURE = "bad-signature"
    BAD_HEADER = "bad-header"
    REPLAYED = "replayed-envelope"
    ISSUED_IN_FUTURE = "issued-in-future"
    TOO_OLD = "too-old"
    HINT_MISMATCH = "hint-mismatch"  # outer routing hints differ from the signed header
    SEQUENCE_GAP = "sequence-gap"  # envelopes withheld: missing sequence numbers named
    SEQUENCE_REORDER = "sequence-reorder"  # an older sequence number than already accepted
    CHAIN_MISMATCH = "chain-mismatch"  # previous-envelope digest differs from ours
    # Signed by a key since revoked or retired and dated before the last envelope we accepted
    # on its channel: a stolen key dating an envelope back to before its revocation.
    BACKDATED = "backdated"
    BUNDLE_MISMATCH = "bundle-mismatch"  # bundle id / object count differ from the header
    INVALID_STIX = "invalid-stix"

    @property
    def is_integrity_alert(self) -> bool:
        """Every rejection is an integrity alert except an envelope that was never for us."""
        return self is not RejectReason.NOT_ADDRESSED_TO_US


class EnvelopeRejected(Exception):
    """Raised by a check; carries the reason and whatever of the header was already trusted."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = " ".join(detail.split())[:500]
        self.envelope_id: str | None = None
        self.sender: str | None = None
        # For `replayed-envelope`: the digest of this signed envelope, so that a receiver can
        # tell a copy of the one it accepted (re-addressed by its sender) from another.
        self.digest: str | None = None
