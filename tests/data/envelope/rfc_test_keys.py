"""Published test keys, used only for the worked example of docs/ENVELOPE.md.

They are public (anyone can read them in the RFCs): never use them for real traffic.
- Ed25519: RFC 8037 Appendix A.1.
- X25519 "Bob": RFC 7748 section 6.1 / RFC 8037 Appendix A.6 (the recipient, cert-in).
- X25519 "Alice": RFC 7748 section 6.1 (the sender's own copy, cert-fr).
"""

SENDER_SIGNING = {
    "kty": "OKP",
    "crv": "Ed25519",
    "kid": "cert-fr-sig-example",
    "use": "sig",
    "alg": "EdDSA",
    "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
    "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
}
RECIPIENT_ENCRYPTION = {
    "kty": "OKP",
    "crv": "X25519",
    "kid": "cert-in-enc-example",
    "use": "enc",
    "alg": "ECDH-ES+A256KW",
    "x": "3p7bfXt9wbTTW2HC7OQ1Nz-DQ8hbeGdNrfx-FG-IK08",
    "d": "XasIfmJKikt54X-Lg4AO5m87sSkmGLb9HC-LJ_-I4Os",
}
SENDER_ENCRYPTION = {
    "kty": "OKP",
    "crv": "X25519",
    "kid": "cert-fr-enc-example",
    "use": "enc",
    "alg": "ECDH-ES+A256KW",
    "x": "hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo",
    "d": "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo",
}
PUBLISHED_PRIVATE_VALUES = frozenset(
    k["d"] for k in (SENDER_SIGNING, RECIPIENT_ENCRYPTION, SENDER_ENCRYPTION)
)


def public(jwk: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in jwk.items() if k != "d"}
