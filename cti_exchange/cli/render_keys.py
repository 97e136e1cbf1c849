"""Key tables, shared by `init`, `keys show` and `partners show`."""

from __future__ import annotations

from cti_exchange.clock import stix_timestamp
from cti_exchange.keys.model import KeyInfo, Keyring
from cti_exchange.untrusted_text import escape_controls


def key_table_columns() -> list[str]:
    return ["kid", "use", "alg", "created", "expires", "status", "thumbprint (RFC 7638)"]


def key_rows(keyring: Keyring) -> list[list[str]]:
    return [
        [
            escape_controls(key.kid),  # a partner's kid: shown, never interpreted by the terminal
            key.use.value,
            key.alg,
            key.created.strftime("%Y-%m-%d"),
            key.expires.strftime("%Y-%m-%d"),
            key.status.value + (f" since {key.revoked_at:%Y-%m-%d %H:%M}Z" if key.revoked_at else ""),
            key.thumbprint,
        ]
        for key in keyring.keys
    ]


def key_json(key: KeyInfo) -> dict[str, object]:
    return {
        "kid": key.kid,
        "use": key.use.value,
        "alg": key.alg,
        "created": stix_timestamp(key.created),
        "expires": stix_timestamp(key.expires),
        "status": key.status.value,
        "revoked_at": stix_timestamp(key.revoked_at) if key.revoked_at else None,
        "revocation_reason": key.revocation_reason,
        "thumbprint": key.thumbprint,
    }
