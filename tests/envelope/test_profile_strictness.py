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

from cti_exchange.envelope.jose_framing import (
    CONTENT_ENCRYPTION,
    b64url_encode,
    jws_payload,
)
from cti_exchange.envelope.reasons import RejectReason
from cti_exchange.envelope.seal import SealedEnvelope
from cti_exchange.stix.tlp import Tlp

from .conftest import (
    PROTECTED,
    Bundle,
    World,
    artifact_jwe_bytes,
    decrypt_jws,
    deflate,
    honest_entry,
    indicator,
    jws_header,
    make_bundle,
    reencrypt,
    with_jwe,
)


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
