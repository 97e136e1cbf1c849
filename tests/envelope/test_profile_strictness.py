"""The receiver reads a JOSE envelope exactly as docs/ENVELOPE.md writes it, and nothing else.

Each test forges what an attacker (or a careless implementation) could send with real keys and
real cryptography: a JSON member given twice (Python's json keeps the last, other parsers the
first: `{"alg":"none",...,"alg":"EdDSA"}` reads differently to different tools), a header
parameter where the profile puts none (`aad`, a shared `unprotected` header, `enc` or `jku`
in a recipient's header, `jwk` in the signed header), sizes no sender produces, and an envelope
another implementation could write in good faith (`issued_at` without milliseconds).
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from jwcrypto import jwk
from jwcrypto.jwa import JWA

from cti_exchange.envelope import header as envelope_header
from cti_exchange.envelope import jose_framing
from cti_exchange.envelope.jose_framing import (
    CONTENT_ENCRYPTION,
    b64url_encode,
    jwe_encrypt_general,
    jws_payload,
    jws_sign_compact,
)
from cti_exchange.envelope.reasons import RejectReason
from cti_exchange.envelope.seal import SealedEnvelope
from cti_exchange.stix.tlp import Tlp

from .conftest import (
    PROTECTED,
    Bundle,
    World,
    artifact_jwe,
    artifact_jwe_bytes,
    decrypt_jws,
    deflate,
    honest_entry,
    indicator,
    jwe_by_hand,
    jws_header,
    make_bundle,
    reencrypt,
    with_hints,
    with_jwe,
)

# The limits docs/ENVELOPE.md documents (section 5).
MAX_RECIPIENTS = 256
MAX_PROTECTED_HEADER_BYTES = 64 * 1024


def test_the_documented_limits_are_the_code_s() -> None:
    assert envelope_header.MAX_RECIPIENTS == MAX_RECIPIENTS
    assert jose_framing.MAX_PROTECTED_HEADER_BYTES == MAX_PROTECTED_HEADER_BYTES


@pytest.fixture
def sealed(world: World, bundle: Bundle) -> SealedEnvelope:
    """A genuine envelope from CERT-FR to CERT-In and CERT-DE (and CERT-FR's own copy)."""
    return world.fr.seal(bundle, [world.in_.party, world.de.party])


def compact(header_json: bytes, payload: bytes, signing_key: dict[str, Any]) -> bytes:
    """A JWS over header bytes exactly as given (json.dumps could not write a duplicate)."""
    signing_input = b64url_encode(header_json) + b"." + b64url_encode(payload)
    signature = JWA.signing_alg("EdDSA").sign(jwk.JWK(**signing_key), signing_input)
    return signing_input + b"." + b64url_encode(signature)


def header_json(header: dict[str, Any]) -> str:
    return json.dumps(header, separators=(",", ":"))


def signed_as_is(world: World, sealed: SealedEnvelope, text: str) -> dict[str, Any]:
    """The sealed envelope's payload, signed by its real sender under header text `text`, and
    encrypted to CERT-In: everything genuine but the header's JSON."""
    jws = decrypt_jws(sealed.artifact, world.in_.party)
    payload = jws_payload(jws.rsplit(b".", 1)[0])
    forged = compact(text.encode(), payload, world.fr.party.signing_key)
    return reencrypt(sealed.artifact, forged, [world.in_.party, world.fr.party])


def jwe_with_protected_text(world: World, sealed: SealedEnvelope, text: bytes) -> dict[str, Any]:
    """A JWE whose protected header is `text` exactly, correctly encrypted to CERT-In."""
    cek = os.urandom(32)
    jws = decrypt_jws(sealed.artifact, world.in_.party)
    protected_b64 = b64url_encode(text)
    iv, ciphertext, tag = JWA.encryption_alg(CONTENT_ENCRYPTION).encrypt(cek, protected_b64, deflate(jws))
    return {
        "protected": protected_b64.decode(),
        "recipients": [honest_entry(world.in_.party, cek)],
        "iv": b64url_encode(iv).decode(),
        "ciphertext": b64url_encode(ciphertext).decode(),
        "tag": b64url_encode(tag).decode(),
    }


def test_the_jws_helper_makes_an_envelope_that_opens(world: World, sealed: SealedEnvelope) -> None:
    """So each forgery below is refused for the one thing it changes."""
    text = header_json(jws_header(decrypt_jws(sealed.artifact, world.in_.party)))
    world.in_.open(signed_as_is(world, sealed, text))


def test_the_jwe_helper_makes_an_envelope_that_opens(world: World, sealed: SealedEnvelope) -> None:
    protected = json.dumps(PROTECTED, separators=(",", ":")).encode()
    world.in_.open(with_jwe(sealed.artifact, jwe_with_protected_text(world, sealed, protected)))


# -- 1. a member given twice ------------------------------------------------------------------


def test_a_jws_header_giving_alg_twice_none_first(world: World, sealed: SealedEnvelope) -> None:
    """Read last-wins it is EdDSA and verifies; read first-wins it is alg none."""
    text = header_json(jws_header(decrypt_jws(sealed.artifact, world.in_.party)))
    forged = signed_as_is(world, sealed, '{"alg":"none",' + text[1:])
    rejected = world.in_.rejects(forged, RejectReason.MALFORMED_SIGNATURE)
    assert "'alg' twice" in rejected.detail


def test_a_jws_header_giving_cti_twice(world: World, sealed: SealedEnvelope) -> None:
    """The first `cti` names CERT-DE only: a first-wins reader would file it for another agency."""
    header = jws_header(decrypt_jws(sealed.artifact, world.in_.party))
    other = dict(
        header["cti"], recipients=["cert-de"], channels={"cert-de": {"sequence": 1, "previous": None}}
    )
    text = header_json(header)
    text = text.replace('"cti":', '"cti":' + json.dumps(other, separators=(",", ":")) + ',"cti":', 1)
    rejected = world.in_.rejects(signed_as_is(world, sealed, text), RejectReason.MALFORMED_SIGNATURE)
    assert "'cti' twice" in rejected.detail


def test_a_member_twice_inside_cti(world: World, sealed: SealedEnvelope) -> None:
    text = header_json(jws_header(decrypt_jws(sealed.artifact, world.in_.party)))
    text = text.replace('"sender":', '"sender":"cert-de","sender":', 1)
    rejected = world.in_.rejects(signed_as_is(world, sealed, text), RejectReason.MALFORMED_SIGNATURE)
    assert "'sender' twice" in rejected.detail


@pytest.mark.parametrize(
    "protected",
    [
        b'{"enc":"A128GCM","enc":"A256GCM","zip":"DEF","cty":"cti-envelope+jws"}',
        b'{"enc":"A256GCM","zip":"DEF","zip":null,"cty":"cti-envelope+jws"}',
    ],
    ids=["enc-twice", "zip-twice"],
)
def test_a_jwe_protected_header_giving_a_member_twice(
    world: World, sealed: SealedEnvelope, protected: bytes
) -> None:
    jwe = jwe_with_protected_text(world, sealed, protected)
    rejected = world.in_.rejects(with_jwe(sealed.artifact, jwe), RejectReason.MALFORMED_ENVELOPE)
    assert "twice" in rejected.detail


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('"alg":"ECDH-ES+A256KW"', '"alg":"dir","alg":"ECDH-ES+A256KW"'),
        ('"ciphertext":', '"ciphertext":"AAAA","ciphertext":'),
        ('"protected":', '"protected":"e30","protected":'),
    ],
    ids=["recipient-alg", "ciphertext", "protected"],
)
def test_the_jwe_json_giving_a_member_twice(world: World, sealed: SealedEnvelope, old: str, new: str) -> None:
    text = artifact_jwe_bytes(sealed.artifact).decode()
    assert old in text
    forged = with_jwe(sealed.artifact, text.replace(old, new, 1).encode())
    rejected = world.in_.rejects(forged, RejectReason.MALFORMED_ENVELOPE)
    assert "twice" in rejected.detail


