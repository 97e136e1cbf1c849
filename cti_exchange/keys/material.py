"""Generating key pairs and computing JWK thumbprints (RFC 7638)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from jwcrypto import jwk

from cti_exchange.keys.model import (
    KEY_AGREEMENT_ALG,
    SIGNING_ALG,
    KeyInfo,
    KeyStatus,
    KeyUse,
)

_CURVES = {KeyUse.SIG: ("Ed25519", SIGNING_ALG), KeyUse.ENC: ("X25519", KEY_AGREEMENT_ALG)}


def thumbprint(public_jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint, SHA-256, base64url: what partners compare out of band."""
    return str(jwk.JWK(**public_jwk).thumbprint())


def generate_key_pair(
    use: KeyUse, agency_id: str, now: datetime, lifetime_days: int
) -> tuple[dict[str, Any], KeyInfo]:
    """A fresh key pair: the private JWK (to be encrypted at rest) and its public KeyInfo.

    The key id is dated and carries the start of the thumbprint, e.g.
    `cert-fr-sig-20261123-uaAxdM8G`, so a human can tell keys apart in logs and headers.
    """
    crv, alg = _CURVES[use]
    key = jwk.JWK.generate(kty="OKP", crv=crv)
    public = key.export_public(as_dict=True)
    print_ = thumbprint(public)
    kid = f"{agency_id}-{use.value}-{now:%Y%m%d}-{print_[:8]}"
    public_jwk = {
        "kty": "OKP",
        "crv": crv,
        "x": public["x"],
        "kid": kid,
        "use": use.value,
        "alg": alg,
    }
    private_jwk = dict(public_jwk, d=key.export_private(as_dict=True)["d"])
    info = KeyInfo(
        kid=kid,
        use=use,
        alg=alg,
        created=now,
        expires=now + timedelta(days=lifetime_days),
        status=KeyStatus.CURRENT,
        public_jwk=public_jwk,
        thumbprint=print_,
    )
    return private_jwk, info
