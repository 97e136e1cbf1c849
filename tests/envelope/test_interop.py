"""Interoperability: the envelope is plain JOSE, as docs/ENVELOPE.md says.

cti-exchange frames JOSE itself around jwcrypto's algorithms (envelope/jose_framing.py). Here a
second, independent JOSE implementation, joserfc, checks that framing both ways:

- joserfc decrypts the JWE of a cti-exchange artifact with the recipient's key and verifies the
  inner compact JWS with the sender's public key;
- an envelope built with joserfc only, by following docs/ENVELOPE.md (not our code: even the
  extension id and the UUID namespace are read from the document), is accepted by
  `open_envelope`.

jwcrypto's own high-level `JWE`/`JWS` classes, which the core does not use, give a second
opinion the same two ways. (Both libraries use pyca/cryptography for the primitives; what is
independent is everything JOSE: serialisation, header handling, Concat KDF inputs, key wrap
framing, AAD, compression.)
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwcrypto.jwe
import pytest
from joserfc import jwe as rfc_jwe
from joserfc import jws as rfc_jws
from joserfc.jwa import DeflateZipModel
from joserfc.jwk import OKPKey
from joserfc.registry import HeaderParameter
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jws as jwcrypto_jws

from cti_exchange.clock import stix_timestamp
from cti_exchange.envelope.reasons import RejectReason
from tests.data.envelope.rfc_test_keys import RECIPIENT_ENCRYPTION, SENDER_SIGNING, public

from .conftest import NOW, Bundle, Party, World, artifact_jwe, indicator, make_bundle

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "ENVELOPE.md").read_text()
EXAMPLE = json.loads((REPO / "tests" / "data" / "envelope" / "worked-example.json").read_text())


def from_doc(pattern: str) -> str:
    """What the document says, read from the document."""
    found = re.search(pattern, DOC)
    assert found, pattern
    return found.group(1)


ROUTING_EXTENSION = from_doc(r'"(extension-definition--[0-9a-f-]{36})"')
SCO_NAMESPACE = uuid.UUID(from_doc(r"UUIDv5 in namespace\s+`([0-9a-f-]{36})`"))
JWE_PROTECTED = json.loads(from_doc(r"Protected header, exactly these members: `(\{.*?\})`"))


# -- joserfc, configured for envelopes -------------------------------------------------------


class EnvelopeJWERegistry(rfc_jwe.JWERegistry):
    """joserfc's defaults protect small tokens (64 KiB of ciphertext, 250 KiB inflated);
    envelopes carry whole bundles, so the limits go up as ours are (docs/ENVELOPE.md §5)."""

    max_ciphertext_length = 1 << 30

    def get_zip(self, name: str) -> Any:
        model = copy.copy(super().get_zip(name))
        assert isinstance(model, DeflateZipModel)  # "DEF", the only zip algorithm registered
        model.MAX_SIZE = 1 << 30  # instance attribute: joserfc's shared model is left alone
        return model


class EnvelopeJWSRegistry(rfc_jws.JWSRegistry):
    max_header_length = 4096  # the signed envelope header is ~650 bytes, over the 512 default
    max_payload_length = 1 << 30


def jwe_registry() -> EnvelopeJWERegistry:
    # verify_all_recipients=False: a recipient holds one key and reads its own entry only.
    return EnvelopeJWERegistry(algorithms=["ECDH-ES+A256KW", "A256GCM", "DEF"], verify_all_recipients=False)


def jws_registry() -> EnvelopeJWSRegistry:
    # `cti` is the envelope's private header parameter (docs/ENVELOPE.md §1); only EdDSA.
    return EnvelopeJWSRegistry(
        header_registry={"cti": HeaderParameter("cti-exchange envelope fields", "jwk", True)},
        algorithms=["EdDSA"],
    )


def joserfc_open(
    artifact: dict[str, Any], decryption_key: dict[str, Any], signer_public: dict[str, Any]
) -> tuple[dict[str, Any], bytes, bytes]:
    """Decrypts and verifies with joserfc only: (JWS header, payload, JWS compact bytes)."""
    jwe_bytes = base64.b64decode(artifact["payload_bin"], validate=True)
    assert hashlib.sha256(jwe_bytes).hexdigest() == artifact["hashes"]["SHA-256"]
    decrypted = rfc_jwe.decrypt_json(
        json.loads(jwe_bytes), OKPKey.import_key(decryption_key), registry=jwe_registry()
    )
    assert decrypted.protected == JWE_PROTECTED
    assert decrypted.plaintext is not None
    signed = rfc_jws.deserialize_compact(
        decrypted.plaintext, OKPKey.import_key(signer_public), registry=jws_registry()
    )
    return signed.headers(), signed.payload, decrypted.plaintext


# -- (a) joserfc opens what cti-exchange sealed -------------------------------------------------


@pytest.mark.parametrize("size", [1, 3000], ids=["one-indicator", "3000-indicators"])
def test_joserfc_opens_an_envelope_sealed_by_cti_exchange(world: World, size: int) -> None:
    bundle = make_bundle([indicator(f"10.0.{i // 256}.{i % 256}", seed=i) for i in range(size)])
    sealed = world.fr.seal(bundle, [world.in_.party, world.de.party])
    for reader in (world.in_.party, world.de.party, world.fr.party):  # and the sender's copy
        header, payload, jws = joserfc_open(
            sealed.artifact, reader.encryption_key, world.fr.party.public_signing_key
        )
        assert payload == bundle.data
        assert header == sealed.header.to_protected()
        assert base64.urlsafe_b64encode(hashlib.sha256(jws).digest()).rstrip(b"=").decode() == (sealed.digest)


def test_joserfc_opens_the_worked_example_with_the_rfc_keys() -> None:
    """What docs/ENVELOPE.md §6 tells a reader to do with any JOSE library."""
    header, payload, _ = joserfc_open(EXAMPLE["artifact"], RECIPIENT_ENCRYPTION, public(SENDER_SIGNING))
    assert payload == EXAMPLE["bundle"].encode()
    assert header["cti"]["envelope_id"] == "0b6f0d4e-6c1a-4a59-9a8e-2f1d3c4b5a69"


def test_joserfc_refuses_the_wrong_signer(world: World, bundle: Bundle) -> None:
    """joserfc is really verifying: with CERT-DE's key the same envelope fails."""
    sealed = world.fr.seal(bundle, [world.in_.party])
    with pytest.raises(Exception, match="signature"):
        joserfc_open(sealed.artifact, world.in_.party.encryption_key, world.de.party.public_signing_key)