def bundle_text_with(objects: list[dict[str, Any]], old: str, new: str) -> Bundle:
    made = make_bundle(objects)
    text = made.data.decode()
    assert old in text
    return Bundle(text.replace(old, new, 1).encode(), made.id, made.count)


def test_a_bundle_giving_object_marking_refs_twice_red_then_clear(world: World) -> None:
    """orjson keeps the last: the object was stored as TLP:CLEAR though the bytes also say RED."""
    forged = bundle_text_with(
        [indicator("198.51.100.80", tlp=Tlp.CLEAR)],
        '"object_marking_refs"',
        f'"object_marking_refs": ["{Tlp.RED.marking_id}"], "object_marking_refs"',
    )
    sealed = world.fr.seal(forged, [world.in_.party])
    rejected = world.in_.rejects(sealed.artifact, RejectReason.INVALID_STIX)
    assert "'object_marking_refs' twice" in rejected.detail


def test_a_bundle_giving_objects_twice(world: World) -> None:
    made = make_bundle([indicator("198.51.100.81")])
    text = made.data.decode()
    forged = Bundle(text.replace('"objects": [', '"objects": [], "objects": [', 1).encode(), made.id, 1)
    rejected = world.in_.rejects(world.fr.seal(forged, [world.in_.party]).artifact, RejectReason.INVALID_STIX)
    assert "'objects' twice" in rejected.detail


