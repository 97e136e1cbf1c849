"""Private keys at rest: a JWE (RFC 7516) with PBES2-HS512+A256KW (RFC 7518 section 4.8) and
A256GCM, whose plaintext is a JWK Set of our private keys.

A standard format on purpose: an operator can recover the keys with any JOSE library and the
passphrase. The PBKDF2 iteration count follows OWASP's 2023 guidance for PBKDF2-HMAC-SHA512.
"""

from __future__ import annotations

import json
from typing import Any

from jwcrypto import jwa, jwe, jwk
from jwcrypto.common import JWException, json_encode

from cti_exchange.errors import AuthError, KeyStoreError

PBKDF2_ITERATIONS = 210_000
_ALG = "PBES2-HS512+A256KW"
_ENC = "A256GCM"

# jwcrypto caps p2c at 16384 to stop attacker-chosen work factors in tokens it is handed. We
# only ever decrypt PBES2 for our own key file (envelopes allow ECDH-ES+A256KW alone), so the
# cap is raised to our own count and no further.
if jwa.default_max_pbkdf2_iterations < PBKDF2_ITERATIONS:
    jwa.default_max_pbkdf2_iterations = PBKDF2_ITERATIONS


def _password_key(passphrase: str) -> jwk.JWK:
    return jwk.JWK.from_password(passphrase)


def protect_private_keys(private_jwks: list[dict[str, Any]], passphrase: str) -> bytes:
    plaintext = json.dumps({"keys": private_jwks}, separators=(",", ":")).encode()
    token = jwe.JWE(
        plaintext,
        protected=json_encode({"alg": _ALG, "enc": _ENC, "p2c": PBKDF2_ITERATIONS, "cty": "jwk-set+json"}),
    )
    token.add_recipient(_password_key(passphrase))
    return token.serialize(compact=True).encode()


def unprotect_private_keys(blob: bytes, passphrase: str, *, source: str) -> list[dict[str, Any]]:
    token = jwe.JWE()
    token.allowed_algs = [_ALG, _ENC]
    try:
        token.deserialize(blob.decode("ascii").strip())
    except (JWException, ValueError, UnicodeDecodeError):
        raise KeyStoreError(
            f"{source} is not a cti-exchange private key file (expected a JWE)",
            hint="restore it from your backup",
        ) from None
    # The file names its own key derivation: one rewritten with a weaker one (a single PBKDF2
    # round) would still open with the right passphrase, and then give way to guessing.
    header = token.jose_header
    if header.get("alg") != _ALG or header.get("enc") != _ENC or not _strong_enough(header.get("p2c")):
        raise KeyStoreError(
            f"{source} is not protected as cti-exchange protects keys ({_ALG}, {_ENC}, "
            f"{PBKDF2_ITERATIONS:,} PBKDF2 rounds): it was altered",
            hint="restore it from your backup",
        )
    try:
        token.decrypt(_password_key(passphrase))
    except JWException:
        raise AuthError(
            f"wrong passphrase for {source}",
            hint="check CTI_EXCHANGE_PASSPHRASE / CTI_EXCHANGE_PASSPHRASE_FILE",
        ) from None
    try:
        data = json.loads(token.payload)
    except ValueError:
        data = None
    keys = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(keys, list) or not all(
        isinstance(k, dict) and isinstance(k.get("kid"), str) for k in keys
    ):
        raise KeyStoreError(f"{source} decrypted but holds no key set", hint="restore it from your backup")
    return keys


def _strong_enough(rounds: Any) -> bool:
    return isinstance(rounds, int) and not isinstance(rounds, bool) and rounds >= PBKDF2_ITERATIONS