# -- (b) cti-exchange opens what joserfc made from the document ---------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def joserfc_seal(
    bundle: Bundle,
    sender: Party,
    recipients: list[Party],
    *,
    sequence: int = 1,
    previous: str | None = None,
    envelope_id: str | None = None,
) -> tuple[dict[str, Any], str]:
    """An envelope made with joserfc, step by step as docs/ENVELOPE.md §1-4 describes.
    Returns the artifact and the digest the next envelope names as `previous`."""
    names = [r.agency_id for r in recipients]
    header: dict[str, Any] = {  # §1
        "alg": "EdDSA",
        "kid": sender.signing_kid,
        "typ": "cti-envelope+jws",
        "cty": "application/stix+json;version=2.1",
        "cti": {
            "version": 1,
            "envelope_id": envelope_id or str(uuid.uuid4()),
            "sender": sender.agency_id,
            "recipients": names,
            "issued_at": stix_timestamp(NOW),
            "channels": {n: {"sequence": sequence, "previous": previous} for n in names},
            "bundle_id": bundle.id,
            "object_count": bundle.count,
        },
    }
    jws = rfc_jws.serialize_compact(
        header, bundle.data, OKPKey.import_key(sender.signing_key), registry=jws_registry()
    ).encode()
    digest = b64url(hashlib.sha256(jws).digest())  # §1 "Channels"

    message = rfc_jwe.GeneralJSONEncryption(dict(JWE_PROTECTED), jws)  # §2
    for party in [*recipients, sender]:  # one entry per partner, plus the sender itself
        message.add_recipient(
            {"alg": "ECDH-ES+A256KW", "kid": party.encryption_kid},
            OKPKey.import_key(party.public_encryption_key),
        )
    jwe_bytes = json.dumps(rfc_jwe.encrypt_json(message, None, registry=jwe_registry())).encode()

    payload_bin = base64.b64encode(jwe_bytes).decode()  # §3
    sha256 = hashlib.sha256(jwe_bytes).hexdigest()
    contributing = json.dumps(
        {"hashes": {"SHA-256": sha256}, "payload_bin": payload_bin},
        separators=(",", ":"),
        sort_keys=True,
    )
    artifact = {
        "type": "artifact",
        "spec_version": "2.1",
        "id": f"artifact--{uuid.uuid5(SCO_NAMESPACE, contributing)}",
        "mime_type": "application/jose+json",
        "payload_bin": payload_bin,
        "hashes": {"SHA-256": sha256},
        "encryption_algorithm": "mime-type-indicated",
        "extensions": {
            ROUTING_EXTENSION: {
                "extension_type": "property-extension",
                "envelope_id": header["cti"]["envelope_id"],
                "sender": sender.agency_id,
                "recipients": names,
                "sequences": {n: sequence for n in names},
                "issued_at": header["cti"]["issued_at"],
            }
        },
    }
    return artifact, digest


