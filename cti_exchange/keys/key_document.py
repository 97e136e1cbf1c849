"""The signed key document agencies hand each other (`keys export`, `partners add`).

It is a JWS in General JSON Serialization (RFC 7515 section 7.2.1) whose payload is our
`Keyring` document (a JWK Set with `agency` and `key_status`), signed by every signing key that
is not revoked: the current one proves possession, the retired ones let a partner who pinned an
older key accept a rotation without a new out-of-band check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jwcrypto import jwk, jws
from jwcrypto.common import JWException, json_encode

from cti_exchange.clock import utc_now
from cti_exchange.errors import IntegrityError, KeyStoreError
from cti_exchange.keys.model import SIGNING_ALG, Keyring, KeyStatus, KeyUse

KEY_DOCUMENT_TYPE = "cti-exchange-keys+json"
MAX_KEY_DOCUMENT_BYTES = 1024 * 1024


@dataclass(frozen=True)
class VerifiedKeyDocument:
    keyring: Keyring
    signer_kids: tuple[str, ...]  # signatures that verified with a non-revoked key of the ring
    raw: bytes


def sign_key_document(
    keyring: Keyring, private_keys: dict[str, dict[str, Any]], *, now: datetime | None = None
) -> bytes:
    # keys/public.json is not encrypted: a key added there by someone who can write our files
    # but lacks the passphrase must not be vouched for to partners. Every key we create keeps
    # its private half in keys/private.jwe, retired and revoked ones too.
    for key in keyring.keys:
        private = private_keys.get(key.kid)
        if private is None or private.get("x") != key.public_jwk.get("x"):
            raise KeyStoreError(
                f"key {key.kid} in keys/public.json has no matching private key in keys/private.jwe",
                hint="public.json was changed outside cti-exchange: restore it from a backup "
                "before exporting keys",
            )
    moment = now or utc_now()
    payload = json.dumps(keyring.to_document(), separators=(",", ":"), sort_keys=True).encode()
    signers = [
        key
        for key in keyring.keys
        if key.use is KeyUse.SIG
        and key.status is not KeyStatus.REVOKED
        and key.created <= moment <= key.expires
    ]
    if not signers:
        raise KeyStoreError("no signing key to sign the key document", hint="run `keys rotate`")
    token = jws.JWS(payload)
    for key in signers:
        token.add_signature(
            jwk.JWK(**private_keys[key.kid]),
            None,
            json_encode({"alg": SIGNING_ALG, "kid": key.kid, "typ": KEY_DOCUMENT_TYPE}),
        )
    general = json.loads(token.serialize(compact=False))
    if "signatures" not in general:  # jwcrypto flattens a single signature
        general = {
            "payload": general["payload"],
            "signatures": [{"protected": general["protected"], "signature": general["signature"]}],
        }
    return (json.dumps(general, indent=2) + "\n").encode()


def verify_key_document(raw: bytes, *, source: str) -> VerifiedKeyDocument:
    """Parses a key document and checks each signature against the keys it carries."""
    if len(raw) > MAX_KEY_DOCUMENT_BYTES:
        raise KeyStoreError(f"{source} is larger than {MAX_KEY_DOCUMENT_BYTES} bytes")
    try:
        outer = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise KeyStoreError(f"{source} is not valid JSON ({exc})") from None
    except RecursionError:  # "[[[[..." nested deeper than the parser goes
        raise KeyStoreError(f"{source} is not a key document (JSON nested too deeply)") from None
    if not isinstance(outer, dict):
        raise KeyStoreError(f"{source} is not a JSON object")
    if "keys" in outer and "payload" not in outer:
        raise KeyStoreError(
            f"{source} is an unsigned JWK Set",
            hint="ask the partner for the signed file written by `cti-exchange keys export`",
        )
    signatures = outer.get("signatures")
    if signatures is None and "signature" in outer:
        signatures = [{"protected": outer.get("protected"), "signature": outer.get("signature")}]
    payload_b64 = outer.get("payload")
    if not isinstance(payload_b64, str) or not isinstance(signatures, list) or not signatures:
        raise KeyStoreError(f"{source} is not a signed key document (JWS JSON with signatures)")
    try:
        token = jws.JWS()
        token.deserialize(json.dumps({"payload": payload_b64, "signatures": signatures}))
        payload = json.loads(token.objects["payload"])
    except (JWException, ValueError, KeyError, TypeError, RecursionError):
        raise KeyStoreError(f"{source}: the signed payload is not readable JSON") from None
    keyring = Keyring.from_document(payload, source=source)

    verified: list[str] = []
    for entry in signatures:
        protected_b64 = entry.get("protected") if isinstance(entry, dict) else None
        try:
            header = json.loads(jws.base64url_decode(protected_b64))
        except (TypeError, ValueError, RecursionError):
            continue
        if not isinstance(header, dict):
            continue
        if header.get("alg") != SIGNING_ALG or not isinstance(header.get("kid"), str):
            continue
        key = keyring.find(header["kid"])
        if key is None or key.use is not KeyUse.SIG or key.status is KeyStatus.REVOKED:
            continue
        single = jws.JWS()
        try:
            single.deserialize(
                json.dumps(
                    {
                        "payload": payload_b64,
                        "protected": protected_b64,
                        "signature": entry.get("signature"),
                    }
                )
            )
            single.verify(jwk.JWK(**key.public_jwk), alg=SIGNING_ALG)
        except (JWException, ValueError, TypeError):
            continue
        verified.append(key.kid)
    if not verified:
        raise IntegrityError(
            f"{source}: no signature verifies with a signing key the document itself carries",
            hint="the file was altered or not produced by `keys export`; ask for a fresh copy",
        )
    return VerifiedKeyDocument(keyring=keyring, signer_kids=tuple(verified), raw=raw)
