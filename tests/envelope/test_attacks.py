"""Every attack of issue 3 is rejected, with the right reason, and nothing from it is recorded.

Each test plays the attacker: it takes a genuine envelope (or builds one by hand, as anyone who
knows our public encryption key can), changes one thing, and has CERT-In open the result.
`Node.rejects` asserts the exact `RejectReason` and that CERT-In's inbox (seen envelope ids,
channel positions) did not move.
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import subprocess
import sys
import textwrap
import tracemalloc
import uuid
import zlib
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from jwcrypto import jwe as jwcrypto_jwe
from jwcrypto import jwk

from cti_exchange.clock import stix_timestamp
from cti_exchange.envelope.jose_framing import (
    b64url_decode,
    jws_payload,
    jws_sign_compact,
)
from cti_exchange.envelope.reasons import RejectReason
from cti_exchange.envelope.seal import SealedEnvelope
from cti_exchange.keys.material import generate_key_pair
from cti_exchange.keys.model import KeyStatus, KeyUse

from .conftest import (
    KEYS_CREATED,
    NOW,
    PROTECTED,
    Bundle,
    Node,
    Party,
    World,
    artifact_jwe,
    b64,
    decrypt_jws,
    deflate,
    flip_b64url,
    flip_byte,
    honest_entry,
    indicator,
    jwe_by_hand,
    jws_header,
    jws_parts,
    make_bundle,
    make_party,
    recipient_entry,
    reencrypt,
    revoked_at,
    with_hints,
    with_jwe,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def sealed(world: World, bundle: Bundle) -> SealedEnvelope:
    """A genuine envelope from CERT-FR to CERT-In and CERT-DE (and CERT-FR's own copy)."""
    return world.fr.seal(bundle, [world.in_.party, world.de.party])


def resign(
    sealed: SealedEnvelope,
    reader: Party,
    signing_key: dict[str, Any],
    to: list[Party],
    *,
    change: Callable[[dict[str, Any]], None] | None = None,
    payload: bytes | None = None,
) -> dict[str, Any]:
    """Reads `sealed` as `reader`, edits the signed header and/or payload, signs the result
    with `signing_key` and encrypts it to `to`, keeping the artifact's clear-text hints."""
    jws = decrypt_jws(sealed.artifact, reader)
    header = jws_header(jws)
    if change is not None:
        change(header)
    if payload is None:
        payload = jws_payload(jws.rsplit(b".", 1)[0])
    return reencrypt(sealed.artifact, jws_sign_compact(header, payload, signing_key), to)


def test_the_genuine_envelope_opens(world: World, sealed: SealedEnvelope, bundle: Bundle) -> None:
    """The baseline every attack below starts from."""
    opened = world.in_.open(sealed.artifact)
    assert opened.bundle_bytes == bundle.data
    assert opened.signer.kid == world.fr.party.signing_kid


# -- a flipped byte in each JOSE part --------------------------------------------------------


def flip_jwe_part(jwe: dict[str, Any], part: str, entry: int = 0) -> None:
    if part == "protected":
        # Keeps the header valid JSON with the same enc and zip ("+jws" -> "+jwr" in cty), so
        # only the AES-GCM additional authenticated data differs.
        decoded = b64url_decode(jwe["protected"], what="protected")
        jwe["protected"] = flip_b64url(jwe["protected"], decoded.index(b"+jws") + 3)
        assert json.loads(b64url_decode(jwe["protected"], what="p"))["zip"] == "DEF"
    elif part in ("iv", "ciphertext", "tag"):
        jwe[part] = flip_b64url(jwe[part], 5)
    elif part == "encrypted_key":
        jwe["recipients"][entry]["encrypted_key"] = flip_b64url(jwe["recipients"][entry]["encrypted_key"], 17)
    elif part == "epk":
        epk = jwe["recipients"][entry]["header"]["epk"]
        epk["x"] = flip_b64url(epk["x"], 9)
    else:
        raise AssertionError(part)


@pytest.mark.parametrize("part", ["protected", "iv", "ciphertext", "tag", "encrypted_key", "epk"])
def test_a_flipped_byte_in_any_jwe_part_fails_decryption(
    world: World, sealed: SealedEnvelope, part: str
) -> None:
    jwe = artifact_jwe(sealed.artifact)
    flip_jwe_part(jwe, part, entry=0)  # recipient entry 0 is CERT-In's
    world.in_.rejects(with_jwe(sealed.artifact, jwe), RejectReason.DECRYPTION_FAILED)


@pytest.mark.parametrize("holder", [0, 1, 2], ids=["cert-in", "cert-de", "own-copy"])
@pytest.mark.parametrize("part", ["encrypted_key", "epk"])
def test_each_recipient_entry_is_protected_for_its_holder(
    world: World, sealed: SealedEnvelope, bundle: Bundle, part: str, holder: int
) -> None:
    """Recipient entries are per recipient (RFC 7516 section 7.2.1): whoever's entry is altered
    detects it; the others' entries are untouched and still open the same signed bytes."""
    readers = [world.in_, world.de, world.fr]
    jwe = artifact_jwe(sealed.artifact)
    flip_jwe_part(jwe, part, entry=holder)
    tampered = with_jwe(sealed.artifact, jwe)
    readers[holder].rejects(tampered, RejectReason.DECRYPTION_FAILED)
    for index, other in enumerate(readers):
        if index != holder:
            assert other.open(tampered).bundle_bytes == bundle.data


@pytest.mark.parametrize("part", ["header", "payload", "signature"])
def test_a_flipped_byte_inside_the_jws_fails_the_signature(
    world: World, sealed: SealedEnvelope, part: str
) -> None:
    """Flipped, then re-encrypted to CERT-In so that the JWE layer passes: only the signature
    is left to catch it."""
    header, payload, signature = jws_parts(decrypt_jws(sealed.artifact, world.in_.party))
    if part == "header":
        # Inside the envelope id, so alg, kid and sender still read the same.
        decoded = b64url_decode(header, what="header")
        header = b64(flip_byte(decoded, decoded.index(b'"envelope_id":"') + 16))
    elif part == "payload":
        decoded = b64url_decode(payload, what="payload")
        payload = b64(flip_byte(decoded, len(decoded) // 2))
    else:
        signature = b64(flip_byte(b64url_decode(signature, what="signature"), 20))
    jws = b".".join([header, payload, signature])
    tampered = reencrypt(sealed.artifact, jws, [world.in_.party])
    world.in_.rejects(tampered, RejectReason.BAD_SIGNATURE)


B64URL = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def respell_last_character(encoded: bytes) -> bytes:
    """The same bytes, spelt differently: base64url's last character has spare low bits."""
    return encoded[:-1] + bytes([B64URL[B64URL.index(encoded[-1]) ^ 1]])


def test_a_signature_re_encoded_to_the_same_bytes(world: World, sealed: SealedEnvelope) -> None:
    """86 characters carry a 64-byte signature with 4 bits to spare. CERT-DE, a co-recipient,
    could re-spell it: the signature would still verify, but the JWS bytes, and so CERT-In's
    channel digest, would differ from CERT-FR's, and CERT-FR's next genuine envelope would be
    refused as a chain-mismatch. Only canonical base64url is accepted."""
    header, payload, signature = jws_parts(decrypt_jws(sealed.artifact, world.de.party))
    respelt = respell_last_character(signature)
    assert base64.urlsafe_b64decode(respelt + b"==") == base64.urlsafe_b64decode(signature + b"==")
    forged = reencrypt(sealed.artifact, b".".join([header, payload, respelt]), [world.in_.party])
    world.in_.rejects(forged, RejectReason.MALFORMED_SIGNATURE)


@pytest.mark.parametrize("member", ["tag", "encrypted_key", "epk"])
def test_a_jwe_member_re_encoded_to_the_same_bytes(world: World, sealed: SealedEnvelope, member: str) -> None:
    jwe = artifact_jwe(sealed.artifact)
    if member == "tag":
        jwe["tag"] = respell_last_character(jwe["tag"].encode()).decode()
    elif member == "encrypted_key":
        entry = jwe["recipients"][0]
        entry["encrypted_key"] = respell_last_character(entry["encrypted_key"].encode()).decode()
    else:
        epk = jwe["recipients"][0]["header"]["epk"]
        epk["x"] = respell_last_character(epk["x"].encode()).decode()
    world.in_.rejects(with_jwe(sealed.artifact, jwe), RejectReason.MALFORMED_ENVELOPE)


# -- who signed ------------------------------------------------------------------------------


def test_a_signature_by_another_key_under_the_senders_kid(world: World, sealed: SealedEnvelope) -> None:
    impostor = make_party("cert-fr")  # a fresh key pretending to be CERT-FR's
    key = impostor.signing_key | {"kid": world.fr.party.signing_kid}
    forged = resign(sealed, world.in_.party, key, [world.in_.party])
    world.in_.rejects(forged, RejectReason.BAD_SIGNATURE)


def test_a_signer_who_is_not_a_pinned_partner(world: World, bundle: Bundle) -> None:
    """Mallory knows CERT-In's public key, so it can seal a perfectly formed envelope."""
    sealed = world.mallory.seal(bundle, [world.in_.party])
    rejected = world.in_.rejects(sealed.artifact, RejectReason.UNKNOWN_SENDER)
    assert "mallory" in rejected.detail


def test_a_key_the_sender_never_published(world: World, sealed: SealedEnvelope) -> None:
    """CERT-FR rotated, but CERT-In has not pinned the new key yet (or it is not CERT-FR's)."""
    unpublished = make_party("cert-fr").signing_key
    forged = resign(
        sealed,
        world.in_.party,
        unpublished,
        [world.in_.party],
        change=lambda h: h.update(kid=unpublished["kid"]),
    )
    world.in_.rejects(forged, RejectReason.UNKNOWN_KEY)


def test_a_partner_impersonating_another_partner(world: World, sealed: SealedEnvelope) -> None:
    """CERT-DE, pinned by CERT-In, signs with its own genuine key but claims to be CERT-FR."""
    forged = resign(
        sealed,
        world.in_.party,
        world.de.party.signing_key,
        [world.in_.party],
        change=lambda h: h.update(kid=world.de.party.signing_kid),
    )
    rejected = world.in_.rejects(forged, RejectReason.SENDER_KEY_MISMATCH)
    assert "cert-de" in rejected.detail and "cert-fr" in rejected.detail


def test_a_kid_naming_the_senders_encryption_key(world: World, sealed: SealedEnvelope) -> None:
    forged = resign(
        sealed,
        world.in_.party,
        world.fr.party.signing_key,
        [world.in_.party],
        change=lambda h: h.update(kid=world.fr.party.encryption_kid),
    )
    world.in_.rejects(forged, RejectReason.WRONG_KEY_USE)


def test_a_revoked_key_is_rejected_for_envelopes_after_revocation(world: World, bundle: Bundle) -> None:
    """CERT-FR revoked its signing key yesterday (say it leaked); CERT-In has the revocation."""
    world.in_.pin(world.fr.party.with_signing_key(revoked_at(NOW - timedelta(days=1))))
    sealed_by_thief = world.fr.seal(bundle, [world.in_.party])
    rejected = world.in_.rejects(sealed_by_thief.artifact, RejectReason.REVOKED_KEY)
    assert world.fr.party.signing_kid in rejected.detail


def _dated(value: str, moment: datetime) -> dict[str, Any]:
    stamp = stix_timestamp(moment)
    return {**indicator(value), "created": stamp, "modified": stamp, "valid_from": stamp}


def test_an_envelope_signed_before_the_revocation_still_opens(world: World) -> None:
    bundle = make_bundle([_dated("198.51.100.1", NOW - timedelta(days=3))])
    before = world.fr.seal(bundle, [world.in_.party], now=NOW - timedelta(days=2))
    world.in_.pin(world.fr.party.with_signing_key(revoked_at(NOW - timedelta(days=1))))
    assert world.in_.open(before.artifact).header.issued_at == NOW - timedelta(days=2)


def test_a_revoked_key_cannot_date_an_envelope_back_to_before_the_last_one(world: World) -> None:
    """Found on a walkthrough: a thief with a signing key revoked since, and the channel's
    state, dated an envelope before the revocation and before the last one accepted, chained it
    as the next one, and it was accepted (the next envelope on a channel was also exempt from the
    age limit). Honest envelopes are sealed, and dated, in sequence order."""
    first = world.fr.seal(
        make_bundle([_dated("198.51.100.3", NOW - timedelta(days=3))]),
        [world.in_.party],
        now=NOW - timedelta(hours=2),
    )
    world.in_.open(first.artifact)
    world.in_.pin(world.fr.party.with_signing_key(revoked_at(NOW - timedelta(hours=1))))
    backdated = world.fr.seal(
        make_bundle([_dated("198.51.100.4", NOW - timedelta(days=3))]),
        [world.in_.party],
        now=NOW - timedelta(hours=3),  # before its revocation, and before the envelope above
    )
    rejected = world.in_.rejects(backdated.artifact, RejectReason.BACKDATED)
    assert "before the last envelope accepted from cert-fr" in rejected.detail
    assert world.fr.party.signing_kid in rejected.detail and "revoked" in rejected.detail


def test_the_next_envelope_signed_by_a_key_revoked_since_is_not_exempt_from_the_age_limit(
    world: World,
) -> None:
    old = NOW - timedelta(days=20)  # the channel's first envelope, older than the age limit
    world.in_.pin(world.fr.party.with_signing_key(revoked_at(NOW - timedelta(days=1))))
    sealed = world.fr.seal(make_bundle([_dated("198.51.100.5", old)]), [world.in_.party], now=old)
    world.in_.rejects(sealed.artifact, RejectReason.TOO_OLD, max_age=timedelta(days=7))
    # The same envelope with the key still current is the next on its channel: its age is news.
    world.in_.pin(world.fr.party)
    assert world.in_.open(sealed.artifact, max_age=timedelta(days=7)).header.issued_at == old


def test_a_current_key_dating_back_is_news_not_an_attack(world: World) -> None:
    """A partner's clock stepped back (an NTP correction): with its current key, the envelope
    opens as before; dating back gains nothing a current key does not already have."""
    world.in_.open(world.fr.seal(make_bundle([indicator("198.51.100.6")]), [world.in_.party]).artifact)
    earlier = world.fr.seal(
        make_bundle([_dated("198.51.100.7", NOW - timedelta(days=1))]),
        [world.in_.party],
        now=NOW - timedelta(hours=6),
    )
    assert world.in_.open(earlier.artifact).header.issued_at == NOW - timedelta(hours=6)


def retired_at(at: datetime) -> dict[str, Any]:
    """A `with_signing_key` change: the key was rotated out at `at` (`keys rotate`)."""
    return {"status": KeyStatus.RETIRED, "retired_at": at}


def test_a_retired_key_is_rejected_for_envelopes_after_its_retirement(world: World, bundle: Bundle) -> None:
    """CERT-FR rotated yesterday; its old signing key, no longer guarded, leaks: whatever it
    signs now is refused, although the key stays pinned to verify what it signed before."""
    world.in_.pin(world.fr.party.with_signing_key(retired_at(NOW - timedelta(days=1))))
    sealed_by_thief = world.fr.seal(bundle, [world.in_.party])
    rejected = world.in_.rejects(sealed_by_thief.artifact, RejectReason.RETIRED_KEY)
    assert world.fr.party.signing_kid in rejected.detail and "retired at" in rejected.detail


def test_an_envelope_signed_before_the_retirement_still_opens(world: World) -> None:
    """... and within the clock skew after it (a sync signing as the rotation happened)."""
    bundle = make_bundle([_dated("198.51.100.2", NOW - timedelta(days=3))])
    before = world.fr.seal(bundle, [world.in_.party], now=NOW - timedelta(days=2))
    rotated = NOW - timedelta(days=2) - timedelta(minutes=4)
    world.in_.pin(world.fr.party.with_signing_key(retired_at(rotated)))
    assert world.in_.open(before.artifact).header.issued_at == NOW - timedelta(days=2)


def test_a_retirement_not_recorded_is_the_creation_of_the_successor(world: World, bundle: Bundle) -> None:
    """A key document pinned before `retired_at` was recorded: the next signing key's creation
    is when the old one was retired."""
    successor, successor_info = generate_key_pair(KeyUse.SIG, "cert-fr", NOW - timedelta(days=1), 365)
    old = world.fr.party.with_signing_key({"status": KeyStatus.RETIRED})
    world.in_.pin(replace(old, keyring=old.keyring.replace_keys((*old.keyring.keys, successor_info), NOW)))
    rejected = world.in_.rejects(world.fr.seal(bundle, [world.in_.party]).artifact, RejectReason.RETIRED_KEY)
    assert stix_timestamp(successor_info.created) in rejected.detail
    assert successor["kid"] == successor_info.kid


def test_an_expired_key(world: World, bundle: Bundle) -> None:
    short_lived = make_party("cert-fr", lifetime_days=10)  # expired 20 days before NOW
    sender = Node(short_lived)
    world.in_.pin(short_lived)
    sealed = sender.seal(bundle, [world.in_.party])
    world.in_.rejects(sealed.artifact, RejectReason.EXPIRED_KEY)


def test_a_key_used_before_it_was_created(world: World, bundle: Bundle) -> None:
    """A back-dated envelope: issued_at before the signing key existed."""
    early = KEYS_CREATED - timedelta(days=1)
    sealed = world.fr.seal(bundle, [world.in_.party], now=early)
    world.in_.rejects(sealed.artifact, RejectReason.KEY_NOT_YET_VALID, now=early)


# -- alg "none" and HMAC-with-the-public-key confusion ----------------------------------------


def _signing_input(sealed: SealedEnvelope, reader: Party, alg: str) -> bytes:
    jws = decrypt_jws(sealed.artifact, reader)
    header = jws_header(jws) | {"alg": alg}
    encoded_header = b64(json.dumps(header, separators=(",", ":")).encode())
    return encoded_header + b"." + jws_parts(jws)[1]


@pytest.mark.parametrize("alg", ["none", "None", "NONE", ""])
def test_alg_none(world: World, sealed: SealedEnvelope, alg: str) -> None:
    unsigned = _signing_input(sealed, world.in_.party, alg) + b"."
    world.in_.rejects(
        reencrypt(sealed.artifact, unsigned, [world.in_.party]), RejectReason.UNSUPPORTED_ALGORITHM
    )


def _public_key_encodings(party: Party) -> dict[str, bytes]:
    public = party.public_signing_key
    return {
        "raw-x": b64url_decode(public["x"], what="x"),
        "x-text": public["x"].encode(),
        "jwk-json": json.dumps(public).encode(),
        "pem": jwk.JWK(**public).export_to_pem(),
    }


@pytest.mark.parametrize("alg", ["HS256", "HS512"])
@pytest.mark.parametrize("secret", ["raw-x", "x-text", "jwk-json", "pem"])
def test_hmac_keyed_with_the_pinned_public_key(
    world: World, sealed: SealedEnvelope, alg: str, secret: str
) -> None:
    """The classic confusion: a verifier that trusts `alg` would check an HMAC keyed with the
    public key it holds for the sender, which the attacker knows too."""
    key = _public_key_encodings(world.fr.party)[secret]
    signing_input = _signing_input(sealed, world.in_.party, alg)
    digest = "sha256" if alg == "HS256" else "sha512"
    mac = hmac.new(key, signing_input, digest).digest()
    forged = reencrypt(sealed.artifact, signing_input + b"." + b64(mac), [world.in_.party])
    world.in_.rejects(forged, RejectReason.UNSUPPORTED_ALGORITHM)


@pytest.mark.parametrize("alg", ["Ed25519", "ES256", "RS256", "eddsa"])
def test_any_other_signature_algorithm(world: World, sealed: SealedEnvelope, alg: str) -> None:
    """Only exactly "EdDSA" (docs/ENVELOPE.md section 1), even the RFC 9864 spelling."""
    forged = resign(
        sealed,
        world.in_.party,
        world.fr.party.signing_key,
        [world.in_.party],
        change=lambda h: h.update(alg=alg),
    )
    world.in_.rejects(forged, RejectReason.UNSUPPORTED_ALGORITHM)


# -- the JWE profile: enc, zip, alg -----------------------------------------------------------


def test_a_real_jwe_with_another_content_encryption(world: World, sealed: SealedEnvelope) -> None:
    """A genuine, decryptable JWE (made by jwcrypto's own API) with A256CBC-HS512: refused
    before any decryption, because only A256GCM is in the profile."""
    jws = decrypt_jws(sealed.artifact, world.in_.party)
    token = jwcrypto_jwe.JWE(
        jws,
        protected={"enc": "A256CBC-HS512", "zip": "DEF", "cty": "cti-envelope+jws"},
    )
    for party in (world.in_.party, world.fr.party):  # two, so it is General JSON (section 2)
        token.add_recipient(
            jwk.JWK(**party.public_encryption_key),
            header={"alg": "ECDH-ES+A256KW", "kid": party.encryption_kid},
        )
    forged = with_jwe(sealed.artifact, token.serialize().encode())
    world.in_.rejects(forged, RejectReason.UNSUPPORTED_ALGORITHM)


@pytest.mark.parametrize(
    "protected",
    [
        {"enc": "A128GCM", "zip": "DEF", "cty": "cti-envelope+jws"},
        {"enc": "A256CBC-HS512", "zip": "DEF", "cty": "cti-envelope+jws"},
        {"enc": "A256GCM", "zip": "GZIP", "cty": "cti-envelope+jws"},
        {"enc": "A256GCM", "zip": "def", "cty": "cti-envelope+jws"},
        {"enc": "A256GCM", "zip": "DEF", "cty": "cti-envelope+jws", "alg": "ECDH-ES+A256KW"},
        {"enc": "A256GCM", "zip": "DEF", "cty": "cti-envelope+jws", "alg": "dir"},
    ],
    ids=["A128GCM", "A256CBC-HS512", "zip-GZIP", "zip-lowercase", "alg-protected", "alg-dir"],
)
def test_an_unsupported_enc_zip_or_protected_alg(
    world: World, sealed: SealedEnvelope, protected: dict[str, Any]
) -> None:
    cek = os.urandom(32)
    jws = decrypt_jws(sealed.artifact, world.in_.party)
    jwe = jwe_by_hand(deflate(jws), [honest_entry(world.in_.party, cek)], cek, protected)
    world.in_.rejects(with_jwe(sealed.artifact, jwe), RejectReason.UNSUPPORTED_ALGORITHM)


@pytest.mark.parametrize("alg", ["ECDH-ES", "ECDH-ES+A128KW", "A256KW", "RSA-OAEP-256", "dir"])
def test_an_unsupported_key_management_algorithm(world: World, sealed: SealedEnvelope, alg: str) -> None:
    jwe = artifact_jwe(sealed.artifact)
    jwe["recipients"][0]["header"]["alg"] = alg
    world.in_.rejects(with_jwe(sealed.artifact, jwe), RejectReason.UNSUPPORTED_ALGORITHM)


def test_the_hand_made_jwe_helper_is_a_faithful_sender(
    world: World, sealed: SealedEnvelope, bundle: Bundle
) -> None:
    """The helpers below forge JWEs by hand; here they make an honest one, which opens. So when
    a forged one is rejected, it is for the one thing the test changed."""
    cek = os.urandom(32)
    jws = decrypt_jws(sealed.artifact, world.in_.party)
    jwe = jwe_by_hand(deflate(jws), [honest_entry(world.in_.party, cek)], cek)
    assert world.in_.open(with_jwe(sealed.artifact, jwe)).bundle_bytes == bundle.data


# -- invalid and low-order X25519 points ------------------------------------------------------

# Curve25519 points of small order, as libsodium's blocklist lists them (crypto_scalarmult/
# curve25519/ref10/x25519_ref10.c), also with the top bit set, which RFC 7748 section 5 masks.
# X25519 with any of them gives an all-zero shared secret that the attacker knows in advance.
LOW_ORDER_POINTS = {
    "zero": "00" * 32,
    "one": "01" + "00" * 31,
    "order-8-a": "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "order-8-b": "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "p-1": "ec" + "ff" * 30 + "7f",
    "p": "ed" + "ff" * 30 + "7f",
    "p+1": "ee" + "ff" * 30 + "7f",
    "order-8-a-high-bit": "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880",
    "p-high-bit": "ed" + "ff" * 31,
}


def x25519_reference(scalar: bytes, u: bytes) -> bytes:
    """RFC 7748 section 5, straight from the text (no low-order check): what a careless
    receiver would compute."""
    p, a24 = 2**255 - 19, 121665
    k = int.from_bytes(scalar, "little") & ~7 & ~(1 << 255) | (1 << 254)
    x1 = int.from_bytes(u, "little") & ~(1 << 255)
    x2, z2, x3, z3, swap = 1, 0, x1, 1, 0
    for t in reversed(range(255)):
        bit = (k >> t) & 1
        swap ^= bit
        if swap:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = bit
        a, b, c, d = x2 + z2, x2 - z2, x3 + z3, x3 - z3
        aa, bb, da, cb = a * a, b * b, d * a, c * b
        e = aa - bb
        x3, z3 = (da + cb) ** 2 % p, x1 * (da - cb) ** 2 % p
        x2, z2 = aa * bb % p, e * (aa + a24 * e) % p
    if swap:
        x2, z2 = x3, z3
    return (x2 * pow(z2, p - 2, p) % p).to_bytes(32, "little")


def test_the_reference_x25519_matches_rfc_7748() -> None:
    """RFC 7748 section 6.1: Alice's and Bob's shared secret."""
    alice = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    bob_public = bytes.fromhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
    shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
    assert x25519_reference(alice, bob_public).hex() == shared


@pytest.mark.parametrize("point", list(LOW_ORDER_POINTS.values()), ids=list(LOW_ORDER_POINTS))
def test_a_low_order_epk(world: World, sealed: SealedEnvelope, point: str) -> None:
    """The attacker wraps the CEK under the KEK of the all-zero shared secret such a point
    forces: a receiver that did not refuse the point would decrypt this envelope."""
    our_scalar = b64url_decode(world.in_.party.encryption_key["d"], what="d")
    assert x25519_reference(our_scalar, bytes.fromhex(point)) == bytes(32)
    cek = os.urandom(32)
    jws = decrypt_jws(sealed.artifact, world.in_.party)
    entry = recipient_entry(world.in_.party.encryption_kid, bytes.fromhex(point), bytes(32), cek)
    jwe = jwe_by_hand(deflate(jws), [entry], cek)
    world.in_.rejects(with_jwe(sealed.artifact, jwe), RejectReason.DECRYPTION_FAILED)


@pytest.mark.parametrize(
    "epk",
    [
        {"kty": "OKP", "crv": "X25519", "x": b64(bytes(31)).decode()},
        {"kty": "OKP", "crv": "X25519", "x": b64(os.urandom(33)).decode()},
        {"kty": "OKP", "crv": "X25519"},
        {"kty": "OKP", "crv": "Ed25519", "x": b64(os.urandom(32)).decode()},
        {
            "kty": "EC",
            "crv": "P-256",
            "x": b64(os.urandom(32)).decode(),
            "y": b64(os.urandom(32)).decode(),
        },
        {
            "kty": "OKP",
            "crv": "X25519",
            "x": b64(os.urandom(32)).decode(),
            "d": b64(os.urandom(32)).decode(),
        },
        "not-a-key",
    ],
    ids=["31-bytes", "33-bytes", "no-x", "ed25519", "p-256", "with-private-d", "string"],
)
def test_an_invalid_epk(world: World, sealed: SealedEnvelope, epk: Any) -> None:
    jwe = artifact_jwe(sealed.artifact)
    jwe["recipients"][0]["header"]["epk"] = epk
    world.in_.rejects(with_jwe(sealed.artifact, jwe), RejectReason.DECRYPTION_FAILED)


# -- addressed to someone else, replayed, hints that lie ---------------------------------------


def test_an_envelope_for_another_agency(world: World, bundle: Bundle) -> None:
    sealed = world.fr.seal(bundle, [world.de.party])
    world.in_.rejects(sealed.artifact, RejectReason.NOT_ADDRESSED_TO_US)


def test_an_envelope_sealed_to_a_key_of_ours_we_do_not_hold(world: World, bundle: Bundle) -> None:
    """keys/ restored from a backup older than the key the partner sealed to: ours by its clear
    text (our kid, our agency in the hints), but no key we hold opens it. It is named, and a
    pull holds it, instead of skipping it as another agency's; nothing from it is opened."""
    private, info = generate_key_pair(KeyUse.ENC, "cert-in", NOW, 365)
    newer = replace(world.in_.party, encryption_key=private)
    sealed = world.fr.seal(bundle, [newer])
    rejected = world.in_.rejects(sealed.artifact, RejectReason.SEALED_TO_UNKNOWN_KEY_OF_OURS)
    assert info.kid in rejected.detail and rejected.sender == "cert-fr"


def test_a_partner_forwarding_an_envelope_it_received(world: World, bundle: Bundle) -> None:
    """CERT-DE decrypts what CERT-FR sent it and re-encrypts the genuine, validly signed JWS to
    CERT-In. The signed recipients say CERT-DE only."""
    sealed = world.fr.seal(bundle, [world.de.party])
    forwarded = reencrypt(sealed.artifact, decrypt_jws(sealed.artifact, world.de.party), [world.in_.party])
    forwarded = with_hints(forwarded, recipients=["cert-in"], sequences={"cert-in": 1})
    rejected = world.in_.rejects(forwarded, RejectReason.NOT_ADDRESSED_TO_US)
    assert "cert-de" in rejected.detail


def test_a_replay(world: World, sealed: SealedEnvelope) -> None:
    world.in_.open(sealed.artifact)
    world.in_.rejects(sealed.artifact, RejectReason.REPLAYED)


def test_a_replay_in_a_fresh_jwe(world: World, sealed: SealedEnvelope) -> None:
    """Re-encrypting the same signed JWS changes every JWE byte but not the envelope id."""
    world.in_.open(sealed.artifact)
    again = reencrypt(sealed.artifact, decrypt_jws(sealed.artifact, world.in_.party), [world.in_.party])
    assert again["payload_bin"] != sealed.artifact["payload_bin"]
    world.in_.rejects(again, RejectReason.REPLAYED)


@pytest.mark.parametrize(
    "change",
    [
        {"envelope_id": str(uuid.uuid4())},
        {"sender": "cert-de"},
        {"recipients": ["cert-in"]},
        {"recipients": ["cert-de", "cert-in"]},
        {"recipients": ["cert-in", "cert-de", "cert-xx"]},
        {"sequences": {"cert-in": 2, "cert-de": 1}},
        {"sequences": {"cert-in": 1}},
        {"issued_at": "2026-11-23T10:04:59.999Z"},
    ],
    ids=[
        "envelope_id",
        "sender",
        "fewer-recipients",
        "recipient-order",
        "extra-recipient",
        "sequence",
        "fewer-sequences",
        "issued_at",
    ],
)
def test_outer_hints_that_disagree_with_the_signed_header(
    world: World, sealed: SealedEnvelope, change: dict[str, Any]
) -> None:
    rejected = world.in_.rejects(with_hints(sealed.artifact, **change), RejectReason.HINT_MISMATCH)
    assert next(iter(change)) in rejected.detail


@pytest.mark.parametrize("sequence", [1.0, "1", True, float("inf"), None])
def test_hint_sequences_must_be_integers(world: World, sealed: SealedEnvelope, sequence: Any) -> None:
    """Not coerced: 1.0 or "1" is not the signed 1 (and json accepts Infinity)."""
    tampered = with_hints(sealed.artifact, sequences={"cert-in": sequence, "cert-de": 1})
    world.in_.rejects(tampered, RejectReason.MALFORMED_ENVELOPE)


# -- freshness ---------------------------------------------------------------------------------


def test_issued_in_the_future(world: World, sealed: SealedEnvelope) -> None:
    """Five minutes of clock skew are allowed (the default), not more."""
    world.in_.rejects(
        sealed.artifact,
        RejectReason.ISSUED_IN_FUTURE,
        now=NOW - timedelta(minutes=5, milliseconds=1),
    )
    assert world.in_.open(sealed.artifact, now=NOW - timedelta(minutes=5))


def test_too_old(world: World, sealed: SealedEnvelope, bundle: Bundle) -> None:
    """Past the maximum age an envelope is refused, unless it is the next one on our channel:
    chained to the last one accepted, it cannot be a replay (a receiver offline for longer must
    not find its channel blocked). The age never hides where an envelope stands on the channel:
    one behind a lost envelope is held for the gap (an analyst may accept it; that does not
    lift the age limit), one from before our position is out of order."""
    second = world.fr.seal(bundle, [world.in_.party, world.de.party])  # not delivered yet
    third = world.fr.seal(bundle, [world.in_.party, world.de.party])
    later = NOW + timedelta(days=30, milliseconds=1)
    world.in_.rejects(third.artifact, RejectReason.SEQUENCE_GAP, now=later)
    world.in_.rejects(third.artifact, RejectReason.TOO_OLD, now=later, accept_gap=True)
    assert world.in_.open(sealed.artifact, now=later)  # sequence 1: the channel's first
    world.in_.rejects(third.artifact, RejectReason.TOO_OLD, now=later, accept_gap=True)  # not the next
    assert world.in_.open(third.artifact, now=NOW + timedelta(days=30), accept_gap=True)
    world.in_.rejects(second.artifact, RejectReason.SEQUENCE_REORDER, now=later)


# -- the signed header itself ------------------------------------------------------------------


def _cti(change: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], None]:
    return lambda header: change(header["cti"])


BAD_HEADERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "no-cti": lambda h: h.pop("cti"),
    "cti-not-object": lambda h: h.update(cti=["cert-fr"]),
    "no-sender": _cti(lambda c: c.pop("sender")),
    "typ": lambda h: h.update(typ="JWT"),
    "cty": lambda h: h.update(cty="application/json"),
    "crit": lambda h: h.update(crit=["cti"]),
    "version-2": _cti(lambda c: c.update(version=2)),
    "envelope-id-not-uuid": _cti(lambda c: c.update(envelope_id="1")),
    "no-kid": lambda h: h.pop("kid"),
    "no-recipients": _cti(lambda c: c.update(recipients=[], channels={})),
    "duplicate-recipients": _cti(lambda c: c.update(recipients=["cert-in", "cert-in"])),
    "issued-at-garbage": _cti(lambda c: c.update(issued_at="yesterday")),
    # Parses, but overflows when turned to UTC (it once escaped as an OverflowError traceback).
    "issued-at-overflow": _cti(lambda c: c.update(issued_at="0001-01-01T00:00:00+01:00")),
    # Would have named a trillion missing envelopes (it once ran out of memory).
    "sequence-huge": _cti(lambda c: c["channels"]["cert-in"].update(sequence=10**12, previous="A" * 43)),
    "channels-mismatch": _cti(lambda c: c["channels"].pop("cert-de")),
    "sequence-zero": _cti(lambda c: c["channels"]["cert-in"].update(sequence=0)),
    "sequence-bool": _cti(lambda c: c["channels"]["cert-in"].update(sequence=True)),
    "first-with-previous": _cti(lambda c: c["channels"]["cert-in"].update(previous="A" * 43)),
    "later-without-previous": _cti(lambda c: c["channels"]["cert-in"].update(sequence=2)),
    "bundle-id": _cti(lambda c: c.update(bundle_id="report--1")),
    "object-count-zero": _cti(lambda c: c.update(object_count=0)),
}


@pytest.mark.parametrize("change", list(BAD_HEADERS.values()), ids=list(BAD_HEADERS))
def test_a_validly_signed_but_malformed_header(
    world: World, sealed: SealedEnvelope, change: Callable[[dict[str, Any]], Any]
) -> None:
    """Signed by CERT-FR's real key (a buggy or compromised sender): still refused."""
    forged = resign(sealed, world.in_.party, world.fr.party.signing_key, [world.in_.party], change=change)
    world.in_.rejects(forged, RejectReason.BAD_HEADER)


# -- channel continuity ------------------------------------------------------------------------


def test_a_gap_names_the_missing_sequence_numbers(world: World, bundle: Bundle) -> None:
    envelopes = [world.fr.seal(bundle, [world.in_.party]) for _ in range(4)]
    world.in_.open(envelopes[0].artifact)
    rejected = world.in_.rejects(envelopes[3].artifact, RejectReason.SEQUENCE_GAP)
    assert "2, 3" in rejected.detail and "cert-fr" in rejected.detail
    # An analyst may accept the gap; it is reported, and the channel moves on to 4.
    opened = world.in_.open(envelopes[3].artifact, accept_gap=True)
    assert opened.gap_skipped == (2, 3)
    assert world.in_.inbox.channels["cert-fr"].sequence == 4


def test_a_long_gap_is_named_as_a_range(world: World, bundle: Bundle) -> None:
    world.fr.outbox.last["cert-in"] = (40, "A" * 43)  # CERT-FR sent 40 envelopes we never got
    sealed = world.fr.seal(bundle, [world.in_.party])
    rejected = world.in_.rejects(sealed.artifact, RejectReason.SEQUENCE_GAP)
    assert "1-40" in rejected.detail


def test_a_reordered_envelope(world: World, bundle: Bundle) -> None:
    """Envelope 2 arrives after 3 was accepted (with its gap): it is not silently merged."""
    first, second, third = (world.fr.seal(bundle, [world.in_.party]) for _ in range(3))
    world.in_.open(first.artifact)
    world.in_.open(third.artifact, accept_gap=True)
    world.in_.rejects(second.artifact, RejectReason.SEQUENCE_REORDER)


def test_a_forked_channel_is_a_chain_mismatch(world: World, bundle: Bundle) -> None:
    """Two different envelopes claim sequence 1 (a sender restored from backup, or one showing
    each partner a different history); the next one names the one CERT-In never accepted."""
    saved = dict(world.fr.outbox.last)
    accepted = world.fr.seal(bundle, [world.in_.party])
    world.fr.outbox.last = saved
    world.fr.seal(bundle, [world.in_.party])  # the other sequence 1
    successor = world.fr.seal(bundle, [world.in_.party])  # sequence 2, previous = the other
    world.in_.open(accepted.artifact)
    world.in_.rejects(successor.artifact, RejectReason.CHAIN_MISMATCH)


def test_the_chain_links_each_envelope_to_the_last(world: World, bundle: Bundle) -> None:
    envelopes = [world.fr.seal(bundle, [world.in_.party]) for _ in range(3)]
    for index, sealed in enumerate(envelopes):
        opened = world.in_.open(sealed.artifact)
        assert opened.channel is not None and opened.channel.sequence == index + 1
        assert opened.channel.previous == (envelopes[index - 1].digest if index else None)
        assert opened.digest == sealed.digest


# -- the payload ---------------------------------------------------------------------------------


def test_a_bundle_id_other_than_the_signed_one(world: World, bundle: Bundle) -> None:
    sealed = world.fr.seal(bundle, [world.in_.party], bundle_id=f"bundle--{uuid.uuid4()}")
    world.in_.rejects(sealed.artifact, RejectReason.BUNDLE_MISMATCH)


def test_an_object_count_other_than_the_signed_one(world: World, bundle: Bundle) -> None:
    sealed = world.fr.seal(bundle, [world.in_.party], object_count=bundle.count + 1)
    rejected = world.in_.rejects(sealed.artifact, RejectReason.BUNDLE_MISMATCH)
    assert str(bundle.count) in rejected.detail


@pytest.mark.parametrize(
    "objects",
    [
        [{k: v for k, v in indicator("198.51.100.1").items() if k != "pattern"}],
        [indicator("198.51.100.1") | {"confidence": 101}],
        [indicator("198.51.100.1") | {"id": "malware--0b6f0d4e-6c1a-4a59-9a8e-2f1d3c4b5a69"}],
        [indicator("198.51.100.1") | {"spec_version": "2.0"}],
        ["not an object"],
    ],
    ids=["no-pattern", "confidence-101", "id-of-another-type", "spec-2.0", "string"],
)
def test_invalid_stix_in_a_validly_signed_bundle(world: World, objects: list[Any]) -> None:
    bad = make_bundle(objects)
    sealed = world.fr.seal(bad, [world.in_.party])
    world.in_.rejects(sealed.artifact, RejectReason.INVALID_STIX)


@pytest.mark.parametrize(
    "payload",
    [
        b'{"type":"bundle","id":"bundle--1","objects":[',
        b"\xff\xfe",
        b"[]",
        b'{"type":"report"}',
        b"[" * 100_000,
    ],
    ids=["truncated-json", "not-utf8", "array", "not-a-bundle", "nested-too-deep"],
)
def test_a_signed_payload_that_is_not_a_bundle(world: World, sealed: SealedEnvelope, payload: bytes) -> None:
    forged = resign(sealed, world.in_.party, world.fr.party.signing_key, [world.in_.party], payload=payload)
    world.in_.rejects(forged, RejectReason.INVALID_STIX)


# -- sizes: oversized payload, decompression bomb -------------------------------------------------


def test_an_oversized_payload(world: World) -> None:
    """3,000 indicators with random descriptions (they do not compress away), over 256 KiB."""
    big = make_bundle(
        [
            indicator(f"10.0.{i // 256}.{i % 256}", seed=i) | {"description": os.urandom(32).hex()}
            for i in range(3_000)
        ]
    )
    sealed = world.fr.seal(big, [world.in_.party])
    assert len(sealed.artifact["payload_bin"]) > 256 * 1024 * 4 // 3
    world.in_.rejects(sealed.artifact, RejectReason.OVERSIZED_ENVELOPE, max_envelope_bytes=256 * 1024)


def test_an_oversized_payload_is_refused_before_it_is_decoded(world: World, sealed: SealedEnvelope) -> None:
    """Not even valid base64: the size is the first thing checked, so it costs nothing."""
    huge = dict(sealed.artifact, payload_bin="!" * (4 * 1024 * 1024))
    world.in_.rejects(huge, RejectReason.OVERSIZED_ENVELOPE, max_envelope_bytes=1024 * 1024)


def test_an_uncompressed_plaintext_over_the_limit(world: World, sealed: SealedEnvelope) -> None:
    jws = decrypt_jws(sealed.artifact, world.in_.party)
    cek = os.urandom(32)
    protected = {"enc": "A256GCM", "cty": "cti-envelope+jws"}  # zip is optional in the profile
    jwe = jwe_by_hand(jws, [honest_entry(world.in_.party, cek)], cek, protected)
    world.in_.rejects(
        with_jwe(sealed.artifact, jwe),
        RejectReason.DECOMPRESSION_LIMIT,
        max_plaintext_bytes=len(jws) - 1,
    )
    assert world.in_.open(with_jwe(sealed.artifact, jwe), max_plaintext_bytes=len(jws))


MiB = 1024 * 1024
BOMB_MIB = 1024  # 1 GiB once inflated


def deflate_bomb(mib: int = BOMB_MIB) -> bytes:
    """Raw DEFLATE of `mib` MiB of zeros, ~1 KiB per MiB, built without ever holding the
    inflated data: one MiB is compressed once, ending on a full flush (byte-aligned, no
    back-references across it), repeated, then closed with an empty final block."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = compressor.compress(bytes(MiB)) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert zlib.decompressobj(-zlib.MAX_WBITS).decompress(block + b"\x03\x00") == bytes(MiB)
    return block * mib + b"\x03\x00"


def bomb_envelope(world: World, sealed: SealedEnvelope) -> dict[str, Any]:
    cek = os.urandom(32)
    jwe = jwe_by_hand(deflate_bomb(), [honest_entry(world.in_.party, cek)], cek)
    return with_jwe(sealed.artifact, jwe)


def test_a_decompression_bomb_stops_at_the_limit(world: World, sealed: SealedEnvelope) -> None:
    """1 GiB of zeros in ~1 MiB of ciphertext, properly encrypted to CERT-In. With an 8 MiB
    plaintext limit, opening it allocates about the limit, never the gigabyte."""
    bomb = bomb_envelope(world, sealed)
    assert len(bomb["payload_bin"]) < 2 * MiB
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        baseline, _ = tracemalloc.get_traced_memory()
        world.in_.rejects(bomb, RejectReason.DECOMPRESSION_LIMIT, max_plaintext_bytes=8 * MiB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - baseline < 32 * MiB, f"opening the bomb allocated {(peak - baseline) // MiB} MiB"


def test_a_decompression_bomb_does_not_grow_the_process(tmp_path: Path) -> None:
    """The same, measured by the operating system in a fresh process with a 64 MiB limit. The
    resident set grows by up to about twice the limit (CPython's zlib joins its output blocks
    into one bytes object at the end), never by the 1 GiB the bomb inflates to."""
    script = textwrap.dedent(
        """
        import json, resource
        from tests.envelope.conftest import make_world, make_bundle
        from tests.envelope.test_attacks import bomb_envelope
        from cti_exchange.envelope.reasons import EnvelopeRejected

        world = make_world()
        sealed = world.fr.seal(make_bundle(), [world.in_.party])
        bomb = bomb_envelope(world, sealed)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            world.in_.open(bomb, max_plaintext_bytes=64 * 1024 * 1024)
            reason = None
        except EnvelopeRejected as rejected:
            reason = rejected.reason.value
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({"reason": reason, "grew_kib": after - before}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["reason"] == "decompression-limit"
    assert result["grew_kib"] < 160 * 1024, f"grew by {result['grew_kib'] // 1024} MiB"


# -- truncation ------------------------------------------------------------------------------


def test_a_truncated_payload_bin(world: World, sealed: SealedEnvelope) -> None:
    payload_bin = sealed.artifact["payload_bin"]
    for cut in (len(payload_bin) // 2, len(payload_bin) - 4, 8):
        truncated = dict(sealed.artifact, payload_bin=payload_bin[:cut])
        world.in_.rejects(truncated, RejectReason.MALFORMED_ENVELOPE)


def test_a_truncated_jwe_json(world: World, sealed: SealedEnvelope) -> None:
    raw = json.dumps(artifact_jwe(sealed.artifact)).encode()
    for cut in (len(raw) - 1, len(raw) // 2, 1):
        world.in_.rejects(with_jwe(sealed.artifact, raw[:cut]), RejectReason.MALFORMED_ENVELOPE)


def test_a_truncated_ciphertext(world: World, sealed: SealedEnvelope) -> None:
    jwe = artifact_jwe(sealed.artifact)
    ciphertext = b64url_decode(jwe["ciphertext"], what="ciphertext")
    jwe["ciphertext"] = b64(ciphertext[:-6]).decode()
    world.in_.rejects(with_jwe(sealed.artifact, jwe), RejectReason.DECRYPTION_FAILED)


def test_a_truncated_deflate_stream(world: World, sealed: SealedEnvelope) -> None:
    """Properly encrypted, but the compressed JWS stops half way."""
    jws = decrypt_jws(sealed.artifact, world.in_.party)
    cek = os.urandom(32)
    content = deflate(jws)
    jwe = jwe_by_hand(content[: len(content) // 2], [honest_entry(world.in_.party, cek)], cek)
    world.in_.rejects(with_jwe(sealed.artifact, jwe), RejectReason.MALFORMED_ENVELOPE)


@pytest.mark.parametrize(
    ("keep", "reason"),
    [
        (lambda jws: jws[: jws.index(b".") + 10], RejectReason.MALFORMED_SIGNATURE),
        (lambda jws: jws[: jws.rindex(b".") + 1], RejectReason.BAD_SIGNATURE),
        (lambda jws: jws[:-10], RejectReason.BAD_SIGNATURE),
        (lambda jws: jws[:30], RejectReason.MALFORMED_SIGNATURE),
        (lambda jws: b"", RejectReason.MALFORMED_SIGNATURE),
    ],
    ids=["in-payload", "no-signature", "in-signature", "in-header", "empty"],
)
def test_a_truncated_jws(
    world: World, sealed: SealedEnvelope, keep: Callable[[bytes], bytes], reason: RejectReason
) -> None:
    jws = decrypt_jws(sealed.artifact, world.in_.party)
    world.in_.rejects(reencrypt(sealed.artifact, keep(jws), [world.in_.party]), reason)


# -- malformed containers (what a broken relay or a fuzzer sends) ----------------------------


@pytest.mark.parametrize(
    "change",
    [
        lambda a: a.update(type="indicator"),
        lambda a: a.update(mime_type="application/json"),
        lambda a: a.pop("extensions"),
        lambda a: a.pop("payload_bin"),
        lambda a: a.update(payload_bin=12345),
        lambda a: a.update(hashes={"SHA-256": "00" * 32}),
        lambda a: a.pop("hashes"),
        lambda a: a.update(hashes={"SHA-512": "00" * 64}),
        lambda a: a["extensions"].update({next(iter(a["extensions"])): "hints"}),
    ],
    ids=[
        "not-artifact",
        "mime-type",
        "no-extension",
        "no-payload",
        "payload-not-string",
        "hash-mismatch",
        "no-hashes",
        "no-sha256",
        "hints-not-object",
    ],
)
def test_a_malformed_artifact(
    world: World, sealed: SealedEnvelope, change: Callable[[dict[str, Any]], Any]
) -> None:
    artifact = json.loads(json.dumps(sealed.artifact))
    change(artifact)
    world.in_.rejects(artifact, RejectReason.MALFORMED_ENVELOPE)


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("iv", 10**12),  # bytes(10**12) would try to allocate a terabyte
        ("tag", [1, 2, 3]),
        ("protected", {"enc": "A256GCM"}),
        ("protected", "[" * 100_000),
        ("recipients", {"header": {}}),
        ("recipients", [{"header": {"kid": ["unhashable"]}}]),
        ("recipients", ["entry"]),
        ("ciphertext", None),
    ],
    ids=[
        "iv-number",
        "tag-list",
        "protected-object",
        "protected-deep",
        "recipients-object",
        "kid-list",
        "entry-string",
        "ciphertext-null",
    ],
)
def test_a_malformed_jwe_member(world: World, sealed: SealedEnvelope, member: str, value: Any) -> None:
    jwe = artifact_jwe(sealed.artifact)
    if member == "protected" and isinstance(value, str):
        value = b64(value.encode()).decode()
    jwe[member] = value
    with_value = with_jwe(sealed.artifact, jwe)
    expected = (
        RejectReason.NOT_ADDRESSED_TO_US
        if member == "recipients" and "unhashable" in str(value)
        else RejectReason.MALFORMED_ENVELOPE
    )
    world.in_.rejects(with_value, expected)


def test_a_jwe_nested_too_deep_for_the_json_parser(world: World, sealed: SealedEnvelope) -> None:
    world.in_.rejects(
        with_jwe(sealed.artifact, b"[" * 100_000 + b"]" * 100_000), RejectReason.MALFORMED_ENVELOPE
    )


def test_a_jws_header_nested_too_deep(world: World, sealed: SealedEnvelope) -> None:
    deep = b64(b"[" * 100_000) + b"." + b64(b"{}") + b"." + b64(bytes(64))
    world.in_.rejects(reencrypt(sealed.artifact, deep, [world.in_.party]), RejectReason.MALFORMED_SIGNATURE)


def test_a_rejection_names_what_was_trusted(world: World, sealed: SealedEnvelope) -> None:
    """Before the signature is verified only the hints are known; they go into the rejection
    (for the quarantine record), and opening never alters the artifact it keeps."""
    jwe = artifact_jwe(sealed.artifact)
    flip_jwe_part(jwe, "tag")
    tampered = with_jwe(sealed.artifact, jwe)
    before = json.dumps(tampered)
    rejected = world.in_.rejects(tampered, RejectReason.DECRYPTION_FAILED)
    assert rejected.envelope_id == sealed.header.envelope_id
    assert rejected.sender == "cert-fr"
    assert json.dumps(tampered) == before


def test_every_reject_reason_is_shown_by_an_attack_here() -> None:
    """A reason added to reasons.py without an attack test here fails this."""
    source = Path(__file__).read_text()
    missing = [r.name for r in RejectReason if f"RejectReason.{r.name}" not in source]
    assert not missing, f"no attack test rejects with {missing}"


def test_a_gap_too_large_to_be_lost_envelopes_is_never_accepted(world: World, sealed: SealedEnvelope) -> None:
    def far_ahead(header: dict[str, Any]) -> None:
        header["cti"]["channels"]["cert-in"].update(sequence=20_002, previous="A" * 43)

    forged = resign(sealed, world.in_.party, world.fr.party.signing_key, [world.in_.party], change=far_ahead)
    forged = with_hints(forged, sequences={"cert-in": 20_002, "cert-de": 1})
    rejected = world.in_.rejects(forged, RejectReason.SEQUENCE_GAP, accept_gap=True)
    assert "missing sequence numbers 1-20001" in str(rejected) and "cannot be accepted" in str(rejected)


# -- objects dated after their envelope -------------------------------------------------------


def test_an_object_dated_after_its_envelope_was_issued_is_refused(world: World) -> None:
    """Indicator ids are predictable (uuidv5); a version dated ahead would stay current against
    every real version of the id to come."""
    ahead = stix_timestamp(NOW + timedelta(days=365))
    obj = {**_dated("198.51.100.1", NOW - timedelta(days=1)), "modified": ahead}
    sealed = world.de.seal(make_bundle([obj]), [world.in_.party])
    rejected = world.in_.rejects(sealed.artifact, RejectReason.INVALID_STIX)
    assert (
        rejected.detail.startswith(f"{obj['id']}: ") and f"{ahead} is after the envelope" in rejected.detail
    )


def test_an_object_dated_within_the_clock_skew_of_its_envelope_opens(world: World) -> None:
    obj = _dated("198.51.100.1", NOW + timedelta(minutes=4))
    sealed = world.fr.seal(make_bundle([obj]), [world.in_.party])
    assert world.in_.open(sealed.artifact).bundle["objects"][0]["modified"] == obj["modified"]


@pytest.mark.parametrize("where", ["protected", "unprotected", "recipient"])
def test_a_jwe_naming_critical_extensions_is_refused(
    world: World, sealed: SealedEnvelope, where: str
) -> None:
    """RFC 7516 section 4.1.13: critical extensions a recipient does not understand must be
    refused; this profile defines none."""
    jws = decrypt_jws(sealed.artifact, world.in_.party)
    if where == "protected":
        crafted = reencrypt(
            sealed.artifact, jws, [world.in_.party], protected={**PROTECTED, "crit": ["x-new"], "x-new": 1}
        )
    else:
        jwe = artifact_jwe(reencrypt(sealed.artifact, jws, [world.in_.party]))
        if where == "unprotected":
            jwe["unprotected"] = {"crit": ["x-new"]}
        else:
            jwe["recipients"][0]["header"]["crit"] = ["x-new"]
        crafted = with_jwe(sealed.artifact, jwe)
    rejected = world.in_.rejects(crafted, RejectReason.UNSUPPORTED_ALGORITHM)
    assert "crit" in rejected.detail


def test_an_envelope_wrapped_for_a_key_we_revoked_is_not_opened_with_it(
    world: World, sealed: SealedEnvelope
) -> None:
    """Whoever holds our revoked (compromised) encryption key can read what is wrapped for it,
    so nothing wrapped for it is accepted: it is named, not skipped as another agency's."""
    from .test_readdress import with_new_encryption_key

    old = world.in_.party
    world.in_.party = with_new_encryption_key(old)
    rejected = world.in_.rejects(sealed.artifact, RejectReason.ENCRYPTED_TO_REVOKED_KEY)
    assert old.encryption_kid in rejected.detail and rejected.sender == "cert-fr"
