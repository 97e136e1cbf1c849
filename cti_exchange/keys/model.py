"""Key rings as plain data: whose keys they are, which is current, which are retired or revoked.

A `Keyring` holds public keys only. Our own ring and every partner's pinned ring share this
shape, which is also the payload of the signed JWKS document agencies hand each other
(`keys export`): a JWK Set (RFC 7517 section 5) with two extra top-level members, `agency` and
`key_status`, which RFC 7517 lets JWK Set readers ignore.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from cti_exchange.clock import parse_timestamp, stix_timestamp
from cti_exchange.errors import IntegrityError, KeyStoreError
from cti_exchange.untrusted_text import UNPRINTABLE, describe_value

SIGNING_ALG = "EdDSA"  # RFC 8037 section 3.1, with crv Ed25519
KEY_AGREEMENT_ALG = "ECDH-ES+A256KW"  # RFC 7518 section 4.6 over X25519 (RFC 8037 section 3.2)

# JWK members that carry private or symmetric key material (RFC 7518 section 6, RFC 8037).
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})

# What an agency id may be (schemas/profile.schema.json, $defs/agency_id): a partner's key file
# names its agency, and that id becomes part of our profile and of envelope headers.
AGENCY_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
COUNTRY = re.compile(r"[A-Z]{2}")
MAX_NAME_LENGTH = 200

# How far two agencies' clocks may differ (the receiver's default, `envelope.max_clock_skew_seconds`).
DEFAULT_CLOCK_SKEW = timedelta(minutes=5)


class KeyUse(StrEnum):
    SIG = "sig"
    ENC = "enc"


class KeyStatus(StrEnum):
    CURRENT = "current"  # used for new signatures / new envelopes addressed to us
    RETIRED = "retired"  # rotated out: verifies what it signed before retired_at; still decrypts
    REVOKED = "revoked"  # never used again; its signatures after revoked_at are rejected


class KeyRejection(StrEnum):
    """Why a key may not verify a signature; the names go into quarantine records and logs."""

    UNKNOWN = "unknown-key"
    WRONG_USE = "wrong-key-use"
    REVOKED = "revoked-key"
    RETIRED = "retired-key"  # a signature dated after the key was rotated out
    EXPIRED = "expired-key"
    NOT_YET_VALID = "key-not-yet-valid"


class KeyCheckError(IntegrityError):
    def __init__(self, reason: KeyRejection, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class AgencyRef:
    id: str
    name: str
    country: str | None = None
    identity_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "name": self.name}
        if self.country:
            out["country"] = self.country
        if self.identity_id:
            out["identity_id"] = self.identity_id
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AgencyRef:
        return cls(
            id=str(data["id"]),
            name=str(data.get("name", data["id"])),
            country=data.get("country"),
            identity_id=data.get("identity_id"),
        )

    @classmethod
    def from_untrusted(cls, data: Any, *, source: str) -> AgencyRef:
        """The `agency` member of a key document, refusing what `keys export` never writes."""
        if not isinstance(data, dict) or "id" not in data:
            raise KeyStoreError(
                f"{source} does not name its agency",
                hint="use a file written by `cti-exchange keys export`",
            )
        agency_id = data["id"]
        if not isinstance(agency_id, str) or not AGENCY_ID.fullmatch(agency_id):
            raise KeyStoreError(
                f"{source}: agency.id {describe_value(agency_id)} is not an agency id "
                "(lower-case letters, digits and '-', at most 63 characters)",
                hint="use a file written by `cti-exchange keys export`",
            )
        name = data.get("name", agency_id)
        # Not refused for control characters: `init --name` takes them, so an agency's own
        # ring may hold them. They are escaped wherever the name is shown.
        if not isinstance(name, str) or not name or len(name) > MAX_NAME_LENGTH:
            raise KeyStoreError(
                f"{source}: agency.name {describe_value(name)} is not a name of 1 to "
                f"{MAX_NAME_LENGTH} characters",
                hint="use a file written by `cti-exchange keys export`",
            )
        country = data.get("country")
        if country is not None and (not isinstance(country, str) or not COUNTRY.fullmatch(country)):
            raise KeyStoreError(
                f"{source}: agency.country {describe_value(country)} is not an ISO 3166 code such as FR",
                hint="use a file written by `cti-exchange keys export`",
            )
        identity_id = data.get("identity_id")
        if identity_id is not None and not isinstance(identity_id, str):
            raise KeyStoreError(
                f"{source}: agency.identity_id {describe_value(identity_id)} is not a STIX identity id",
                hint="use a file written by `cti-exchange keys export`",
            )
        return cls(id=agency_id, name=name, country=country, identity_id=identity_id)


@dataclass(frozen=True)
class KeyInfo:
    kid: str
    use: KeyUse
    alg: str
    created: datetime
    expires: datetime
    status: KeyStatus
    public_jwk: dict[str, Any]
    thumbprint: str  # RFC 7638, SHA-256, base64url
    revoked_at: datetime | None = None
    revocation_reason: str | None = None
    # When `keys rotate` made it retired. Key documents written before this was recorded lack
    # it: Keyring.retirement_time then takes the creation of its successor.
    retired_at: datetime | None = None

    def retired(self, moment: datetime) -> KeyInfo:
        """This key rotated out at `moment`: it signs nothing after that (`keys rotate`)."""
        return replace(self, status=KeyStatus.RETIRED, retired_at=moment)

    def status_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "use": self.use.value,
            "created": stix_timestamp(self.created),
            "expires": stix_timestamp(self.expires),
            "status": self.status.value,
        }
        if self.revoked_at is not None:
            out["revoked_at"] = stix_timestamp(self.revoked_at)
        if self.revocation_reason:
            out["revocation_reason"] = self.revocation_reason
        if self.retired_at is not None:
            out["retired_at"] = stix_timestamp(self.retired_at)
        return out

    def check_usable_for_signature_at(
        self,
        moment: datetime,
        *,
        retired_since: datetime | None = None,
        skew: timedelta = DEFAULT_CLOCK_SKEW,
    ) -> None:
        """A signature made at `moment` by this key may be trusted (RFC 7515 leaves this to us).

        A retired key verifies only what it signed before it was rotated out (`retired_since`,
        from Keyring.retirement_time, or our own `retired_at`), give or take the clock skew:
        whoever holds an old key, leaked once it was no longer guarded, cannot sign anything new."""
        if self.use is not KeyUse.SIG:
            raise KeyCheckError(KeyRejection.WRONG_USE, f"key {self.kid} is not a signing key")
        if self.revoked_at is not None and moment >= self.revoked_at:
            raise KeyCheckError(
                KeyRejection.REVOKED,
                f"key {self.kid} was revoked at {stix_timestamp(self.revoked_at)}",
            )
        if self.status is KeyStatus.REVOKED and self.revoked_at is None:
            raise KeyCheckError(KeyRejection.REVOKED, f"key {self.kid} was revoked (the time is not known)")
        cutoff = None if self.status is KeyStatus.CURRENT else self.retired_at or retired_since
        # A key retired and later revoked keeps its retirement: revoking it must not widen what
        # it may have signed. Datetimes subtracted, not shifted: no year-9999 overflow.
        if (cutoff is not None and moment > cutoff and moment - cutoff > skew) or (
            cutoff is None and self.status is KeyStatus.RETIRED
        ):
            since = f"at {stix_timestamp(cutoff)}" if cutoff is not None else "at a time not known"
            raise KeyCheckError(
                KeyRejection.RETIRED,
                f"key {self.kid} was retired {since}, and the signature is dated "
                f"{stix_timestamp(moment)}: a retired key signs nothing new",
            )
        if moment > self.expires:
            raise KeyCheckError(
                KeyRejection.EXPIRED, f"key {self.kid} expired at {stix_timestamp(self.expires)}"
            )
        if moment < self.created:
            raise KeyCheckError(
                KeyRejection.NOT_YET_VALID,
                f"key {self.kid} was created at {stix_timestamp(self.created)}, after the signature",
            )


@dataclass(frozen=True)
class Keyring:
    """The public keys of one agency, with their status."""

    agency: AgencyRef
    keys: tuple[KeyInfo, ...]
    issued: datetime | None = None

    def find(self, kid: str) -> KeyInfo | None:
        for key in self.keys:
            if key.kid == kid:
                return key
        return None

    def current(self, use: KeyUse) -> KeyInfo:
        for key in self.keys:
            if key.use is use and key.status is KeyStatus.CURRENT:
                return key
        raise KeyStoreError(
            f"{self.agency.id} has no current {use.value} key",
            hint="run `cti-exchange keys rotate` to create one",
        )

    def revoked_kids(self, use: KeyUse) -> set[str]:
        return {key.kid for key in self.keys if key.use is use and key.status is KeyStatus.REVOKED}

    def current_or_none(self, use: KeyUse) -> KeyInfo | None:
        try:
            return self.current(use)
        except KeyStoreError:
            return None

    def signing_key(self, kid: str, at: datetime, *, skew: timedelta = DEFAULT_CLOCK_SKEW) -> KeyInfo:
        key = self.find(kid)
        if key is None:
            raise KeyCheckError(
                KeyRejection.UNKNOWN, f"key {kid} is not among the keys pinned for {self.agency.id}"
            )
        key.check_usable_for_signature_at(at, retired_since=self.retirement_time(key), skew=skew)
        return key

    def retirement_time(self, key: KeyInfo) -> datetime | None:
        """When a retired key was rotated out: its recorded `retired_at`; for a document
        written before that was recorded, the creation of its successor (the next key of the
        same use: `keys rotate` creates it at the moment it retires the old one, and `keys
        revoke` of a current key too); failing that, for a retired key, the date of the document
        that calls it retired. None for the current key.
        A key withdrawn or revoked from its creation (never valid) is nobody's successor."""
        if key.status is KeyStatus.CURRENT:
            return None
        if key.retired_at is not None:
            return key.retired_at
        later = [
            k.created
            for k in self.keys
            if k.use is key.use and k.created > key.created and k.revoked_at != k.created
        ]
        if later:
            return min(later)
        return self.issued if key.status is KeyStatus.RETIRED else None

    def by_thumbprint(self, thumbprint: str) -> KeyInfo | None:
        for key in self.keys:
            if key.thumbprint == thumbprint:
                return key
        return None

    def replace_keys(self, keys: tuple[KeyInfo, ...], issued: datetime) -> Keyring:
        return replace(self, keys=keys, issued=issued)

    def to_document(self) -> dict[str, Any]:
        """The JWK Set plus status, as exported to partners and kept on disk."""
        doc: dict[str, Any] = {
            "agency": self.agency.to_dict(),
            "keys": [dict(key.public_jwk) for key in self.keys],
            "key_status": {key.kid: key.status_dict() for key in self.keys},
        }
        if self.issued is not None:
            doc["issued"] = stix_timestamp(self.issued)
        return doc

    @classmethod
    def from_document(cls, doc: Any, *, source: str) -> Keyring:
        """Builds a ring from an untrusted document, refusing private members and odd keys."""
        from cti_exchange.keys.material import thumbprint  # local: material imports this module

        if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
            raise KeyStoreError(f"{source} is not a JWK Set (no 'keys' array)")
        agency = AgencyRef.from_untrusted(doc.get("agency"), source=source)
        statuses = doc.get("key_status") or {}
        if not isinstance(statuses, dict):
            raise KeyStoreError(
                f"{source}: 'key_status' is not a JSON object (kid -> status)",
                hint="use a file written by `cti-exchange keys export`",
            )
        keys: list[KeyInfo] = []
        seen: set[str] = set()
        for index, jwk in enumerate(doc["keys"]):
            where = f"{source}: keys[{index}]"
            if not isinstance(jwk, dict):
                raise KeyStoreError(f"{where} is not a JSON object")
            private = PRIVATE_MEMBERS.intersection(jwk)
            if private:
                raise KeyStoreError(
                    f"{where} holds private key material ({', '.join(sorted(private))})",
                    hint="a partner must only ever send public keys; ask for `keys export` output",
                )
            kid = jwk.get("kid")
            if not isinstance(kid, str) or not kid or kid in seen:
                raise KeyStoreError(f"{where} has a missing or duplicate 'kid'")
            if UNPRINTABLE.search(kid) or len(kid) > MAX_NAME_LENGTH:
                raise KeyStoreError(
                    f"{where}: kid {describe_value(kid)} holds control characters or is too long",
                    hint="use a file written by `cti-exchange keys export`",
                )
            seen.add(kid)
            use = _key_use(jwk, where)
            status = statuses.get(kid, {})
            reason = status.get("revocation_reason") if isinstance(status, dict) else None
            try:
                if not isinstance(status, dict) or not (reason is None or isinstance(reason, str)):
                    raise ValueError(kid)
                created = _timestamp(status["created"])
                expires = _timestamp(status["expires"])
                revoked_at = _timestamp(status["revoked_at"]) if status.get("revoked_at") else None
                retired_at = _timestamp(status["retired_at"]) if status.get("retired_at") else None
                key_status = KeyStatus(status.get("status", "current"))
            except (KeyError, ValueError, TypeError):
                raise KeyStoreError(f"{source}: key_status for {kid} is missing or malformed") from None
            if revoked_at is not None:
                key_status = KeyStatus.REVOKED
            public = {name: jwk[name] for name in ("kty", "crv", "x", "kid", "use", "alg") if name in jwk}
            if not _is_raw_32_bytes(jwk.get("x")):
                raise KeyStoreError(f"{where}: 'x' is not a 32-byte base64url public key (RFC 8037)")
            keys.append(
                KeyInfo(
                    kid=kid,
                    use=use,
                    alg=str(jwk["alg"]),
                    created=created,
                    expires=expires,
                    status=key_status,
                    public_jwk=public,
                    thumbprint=thumbprint(public),
                    revoked_at=revoked_at,
                    revocation_reason=reason,
                    retired_at=retired_at,
                )
            )
        issued = doc.get("issued")
        try:
            issued_at = _timestamp(issued) if issued is not None else None
        except ValueError:
            raise KeyStoreError(
                f"{source}: 'issued' {describe_value(issued)} is not an RFC 3339 timestamp",
                hint="use a file written by `cti-exchange keys export`",
            ) from None
        return cls(agency=agency, keys=tuple(keys), issued=issued_at)


