"""Account passwords for the exchange server, stored only as scrypt hashes.

Format: `scrypt$<N>$<r>$<p>$<salt>$<key>`, salt (16 bytes) and key (32 bytes) in unpadded
base64url. The cost parameters travel with each hash, so they can be raised later without
invalidating the hashes already stored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

# 2**15 x 8 x 128 bytes = 32 MiB and about 0.1 s per hash: OWASP's minimum recommendation
# for scrypt. The server verifies a password once per account and process (access.py).
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**15, 8, 1
# Also bounds what a malformed stored hash can make verification allocate.
_SCRYPT_MAXMEM = 64 * 1024 * 1024


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(secret: str) -> str:
    """A new salted scrypt hash of `secret`."""
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(
        secret.encode("utf-8"),
        salt=salt,
        n=_SCRYPT_N,
        r=_SCRYPT_R,
        p=_SCRYPT_P,
        maxmem=_SCRYPT_MAXMEM,
        dklen=32,
    )
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(key)}"


def verify_password(password_hash: str, secret: str) -> bool:
    """Whether `secret` matches `password_hash`; False for anything malformed. The final
    comparison is constant-time."""
    try:
        scheme, n, r, p, salt, key = password_hash.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(key)
        actual = hashlib.scrypt(
            secret.encode("utf-8"),
            salt=_unb64(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=_SCRYPT_MAXMEM,
            dklen=len(expected),
        )
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(actual, expected)