def test_cti_exchange_opens_an_envelope_joserfc_made_from_the_spec(world: World, bundle: Bundle) -> None:
    artifact, digest = joserfc_seal(bundle, world.fr.party, [world.in_.party, world.de.party])
    for receiver in (world.in_, world.de, world.fr):
        opened = receiver.open(artifact)
        assert opened.bundle_bytes == bundle.data
        assert opened.digest == digest
        assert opened.signer.kid == world.fr.party.signing_kid


def test_a_joserfc_channel_chains_as_the_spec_says(world: World, bundle: Bundle) -> None:
    """Sequence 2 names the SHA-256 of sequence 1's JWS, computed with joserfc's bytes."""
    first, digest = joserfc_seal(bundle, world.fr.party, [world.in_.party])
    second, _ = joserfc_seal(bundle, world.fr.party, [world.in_.party], sequence=2, previous=digest)
    world.in_.open(first)
    assert world.in_.open(second).channel.sequence == 2  # type: ignore[union-attr]


def test_a_joserfc_envelope_is_checked_like_any_other(world: World, bundle: Bundle) -> None:
    """Same id twice: the checks do not care which library made the envelope."""
    envelope_id = str(uuid.uuid4())
    first, _ = joserfc_seal(bundle, world.fr.party, [world.in_.party], envelope_id=envelope_id)
    world.in_.open(first)
    again, _ = joserfc_seal(bundle, world.fr.party, [world.in_.party], envelope_id=envelope_id)
    world.in_.rejects(again, RejectReason.REPLAYED)


def test_the_doc_values_read_here_match_the_code(world: World, bundle: Bundle) -> None:
    """The constants this file read from docs/ENVELOPE.md are the ones cti-exchange writes."""
    from cti_exchange.envelope import artifact as artifact_module

    assert ROUTING_EXTENSION == artifact_module.ROUTING_EXTENSION_ID
    assert SCO_NAMESPACE == artifact_module.SCO_NAMESPACE
    sealed = world.fr.seal(bundle, [world.in_.party])
    protected = artifact_jwe(sealed.artifact)["protected"]
    assert json.loads(base64.urlsafe_b64decode(protected + "==")) == JWE_PROTECTED


# -- jwcrypto's high-level API: a second opinion ----------------------------------------------


@pytest.fixture
def jwcrypto_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """jwcrypto refuses more than 256 KiB of compressed content by default (a zip-bomb guard
    for tokens); envelopes are bigger. This sets the library's own limit, as an application
    would."""
    monkeypatch.setattr(jwcrypto.jwe, "default_max_compressed_size", 1 << 30)


@pytest.mark.usefixtures("jwcrypto_limits")
def test_jwcrypto_high_level_api_opens_ours(world: World) -> None:
    bundle = make_bundle([indicator(f"10.1.{i // 256}.{i % 256}", seed=i) for i in range(3000)])
    sealed = world.fr.seal(bundle, [world.in_.party, world.de.party])
    token = jwcrypto.jwe.JWE()
    token.deserialize(
        base64.b64decode(sealed.artifact["payload_bin"]).decode(),
        key=jwcrypto_jwk.JWK(**world.de.party.encryption_key),
    )
    signed = jwcrypto_jws.JWS()
    signed.deserialize(token.payload.decode())
    signed.verify(jwcrypto_jwk.JWK(**world.fr.party.public_signing_key), alg="EdDSA")
    assert signed.payload == bundle.data
    assert json.loads(signed.objects["protected"]) == sealed.header.to_protected()


def test_cti_exchange_opens_an_envelope_made_with_jwcrypto_high_level_api(
    world: World, bundle: Bundle
) -> None:
    sealed_by_us = world.fr.seal(bundle, [world.in_.party], record=False)
    header = sealed_by_us.header.to_protected()
    signer = jwcrypto_jws.JWS(bundle.data)
    signer.add_signature(jwcrypto_jwk.JWK(**world.fr.party.signing_key), None, protected=json.dumps(header))
    jws = signer.serialize(compact=True)
    token = jwcrypto.jwe.JWE(jws.encode(), protected=dict(JWE_PROTECTED))
    for party in (world.in_.party, world.fr.party):
        token.add_recipient(
            jwcrypto_jwk.JWK(**party.public_encryption_key),
            header={"alg": "ECDH-ES+A256KW", "kid": party.encryption_kid},
        )
    jwe_bytes = token.serialize().encode()
    artifact = json.loads(json.dumps(sealed_by_us.artifact))
    artifact["payload_bin"] = base64.b64encode(jwe_bytes).decode()
    artifact["hashes"] = {"SHA-256": hashlib.sha256(jwe_bytes).hexdigest()}
    opened = world.in_.open(artifact, now=NOW + timedelta(seconds=1))
    assert opened.bundle_bytes == bundle.data
    assert opened.jws == jws.encode()