def _timestamp(value: Any) -> datetime:
    """An RFC 3339 timestamp from untrusted data; ValueError for anything else."""
    if not isinstance(value, str):
        raise ValueError(f"not a timestamp: {value!r}")
    return parse_timestamp(value)


def _is_raw_32_bytes(value: Any) -> bool:
    if not isinstance(value, str) or len(value) != 43:  # 32 bytes, base64url without padding
        return False
    try:
        return len(base64.urlsafe_b64decode(value + "=")) == 32
    except ValueError:
        return False


def _key_use(jwk: dict[str, Any], where: str) -> KeyUse:
    kty, crv, alg = jwk.get("kty"), jwk.get("crv"), jwk.get("alg")
    if kty == "OKP" and crv == "Ed25519" and alg == SIGNING_ALG and jwk.get("use", "sig") == "sig":
        return KeyUse.SIG
    if kty == "OKP" and crv == "X25519" and alg == KEY_AGREEMENT_ALG and jwk.get("use", "enc") == "enc":
        return KeyUse.ENC
    raise KeyStoreError(
        f"{where} is not an Ed25519/{SIGNING_ALG} signing key or an X25519/{KEY_AGREEMENT_ALG} "
        f"encryption key (kty={kty!r}, crv={crv!r}, alg={alg!r})"
    )