def test_a_duplicate_nested_deep_in_an_object(world: World) -> None:
    obj = indicator("198.51.100.82")
    obj["external_references"] = [{"source_name": "cert-fr", "url": "https://cert.example/a"}]
    forged = bundle_text_with([obj], '"url":', '"url": "https://evil.example/", "url":')
    rejected = world.in_.rejects(world.fr.seal(forged, [world.in_.party]).artifact, RejectReason.INVALID_STIX)
    assert "'url' twice" in rejected.detail


# -- 2. the JWE profile, exactly --------------------------------------------------------------


def test_an_aad_member(world: World, sealed: SealedEnvelope) -> None:
    """RFC 7516 would put it in the AAD; the profile never writes one."""
    jwe = artifact_jwe(sealed.artifact)
    jwe["aad"] = "AAAA"
    rejected = world.in_.rejects(with_jwe(sealed.artifact, jwe), RejectReason.MALFORMED_ENVELOPE)
    assert "'aad'" in rejected.detail


@pytest.mark.parametrize(
    "unprotected",
    [{"enc": "A128GCM"}, {"jku": "https://evil.example/keys"}, {"zip": "DEF"}, {"cty": "JWE"}, {}],
    ids=["enc", "jku", "zip", "cty", "empty"],
)
def test_a_shared_unprotected_header(
    world: World, sealed: SealedEnvelope, unprotected: dict[str, Any]
) -> None:
    jwe = artifact_jwe(sealed.artifact)
    jwe["unprotected"] = unprotected
    rejected = world.in_.rejects(with_jwe(sealed.artifact, jwe), RejectReason.MALFORMED_ENVELOPE)
    assert "'unprotected'" in rejected.detail


def test_flattened_members_beside_recipients(world: World, sealed: SealedEnvelope) -> None:
    jwe = artifact_jwe(sealed.artifact)
    jwe["header"] = {"alg": "ECDH-ES+A256KW", "kid": world.in_.party.encryption_kid}
    world.in_.rejects(with_jwe(sealed.artifact, jwe), RejectReason.MALFORMED_ENVELOPE)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("enc", "A128GCM"),
        ("zip", "DEF"),
        ("cty", "JWE"),
        ("jku", "https://evil.example/keys"),
        ("jwk", {"kty": "OKP", "crv": "X25519", "x": "AAAA"}),
        ("x5u", "https://evil.example/cert"),
        ("x5c", ["AAAA"]),
        ("apu", "QUFB"),
    ],
)
@pytest.mark.parametrize("whose", ["ours", "another"])
def test_a_recipient_header_beyond_alg_kid_epk(
    world: World, sealed: SealedEnvelope, name: str, value: Any, whose: str
) -> None:
    jwe = artifact_jwe(sealed.artifact)
    ours = world.in_.party.encryption_kid
    entry = next(e for e in jwe["recipients"] if (e["header"]["kid"] == ours) == (whose == "ours"))
    entry["header"][name] = value
    rejected = world.in_.rejects(with_jwe(sealed.artifact, jwe), RejectReason.MALFORMED_ENVELOPE)
    assert f"carries {name}" in rejected.detail


