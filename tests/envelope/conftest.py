"""Unit-level fixtures for the envelope core: agencies as plain data, in memory.

The core (`seal_bundle`, `open_envelope`) takes plain data: JWK dicts, `Keyring`s, and callables
for the seen-envelope set and the channel state. So these tests generate real keys with
`generate_key_pair`, pin them in in-memory keyrings and keep an in-memory inbox; no files, no
SQLite (the CLI tests in test_cli_envelope.py cover those).

The forging helpers at the bottom build JOSE structures by hand, the way an attacker would:
they decrypt an envelope they can read, change one thing, and re-encrypt or re-sign it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import uuid
import zlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from cryptography.hazmat.primitives.keywrap import aes_key_wrap
from jwcrypto.jwa import JWA

from cti_exchange.envelope.artifact import ROUTING_EXTENSION_ID, SCO_NAMESPACE
from cti_exchange.envelope.header import ChannelPosition
from cti_exchange.envelope.jose_framing import (
    COMPRESSION,
    CONTENT_ENCRYPTION,
    b64url_decode,
    b64url_encode,
    jwe_decrypt_general,
    jwe_encrypt_general,
)
from cti_exchange.envelope.open import (
    ChannelState,
    OpenedEnvelope,
    ReceiverContext,
    open_envelope,
)
from cti_exchange.envelope.reasons import EnvelopeRejected, RejectReason
from cti_exchange.envelope.seal import RecipientKey, SealedEnvelope, SenderKeys, seal_bundle
from cti_exchange.keys.material import generate_key_pair
from cti_exchange.keys.model import AgencyRef, Keyring, KeyStatus, KeyUse
from cti_exchange.stix.tlp import Tlp
from cti_exchange.stix.validate import validate_bundle

# The moment every test lives in unless it says otherwise; keys are created a month earlier.
NOW = datetime(2026, 11, 23, 10, 5, tzinfo=UTC)
KEYS_CREATED = NOW - timedelta(days=30)
PROTECTED = {"enc": CONTENT_ENCRYPTION, "zip": COMPRESSION, "cty": "cti-envelope+jws"}


# -- agencies -------------------------------------------------------------------------------


@dataclass
class Party:
    """One agency: its private keys (in memory only) and the public ring partners pin."""

    agency_id: str
    signing_key: dict[str, Any]  # private Ed25519 JWK
    encryption_key: dict[str, Any]  # private X25519 JWK
    keyring: Keyring

    @property
    def signing_kid(self) -> str:
        return str(self.signing_key["kid"])

    @property
    def encryption_kid(self) -> str:
        return str(self.encryption_key["kid"])

    @property
    def public_encryption_key(self) -> dict[str, Any]:
        return {k: v for k, v in self.encryption_key.items() if k != "d"}

    @property
    def public_signing_key(self) -> dict[str, Any]:
        return {k: v for k, v in self.signing_key.items() if k != "d"}

    def sender_keys(self) -> SenderKeys:
        return SenderKeys(self.agency_id, self.signing_key, self.public_encryption_key)

    def recipient_key(self) -> RecipientKey:
        return RecipientKey(self.agency_id, self.public_encryption_key)

    def with_signing_key(self, key_change: dict[str, Any]) -> Party:
        """The same party as a receiver pins it after a status change of its signing key."""
        keys = tuple(replace(k, **key_change) if k.kid == self.signing_kid else k for k in self.keyring.keys)
        return replace(self, keyring=self.keyring.replace_keys(keys, NOW))


def make_party(agency_id: str, *, created: datetime = KEYS_CREATED, lifetime_days: int = 365) -> Party:
    signing, signing_info = generate_key_pair(KeyUse.SIG, agency_id, created, lifetime_days)
    encryption, encryption_info = generate_key_pair(KeyUse.ENC, agency_id, created, lifetime_days)
    ring = Keyring(AgencyRef(agency_id, agency_id.upper()), (signing_info, encryption_info))
    return Party(agency_id, signing, encryption, ring)


def revoked_at(at: datetime) -> dict[str, Any]:
    """A `with_signing_key` change: the key was revoked at `at`."""
    return {"status": KeyStatus.REVOKED, "revoked_at": at, "revocation_reason": "compromised"}


# -- bundles --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bundle:
    data: bytes  # the exact bytes that get signed
    id: str
    count: int


def indicator(value: str, *, tlp: Tlp = Tlp.AMBER, seed: int = 0) -> dict[str, Any]:
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.uuid5(uuid.NAMESPACE_URL, f'ioc:{value}:{seed}')}",
        "created_by_ref": "identity--f7057009-c6c7-5705-914f-068f8d8b4ab1",
        "created": "2026-11-23T10:00:00.000Z",
        "modified": "2026-11-23T10:00:00.000Z",
        "name": f"C2 server {value}",
        "indicator_types": ["malicious-activity"],
        "pattern": f"[ipv4-addr:value = '{value}']",
        "pattern_type": "stix",
        "valid_from": "2026-11-23T10:00:00.000Z",
        "confidence": 80,
        "object_marking_refs": [tlp.marking_id],
    }


def make_bundle(objects: list[dict[str, Any]] | None = None, *, indent: int | None = None) -> Bundle:
    objects = objects if objects is not None else [indicator("198.51.100.7")]
    bundle_id = f"bundle--{uuid.uuid4()}"
    doc = {"type": "bundle", "id": bundle_id, "objects": objects}
    # Deliberately not our canonical form: the envelope must carry whatever bytes it is given.
    data = json.dumps(doc, indent=indent, ensure_ascii=False).encode()
    return Bundle(data, bundle_id, len(objects))


# -- the two sides of an exchange, in memory -------------------------------------------------


@dataclass
class Outbox:
    """The sender's channel positions, advanced as `record_sealed` would in the store."""

    last: dict[str, tuple[int, str]] = field(default_factory=dict)

    def next_positions(self, recipients: list[str]) -> dict[str, ChannelPosition]:
        out = {}
        for r in recipients:
            seq, digest = self.last.get(r, (0, None))
            out[r] = ChannelPosition(sequence=seq + 1, previous=digest)
        return out

    def record(self, sealed: SealedEnvelope) -> None:
        for r, pos in sealed.header.channels.items():
            self.last[r] = (pos.sequence, sealed.digest)


