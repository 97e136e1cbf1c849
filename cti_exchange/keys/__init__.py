"""Agency keys: Ed25519 for signing, X25519 for encryption, as JWK (RFC 7517, RFC 8037)."""