@pytest.mark.parametrize(
    "protected",
    [
        {"enc": "A256GCM", "zip": "DEF"},
        {"enc": "A256GCM", "zip": "DEF", "cty": "JWE"},
        {"enc": "A256GCM", "zip": "DEF", "cty": "application/stix+json;version=2.1"},
        {"enc": "A256GCM", "zip": "DEF", "cty": "cti-envelope+jws", "jku": "https://evil.example/k"},
        {"enc": "A256GCM", "zip": "DEF", "cty": "cti-envelope+jws", "kid": "cert-in-enc-1"},
        {"enc": "A256GCM", "zip": "DEF", "cty": "cti-envelope+jws", "x5c": ["AAAA"]},
    ],
    ids=["no-cty", "cty-JWE", "cty-stix", "jku", "kid", "x5c"],
)
def test_an_authentic_protected_header_beyond_the_profile(
    world: World, sealed: SealedEnvelope, protected: dict[str, Any]
) -> None:
    """Encrypted correctly to CERT-In, so the header is authentic: refused for what it says."""
    cek = os.urandom(32)
    jws = decrypt_jws(sealed.artifact, world.in_.party)
    jwe = jwe_by_hand(deflate(jws), [honest_entry(world.in_.party, cek)], cek, protected)
    rejected = world.in_.rejects(with_jwe(sealed.artifact, jwe), RejectReason.MALFORMED_ENVELOPE)
    assert "cty" in rejected.detail or "carries" in rejected.detail


@pytest.mark.parametrize("name", ["jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256"])
def test_a_jws_header_carrying_a_key_or_certificate(world: World, sealed: SealedEnvelope, name: str) -> None:
    """Signed by the real sender: we verify with its pinned key anyway, but refuse to ignore it."""
    jws = decrypt_jws(sealed.artifact, world.in_.party)
    header = jws_header(jws)
    header[name] = dict(world.fr.party.public_signing_key) if name == "jwk" else "https://evil.example/"
    forged = jws_sign_compact(header, jws_payload(jws.rsplit(b".", 1)[0]), world.fr.party.signing_key)
    rejected = world.in_.rejects(
        reencrypt(sealed.artifact, forged, [world.in_.party]), RejectReason.BAD_HEADER
    )
    assert name in rejected.detail


def test_more_recipient_entries_than_the_limit(world: World, sealed: SealedEnvelope) -> None:
    jwe = artifact_jwe(sealed.artifact)
    other = next(e for e in jwe["recipients"] if e["header"]["kid"] != world.in_.party.encryption_kid)
    jwe["recipients"] = [other] * MAX_RECIPIENTS + jwe["recipients"]
    rejected = world.in_.rejects(with_jwe(sealed.artifact, jwe), RejectReason.MALFORMED_ENVELOPE)
    assert f"1 to {MAX_RECIPIENTS}" in rejected.detail


def test_the_limit_of_recipient_entries_still_opens(world: World, sealed: SealedEnvelope) -> None:
    jwe = artifact_jwe(sealed.artifact)
    other = next(e for e in jwe["recipients"] if e["header"]["kid"] != world.in_.party.encryption_kid)
    jwe["recipients"] += [other] * (MAX_RECIPIENTS - len(jwe["recipients"]))
    world.in_.open(with_jwe(sealed.artifact, jwe))


def test_a_sender_never_seals_more_than_the_limit(world: World) -> None:
    keys = [world.in_.party.public_encryption_key] * (MAX_RECIPIENTS + 1)
    with pytest.raises(ValueError, match=f"1 to {MAX_RECIPIENTS}"):
        jwe_encrypt_general(b"x", PROTECTED, keys)


def test_more_signed_recipients_than_the_limit(world: World, sealed: SealedEnvelope) -> None:
    jws = decrypt_jws(sealed.artifact, world.in_.party)
    header = jws_header(jws)
    extra = [f"cert-x{i}" for i in range(MAX_RECIPIENTS)]
    header["cti"]["recipients"] += extra
    header["cti"]["channels"].update({r: {"sequence": 1, "previous": None} for r in extra})
    forged = jws_sign_compact(header, jws_payload(jws.rsplit(b".", 1)[0]), world.fr.party.signing_key)
    rejected = world.in_.rejects(
        reencrypt(sealed.artifact, forged, [world.in_.party]), RejectReason.BAD_HEADER
    )
    assert f"at most {MAX_RECIPIENTS - 1}" in rejected.detail