@dataclass
class Inbox:
    """The receiver's seen-envelope set and per-sender channel state."""

    seen: set[tuple[str, str]] = field(default_factory=set)  # (sender, envelope id)
    channels: dict[str, ChannelState] = field(default_factory=dict)

    def record(self, opened: OpenedEnvelope) -> None:
        self.seen.add((opened.header.sender, opened.header.envelope_id))
        if opened.channel is not None:
            position = ChannelState(opened.channel.sequence, opened.digest, opened.header.issued_at)
            self.channels[opened.header.sender] = position


@dataclass
class Node:
    """An agency taking part in exchanges: sends with an outbox, receives with an inbox."""

    party: Party
    pinned: dict[str, Keyring] = field(default_factory=dict)  # agency id -> ring (partners)
    outbox: Outbox = field(default_factory=Outbox)
    inbox: Inbox = field(default_factory=Inbox)

    @property
    def agency_id(self) -> str:
        return self.party.agency_id

    def pin(self, *others: Party) -> None:
        for other in others:
            self.pinned[other.agency_id] = other.keyring

    def seal(
        self,
        bundle: Bundle,
        to: list[Party],
        *,
        now: datetime = NOW,
        record: bool = True,
        **overrides: Any,
    ) -> SealedEnvelope:
        recipients = [p.agency_id for p in to]
        kwargs: dict[str, Any] = {
            "bundle_id": bundle.id,
            "object_count": bundle.count,
            "sender": self.party.sender_keys(),
            "recipients": [p.recipient_key() for p in to],
            "channels": self.outbox.next_positions(recipients),
            "now": now,
        }
        kwargs.update(overrides)
        sealed = seal_bundle(bundle.data, **kwargs)
        if record:
            self.outbox.record(sealed)
        return sealed

    def context(self, *, now: datetime = NOW, **limits: Any) -> ReceiverContext:
        rings = dict(self.pinned)
        rings[self.agency_id] = self.party.keyring  # our own ring: to read our own sent copies
        return ReceiverContext(
            agency_id=self.agency_id,
            decryption_keys={self.party.encryption_kid: self.party.encryption_key},
            keyrings=rings,
            now=now,
            seen_envelope=lambda sender, envelope_id: (sender, envelope_id) in self.inbox.seen,
            channel_state=self.inbox.channels.get,
            validate_bundle=validate_bundle,
            **limits,
        )

    def open(
        self,
        artifact: dict[str, Any],
        *,
        now: datetime = NOW,
        accept_gap: bool = False,
        **limits: Any,
    ) -> OpenedEnvelope:
        """Opens and, when every check passed, records it as the store would."""
        opened = open_envelope(artifact, self.context(now=now, **limits), accept_gap=accept_gap)
        self.inbox.record(opened)
        return opened

    def rejects(self, artifact: dict[str, Any], reason: RejectReason, **kwargs: Any) -> EnvelopeRejected:
        """Asserts opening fails with exactly `reason` and nothing is recorded as received."""
        before = (set(self.inbox.seen), dict(self.inbox.channels))
        with pytest.raises(EnvelopeRejected) as caught:
            self.open(artifact, **kwargs)
        assert caught.value.reason is reason, caught.value
        assert (self.inbox.seen, self.inbox.channels) == before
        return caught.value


