"""The hash chain and its signed heads, as plain data (no I/O).

Each record carries the hash of the previous one, so editing, inserting or deleting a record
breaks every later link; the chain's head is signed with the agency's key from time to time,
so truncating the end, or rewriting the whole chain, shows against the last signed head.

record hash = base64url(SHA-256(canonical JSON of
    {"seq", "at", "actor", "action", "partner", "details", "prev"}))
where canonical JSON sorts keys and has no spaces. The first record's `prev` is GENESIS.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pybase64

from cti_exchange.clock import parse_timestamp, stix_timestamp
from cti_exchange.keys.model import KeyCheckError, Keyring

GENESIS = "0" * 43
HEAD_TYPE = "cti-audit-head+jws"
EXTRACT_TYPE = "cti-audit-extract+jws"


def canonical_json(value: Any) -> str:
    # allow_nan=False: NaN and Infinity are not JSON (RFC 8259 section 6); what we hash and
    # sign must read back the same in any JSON parser (ValueError, never NaN, if one slips in).
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is beyond the range of a double")
    return value


def parse_strict_json(text: str | bytes) -> Any:
    """JSON as RFC 8259 has it. Python's parser also takes NaN and Infinity, and reads 1e999
    as infinity; all three would be written back as `NaN`/`Infinity`, which jq and every
    strict parser refuse. ValueError for them, as for any text that is not JSON."""
    return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    at: str
    actor: str
    action: str
    partner: str | None
    details: dict[str, Any]  # as stored: its raw text if that is not JSON (a tampered record)
    prev: str
    hash: str
    # The details exactly as the store holds them (None where no stored text exists, e.g. a
    # record read from an extract): the hash covers `details` as parsed, and a parser keeps
    # the last of two duplicate keys where SQLite's json_extract reads the first.
    details_text: str | None = field(default=None, compare=False, repr=False)

    def details_as_written(self) -> bool:
        """The stored details text is exactly the canonical JSON the trail writes. Every
        writer (every version) stores `canonical_json(details)` and hashes that same text, so
        any other text (a duplicate key, an escape such as `\\u0061`, a space) that still
        parses to the hashed value was written by someone else: what other readers of the
        text see is not what the hash vouches for."""
        return self.details_text is None or self.details_text == canonical_json(self.details)

    def body(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "partner": self.partner,
            "details": self.details,
            "prev": self.prev,
        }

    def to_dict(self) -> dict[str, Any]:
        return self.body() | {"hash": self.hash}


def record_hash(body: dict[str, Any]) -> str:
    digest = hashlib.sha256(canonical_json(body).encode()).digest()
    return pybase64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def chain_problem(
    records: list[AuditRecord], *, start_prev: str = GENESIS, start_seq: int = 1
) -> tuple[int, str] | None:
    """The first record that does not fit the chain, and why; None if all fit."""
    prev = start_prev
    expected_seq = start_seq
    for record in records:
        if record.seq != expected_seq:
            what = "missing before it" if record.seq > expected_seq else "inserted or out of order"
            return (
                record.seq,
                f"sequence {record.seq} where {expected_seq} was expected (records {what})",
            )
        if record.prev != prev:
            return (
                record.seq,
                "its link to the previous record is broken "
                "(a record before it was edited, inserted or deleted)",
            )
        if record_hash(record.body()) != record.hash:
            return record.seq, "its content does not match its hash (edited)"
        prev = record.hash
        expected_seq += 1
    return None


@dataclass(frozen=True)
class SignedHead:
    seq: int
    hash: str
    signed_at: str
    kid: str
    jws: str


def sign_head(
    agency_id: str, seq: int, head_hash: str, signing_key: dict[str, Any], now: datetime
) -> SignedHead:
    from cti_exchange.envelope.jose_framing import jws_sign_compact  # JOSE only when signing

    signed_at = stix_timestamp(now)
    payload = canonical_json({"agency": agency_id, "seq": seq, "hash": head_hash, "signed_at": signed_at})
    jws = jws_sign_compact(
        {"alg": "EdDSA", "kid": signing_key["kid"], "typ": HEAD_TYPE}, payload.encode(), signing_key
    )
    return SignedHead(seq=seq, hash=head_hash, signed_at=signed_at, kid=signing_key["kid"], jws=jws.decode())


def head_problem(head: SignedHead, keyring: Keyring) -> str | None:
    """Why a signed head cannot be trusted, or None."""
    from cti_exchange.envelope.jose_framing import jws_split, jws_verify
    from cti_exchange.envelope.reasons import EnvelopeRejected

    try:
        header, signing_input, signature = jws_split(head.jws.encode())
    except EnvelopeRejected as exc:
        return f"signed head {head.seq} is malformed ({exc.detail})"
    if header.get("typ") != HEAD_TYPE or header.get("alg") != "EdDSA":
        return f"signed head {head.seq} has the wrong type or algorithm"
    try:
        signed_at = parse_timestamp(head.signed_at)
    except ValueError:
        return f"signed head {head.seq}: its signing time {head.signed_at!r} is not a time"
    try:
        key = keyring.signing_key(str(header.get("kid")), at=signed_at)
    except KeyCheckError as exc:
        return f"signed head {head.seq}: {exc.message}"
    if not jws_verify(signing_input, signature, key.public_jwk):
        return f"signed head {head.seq}: the signature does not verify"
    if head.kid != key.kid:
        return f"signed head {head.seq}: it names key {head.kid}, but key {key.kid} signed it"
    payload = json.loads(pybase64.urlsafe_b64decode(signing_input.split(b".")[1] + b"=="))
    if payload.get("seq") != head.seq or payload.get("hash") != head.hash:
        return f"signed head {head.seq}: the signed values differ from the stored ones"
    return None


def sign_extract(document: dict[str, Any], signing_key: dict[str, Any]) -> str:
    """An audit extract as a compact JWS any JOSE library can verify with our public key."""
    from cti_exchange.envelope.jose_framing import jws_sign_compact

    return jws_sign_compact(
        {"alg": "EdDSA", "kid": signing_key["kid"], "typ": EXTRACT_TYPE, "cty": "application/json"},
        canonical_json(document).encode(),
        signing_key,
    ).decode()