def test_a_jws_header_over_the_size_limit(world: World, sealed: SealedEnvelope) -> None:
    """Refused before it is decoded or parsed (the walkthrough's had 50 MB)."""
    jws = decrypt_jws(sealed.artifact, world.in_.party)
    header = jws_header(jws)
    header["junk"] = "A" * MAX_PROTECTED_HEADER_BYTES
    forged = jws_sign_compact(header, jws_payload(jws.rsplit(b".", 1)[0]), world.fr.party.signing_key)
    rejected = world.in_.rejects(
        reencrypt(sealed.artifact, forged, [world.in_.party]), RejectReason.MALFORMED_SIGNATURE
    )
    assert f"{MAX_PROTECTED_HEADER_BYTES}-byte limit" in rejected.detail


def test_a_jwe_protected_header_over_the_size_limit(world: World, sealed: SealedEnvelope) -> None:
    protected = dict(PROTECTED, junk="A" * MAX_PROTECTED_HEADER_BYTES)
    jwe = jwe_encrypt_general(
        decrypt_jws(sealed.artifact, world.in_.party), protected, [world.in_.party.public_encryption_key]
    )
    rejected = world.in_.rejects(with_jwe(sealed.artifact, jwe), RejectReason.MALFORMED_ENVELOPE)
    assert f"{MAX_PROTECTED_HEADER_BYTES}-byte limit" in rejected.detail


# -- 3. messages and another implementation's spelling ----------------------------------------


def test_alg_in_the_jwe_protected_header_says_why(world: World, sealed: SealedEnvelope) -> None:
    """It read "JWE alg 'ECDH-ES+A256KW' is not ECDH-ES+A256KW" (the recipient's alg, correct,
    quoted for the protected one)."""
    cek = os.urandom(32)
    jws = decrypt_jws(sealed.artifact, world.in_.party)
    protected = dict(PROTECTED, alg="ECDH-ES+A256KW")
    jwe = jwe_by_hand(deflate(jws), [honest_entry(world.in_.party, cek)], cek, protected)
    rejected = world.in_.rejects(with_jwe(sealed.artifact, jwe), RejectReason.UNSUPPORTED_ALGORITHM)
    assert "'ECDH-ES+A256KW' is not ECDH-ES+A256KW" not in rejected.detail
    assert "protected header names alg" in rejected.detail


@pytest.mark.parametrize(
    "spelling", ["2026-11-23T10:05:00Z", "2026-11-23T10:05:00.000000Z", "2026-11-23T10:05:00.0Z"]
)
def test_issued_at_spelled_otherwise_in_both_places_opens(
    world: World, sealed: SealedEnvelope, spelling: str
) -> None:
    """Another implementation writes the same time in the signed header and the hints."""
    jws = decrypt_jws(sealed.artifact, world.in_.party)
    header = jws_header(jws)
    header["cti"]["issued_at"] = spelling
    forged = jws_sign_compact(header, jws_payload(jws.rsplit(b".", 1)[0]), world.fr.party.signing_key)
    artifact = with_hints(reencrypt(sealed.artifact, forged, [world.in_.party]), issued_at=spelling)
    world.in_.open(artifact)


def test_issued_at_hint_of_another_time_is_still_a_mismatch(world: World, sealed: SealedEnvelope) -> None:
    jws = decrypt_jws(sealed.artifact, world.in_.party)
    header = jws_header(jws)
    header["cti"]["issued_at"] = "2026-11-23T10:05:00Z"
    forged = jws_sign_compact(header, jws_payload(jws.rsplit(b".", 1)[0]), world.fr.party.signing_key)
    for hint in ("2026-11-23T10:05:01Z", "2026-11-23T10:04:00.000Z", "not a time", 1700000000):
        artifact = with_hints(reencrypt(sealed.artifact, forged, [world.in_.party]), issued_at=hint)
        rejected = world.in_.rejects(artifact, RejectReason.HINT_MISMATCH)
        assert "issued_at" in rejected.detail