@dataclass
class World:
    """CERT-FR and CERT-In, partners of each other; CERT-DE, a partner of both; and
    Mallory, an agency nobody pinned."""

    fr: Node
    in_: Node
    de: Node
    mallory: Node


def make_world() -> World:
    fr, in_, de, mallory = (Node(make_party(a)) for a in ("cert-fr", "cert-in", "cert-de", "mallory"))
    fr.pin(in_.party, de.party)
    in_.pin(fr.party, de.party)
    de.pin(fr.party, in_.party)
    mallory.pin(fr.party, in_.party, de.party)
    return World(fr, in_, de, mallory)


@pytest.fixture
def world() -> World:
    return make_world()


@pytest.fixture
def bundle() -> Bundle:
    return make_bundle([indicator(f"198.51.100.{i}", seed=i) for i in range(1, 4)])


# -- taking envelopes apart and putting them back together -----------------------------------


def artifact_jwe_bytes(artifact: dict[str, Any]) -> bytes:
    return base64.b64decode(artifact["payload_bin"], validate=True)


def artifact_jwe(artifact: dict[str, Any]) -> dict[str, Any]:
    return json.loads(artifact_jwe_bytes(artifact))


def with_jwe(artifact: dict[str, Any], jwe: dict[str, Any] | bytes) -> dict[str, Any]:
    """The artifact carrying another JWE, with a matching hash and id, as an attacker would
    make it (the artifact's hash protects against accidents, not attackers)."""
    raw = jwe if isinstance(jwe, bytes) else json.dumps(jwe, separators=(",", ":")).encode()
    payload_bin = base64.b64encode(raw).decode()
    digest = hashlib.sha256(raw).hexdigest()
    contributing = json.dumps(
        {"hashes": {"SHA-256": digest}, "payload_bin": payload_bin},
        separators=(",", ":"),
        sort_keys=True,
    )
    out = json.loads(json.dumps(artifact))
    out.update(
        payload_bin=payload_bin,
        hashes={"SHA-256": digest},
        id=f"artifact--{uuid.uuid5(SCO_NAMESPACE, contributing)}",
    )
    return out


def hints(artifact: dict[str, Any]) -> dict[str, Any]:
    return artifact["extensions"][ROUTING_EXTENSION_ID]


