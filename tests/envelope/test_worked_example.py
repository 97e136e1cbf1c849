"""The worked example of docs/ENVELOPE.md section 6 is real: cti-exchange opens the committed
artifact with the published RFC test keys, and every value the document shows is checked
against it, so neither the document nor the file can drift from the code.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cti_exchange.clock import parse_timestamp
from cti_exchange.envelope.artifact import ROUTING_EXTENSION_ID
from cti_exchange.envelope.jose_framing import b64url_decode, jws_sign_compact
from cti_exchange.envelope.open import OpenedEnvelope, ReceiverContext, open_envelope
from cti_exchange.keys.material import thumbprint
from cti_exchange.keys.model import AgencyRef, KeyInfo, Keyring, KeyStatus, KeyUse
from cti_exchange.stix.validate import validate_bundle
from tests.data.envelope.rfc_test_keys import (
    RECIPIENT_ENCRYPTION,
    SENDER_ENCRYPTION,
    SENDER_SIGNING,
    public,
)

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "ENVELOPE.md").read_text()
EXAMPLE = json.loads((REPO / "tests" / "data" / "envelope" / "worked-example.json").read_text())
ISSUED_AT = parse_timestamp(EXAMPLE["issued_at"])


def block_after(phrase: str) -> str:
    """The first fenced code block after `phrase` in docs/ENVELOPE.md section 6."""
    section = DOC[DOC.index("## 6. Worked example") :]
    start = section.index(phrase)
    match = re.compile(r"^```[a-z]*\n(.*?)^```$", re.S | re.M).search(section, start)
    assert match, f"no code block after {phrase!r}"
    return match.group(1)


def json_values(text: str) -> list[Any]:
    """Every JSON value in a block that holds several, one after another."""
    decoder, values, index = json.JSONDecoder(), [], 0
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        value, index = decoder.raw_decode(text, index)
        values.append(value)
    return values


def doc_jws() -> bytes:
    return "".join(block_after("The JWS compact serialization").split()).encode()


def keyring(agency: str, *jwks: dict[str, str]) -> Keyring:
    infos = []
    for jwk in jwks:
        public_jwk = public(jwk)
        infos.append(
            KeyInfo(
                kid=jwk["kid"],
                use=KeyUse(jwk["use"]),
                alg=jwk["alg"],
                created=ISSUED_AT - timedelta(days=1),
                expires=ISSUED_AT + timedelta(days=365),
                status=KeyStatus.CURRENT,
                public_jwk=public_jwk,
                thumbprint=thumbprint(public_jwk),
            )
        )
    return Keyring(AgencyRef(agency, agency.upper()), tuple(infos))


def open_as(agency: str, decryption_key: dict[str, str]) -> OpenedEnvelope:
    context = ReceiverContext(
        agency_id=agency,
        decryption_keys={decryption_key["kid"]: decryption_key},
        keyrings={"cert-fr": keyring("cert-fr", SENDER_SIGNING, SENDER_ENCRYPTION)},
        now=ISSUED_AT,
        seen_envelope=lambda sender, envelope_id: False,
        channel_state=lambda sender: None,
        validate_bundle=validate_bundle,
    )
    return open_envelope(EXAMPLE["artifact"], context)


@pytest.fixture(scope="module")
def opened() -> OpenedEnvelope:
    return open_as("cert-in", RECIPIENT_ENCRYPTION)


def test_cert_in_opens_the_example_to_the_exact_bundle_bytes(opened: OpenedEnvelope) -> None:
    assert opened.bundle_bytes == EXAMPLE["bundle"].encode()
    assert opened.digest == EXAMPLE["digest"]
    assert opened.signer.kid == "cert-fr-sig-example"
    assert opened.header.issued_at == ISSUED_AT
    assert opened.channel is not None and opened.channel.sequence == 1
    assert opened.channel.previous is None


def test_the_sender_opens_its_own_copy_with_alices_key() -> None:
    own = open_as("cert-fr", SENDER_ENCRYPTION)
    assert own.bundle_bytes == EXAMPLE["bundle"].encode()
    assert own.channel is None  # not on an inbound channel


def test_the_bundle_in_the_doc_is_the_signed_bundle(opened: OpenedEnvelope) -> None:
    assert block_after("The bundle (these exact bytes are signed)").strip().encode() == (opened.bundle_bytes)


def test_the_jws_in_the_doc_is_the_one_in_the_envelope(opened: OpenedEnvelope) -> None:
    assert doc_jws() == opened.jws
    assert len(doc_jws().split(b".")) == 3


def test_the_digest_in_the_doc(opened: OpenedEnvelope) -> None:
    section = DOC[DOC.index("Its digest, which the next envelope") :]
    shown = re.search(r"`([A-Za-z0-9_-]{43})`", section)
    assert shown and shown.group(1) == opened.digest == EXAMPLE["digest"]


def test_the_decoded_header_in_the_doc(opened: OpenedEnvelope) -> None:
    shown = json.loads(block_after("The JWS protected header, decoded"))
    signed = json.loads(b64url_decode(opened.jws.split(b".")[0], what="header"))
    assert shown == signed


def test_ed25519_is_deterministic_so_the_signature_can_be_reproduced(
    opened: OpenedEnvelope,
) -> None:
    """RFC 8032: anyone with the published key can re-create the JWS byte for byte."""
    header = json.loads(block_after("The JWS protected header, decoded"))
    bundle = block_after("The bundle (these exact bytes are signed)").strip().encode()
    assert jws_sign_compact(header, bundle, SENDER_SIGNING) == doc_jws()


def test_the_decoded_jwe_in_the_doc() -> None:
    shown = json.loads(block_after("The JWE (the decoded `payload_bin`)"))
    assert shown == json.loads(base64.b64decode(EXAMPLE["artifact"]["payload_bin"]))


def test_the_artifact_in_the_doc() -> None:
    shown = json.loads(block_after("The artifact, as posted to TAXII"))
    committed = EXAMPLE["artifact"]
    prefix = shown.pop("payload_bin")
    assert prefix.endswith("...") and committed["payload_bin"].startswith(prefix[:-3])
    assert shown == {k: v for k, v in committed.items() if k != "payload_bin"}
    assert shown["extensions"][ROUTING_EXTENSION_ID]["issued_at"] == EXAMPLE["issued_at"]


def test_the_keys_in_the_doc_are_the_test_keys() -> None:
    shown = json_values(block_after("Public keys (the private halves are the RFCs' published values"))
    assert shown == [public(SENDER_SIGNING), public(RECIPIENT_ENCRYPTION), public(SENDER_ENCRYPTION)]


def b64url(hex_value: str) -> str:
    return base64.urlsafe_b64encode(bytes.fromhex(hex_value)).rstrip(b"=").decode()


def test_the_test_keys_are_the_published_vectors() -> None:
    """Sources: RFC 8037 Appendix A.1 (Ed25519) and RFC 7748 section 6.1 (Alice and Bob)."""
    assert SENDER_SIGNING["d"] == "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
    assert SENDER_SIGNING["x"] == "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    bob_private = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
    bob_public = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
    alice_private = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
    alice_public = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
    assert RECIPIENT_ENCRYPTION["d"] == b64url(bob_private)
    assert RECIPIENT_ENCRYPTION["x"] == b64url(bob_public)
    assert SENDER_ENCRYPTION["d"] == b64url(alice_private)
    assert SENDER_ENCRYPTION["x"] == b64url(alice_public)
