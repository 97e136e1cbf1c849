"""Rules for trusting a partner's keys: the first pin, and later key updates.

First pin (`partners add`): the document must be signed by a key whose RFC 7638 thumbprint the
partner gave us out of band. Update (`partners update-keys`): the new document must be signed by
a key we already trust (pinned, signing, not revoked), or, when that is impossible (the partner
revoked every key we knew), confirmed by a thumbprint given out of band again. Revocations are
sticky: no later document can bring a revoked key back, and key material under a known kid
can never change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cti_exchange.errors import IntegrityError
from cti_exchange.keys.key_document import VerifiedKeyDocument
from cti_exchange.keys.model import KeyInfo, Keyring, KeyStatus, KeyUse


def normalise_fingerprint(text: str) -> str:
    return "".join(text.split()).rstrip("=")


def pin_first_keys(document: VerifiedKeyDocument, fingerprint: str) -> KeyInfo:
    """The signing key the out-of-band fingerprint names, if it signed the document."""
    wanted = normalise_fingerprint(fingerprint)
    for kid in document.signer_kids:
        key = document.keyring.find(kid)
        if key is not None and key.thumbprint == wanted:
            return key
    carried = document.keyring.by_thumbprint(wanted)
    if carried is not None:
        raise IntegrityError(
            f"the key with fingerprint {wanted} is in the file but did not sign it "
            f"(status {carried.status.value})",
            hint="ask the partner for the fingerprint of its current signing key (`keys show`)",
        )
    raise IntegrityError(
        f"fingerprint {wanted} does not match any signing key in the file "
        f"(signed by {', '.join(document.signer_kids)})",
        hint="compare the fingerprint with the partner again, out of band, before pinning",
    )


@dataclass(frozen=True)
class KeyUpdate:
    keyring: Keyring
    trusted_by: str  # "pinned-key <kid>" or "fingerprint <thumbprint>"
    added: tuple[str, ...]
    newly_revoked: tuple[str, ...]
    anchor: KeyInfo  # the signing key now pinned (the document's current signing key)


def merge_key_update(
    pinned: Keyring, document: VerifiedKeyDocument, *, fingerprint: str | None, now: datetime
) -> KeyUpdate:
    incoming = document.keyring
    if incoming.agency.id != pinned.agency.id:
        raise IntegrityError(
            f"the file holds keys of {incoming.agency.id}, not of {pinned.agency.id}",
            hint="check you picked the right partner and file",
        )
    if pinned.issued and incoming.issued and incoming.issued < pinned.issued:
        raise IntegrityError(
            "the file is older than the keys already pinned (a rollback)",
            hint="ask the partner for a fresh `keys export`",
        )
    trusted_by = _trust_for_update(pinned, incoming, document, fingerprint)

    merged: dict[str, KeyInfo] = {key.kid: key for key in pinned.keys}
    added: list[str] = []
    newly_revoked: list[str] = []
    for key in incoming.keys:
        old = merged.get(key.kid)
        if old is None:
            merged[key.kid] = key
            added.append(key.kid)
            continue
        if old.public_jwk != key.public_jwk:
            raise IntegrityError(
                f"key {key.kid} has different key material than the one pinned",
                hint="a kid must never be reused; contact the partner out of band",
            )
        if old.status is KeyStatus.REVOKED:
            continue  # sticky: a revoked key stays revoked, at its first revocation time
        if key.status is KeyStatus.REVOKED:
            newly_revoked.append(key.kid)
        merged[key.kid] = key
    keys = tuple(sorted(merged.values(), key=lambda k: (k.created, k.kid)))
    keyring = Keyring(agency=incoming.agency, keys=keys, issued=incoming.issued or now)
    anchor = keyring.current(KeyUse.SIG)
    return KeyUpdate(
        keyring=keyring,
        trusted_by=trusted_by,
        added=tuple(added),
        newly_revoked=tuple(newly_revoked),
        anchor=anchor,
    )


def _trust_for_update(
    pinned: Keyring, incoming: Keyring, document: VerifiedKeyDocument, fingerprint: str | None
) -> str:
    for kid in document.signer_kids:
        known = pinned.find(kid)
        new = incoming.find(kid)
        if (
            known is not None
            and new is not None
            and known.use is KeyUse.SIG
            and known.status is not KeyStatus.REVOKED
            and known.public_jwk == new.public_jwk
        ):
            return f"pinned-key {kid}"
    if fingerprint:
        wanted = normalise_fingerprint(fingerprint)
        if wanted in document.signer_thumbprints():
            return f"fingerprint {wanted}"
        raise IntegrityError(
            f"fingerprint {wanted} does not match any key that signed the file",
            hint="compare the fingerprint with the partner again, out of band",
        )
    raise IntegrityError(
        "the new key file is not signed by any key already pinned for this partner",
        hint="confirm the partner's new signing key out of band and pass --fingerprint",
    )