def with_hints(artifact: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(artifact))
    hints(out).update(changes)
    return out


def decrypt_jws(artifact: dict[str, Any], reader: Party) -> bytes:
    """The inner JWS, as any recipient (or the sender) can read it."""
    _protected, jws = jwe_decrypt_general(
        artifact_jwe(artifact),
        {reader.encryption_kid: reader.encryption_key},
        max_plaintext_bytes=1 << 30,
    )
    return jws


def reencrypt(
    artifact: dict[str, Any],
    jws: bytes,
    to: list[Party],
    *,
    protected: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Puts a (modified) JWS back into a valid JWE for `to`, keeping the artifact's hints."""
    jwe = jwe_encrypt_general(jws, protected or PROTECTED, [p.public_encryption_key for p in to])
    return with_jwe(artifact, jwe)


def jws_parts(jws: bytes) -> tuple[bytes, bytes, bytes]:
    header, payload, signature = jws.split(b".")
    return header, payload, signature


def jws_header(jws: bytes) -> dict[str, Any]:
    header = json.loads(b64url_decode(jws_parts(jws)[0], what="header"))
    return header


def b64(data: bytes) -> bytes:
    return b64url_encode(data)


def flip_byte(data: bytes, index: int, mask: int = 0x01) -> bytes:
    return data[:index] + bytes([data[index] ^ mask]) + data[index + 1 :]


def flip_b64url(text: str, index: int) -> str:
    """Flips one bit of the decoded byte at `index` of a base64url member."""
    return b64url_encode(flip_byte(b64url_decode(text, what="member"), index)).decode()


# -- JWE by hand: for envelopes no honest sender would make ----------------------------------


def deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def concat_kdf_kek(shared_secret: bytes) -> bytes:
    """RFC 7518 section 4.6.2 for ECDH-ES+A256KW with no apu/apv (docs/ENVELOPE.md section 2)."""
    alg = b"ECDH-ES+A256KW"
    other_info = struct.pack(">I", len(alg)) + alg + struct.pack(">I", 0) * 2 + struct.pack(">I", 256)
    return ConcatKDFHash(hashes.SHA256(), 32, other_info).derive(shared_secret)


def recipient_entry(kid: str, epk_x: bytes, shared_secret: bytes, cek: bytes) -> dict[str, Any]:
    """One recipient entry whose CEK is wrapped under the KEK of a chosen shared secret."""
    return {
        "header": {
            "alg": "ECDH-ES+A256KW",
            "kid": kid,
            "epk": {"kty": "OKP", "crv": "X25519", "x": b64(epk_x).decode()},
        },
        "encrypted_key": b64(aes_key_wrap(concat_kdf_kek(shared_secret), cek)).decode(),
    }


def honest_entry(recipient: Party, cek: bytes) -> dict[str, Any]:
    """What a correct sender does: a fresh ephemeral key agreed with the recipient's key."""
    ephemeral = X25519PrivateKey.generate()
    peer = X25519PublicKey.from_public_bytes(b64url_decode(recipient.encryption_key["x"], what="x"))
    epk_x = ephemeral.public_key().public_bytes_raw()
    return recipient_entry(recipient.encryption_kid, epk_x, ephemeral.exchange(peer), cek)


def jwe_by_hand(
    content: bytes,
    entries: list[dict[str, Any]],
    cek: bytes,
    protected: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A JWE whose (already compressed) content is encrypted as given, nothing checked."""
    protected_b64 = b64url_encode(
        json.dumps(protected or PROTECTED, separators=(",", ":"), sort_keys=True).encode()
    )
    gcm = JWA.encryption_alg(CONTENT_ENCRYPTION)
    iv, ciphertext, tag = gcm.encrypt(cek, protected_b64, content)
    return {
        "protected": protected_b64.decode(),
        "recipients": entries,
        "iv": b64(iv).decode(),
        "ciphertext": b64(ciphertext).decode(),
        "tag": b64(tag).decode(),
    }
