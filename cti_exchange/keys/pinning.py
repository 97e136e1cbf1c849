"""Rules for trusting a partner's keys: the first pin, and later key updates.

First pin (`partners add`): the document must be signed by a key whose RFC 7638 thumbprint the
partner gave us out of band. Update (`partners update-keys`): the new document must be signed by
a key we already trust (the signing key pinned as the partner's current one), or, when that is
impossible (the partner revoked every key we knew), confirmed by a thumbprint given out of band
again. Revocations are sticky: no later document can bring a revoked key back, and key material
under a known kid can never change.

The newest trusted document is the partner's whole key list. A pinned key it no longer lists
is withdrawn (revoked from its creation): otherwise a key added with a stolen signing key would
outlive the revocation of the stolen key. cti-exchange's own `keys export` lists every key an
agency ever had, so an honest partner never drops one. A key that pins or vouches for an update
must be valid now (not expired, not yet to come), and a document may name one current signing
key only: the one pinned as the partner's anchor. A document dated beyond the clock skew is
refused, so a stolen key cannot date one far ahead and make every later one a "rollback".

A key pinned as retired vouches for nothing: it signs nothing dated after its retirement
(KeyInfo.check_usable_for_signature_at), and a document it could vouch for would be dated after
that, since the pinned document that retired it came first (else the new one is a rollback).
A leaked old key must not be able to pin its holder's key as the partner's current one. A
partner that rotated twice before we update still goes through: the key we pinned as current
signs its export, whatever that export now calls it (`keys export` signs with every signing key
neither revoked nor expired).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from cti_exchange.clock import stix_timestamp
from cti_exchange.errors import IntegrityError, UsageError
from cti_exchange.keys.key_document import VerifiedKeyDocument
from cti_exchange.keys.model import DEFAULT_CLOCK_SKEW, KeyInfo, Keyring, KeyStatus, KeyUse

MAX_CLOCK_SKEW = DEFAULT_CLOCK_SKEW


def normalise_fingerprint(text: str) -> str:
    return "".join(text.split()).rstrip("=")


def pin_first_keys(document: VerifiedKeyDocument, fingerprint: str, *, now: datetime) -> KeyInfo:
    """The signing key the out-of-band fingerprint names, if it signed the document."""
    _check_document(document.keyring, now)
    wanted = normalise_fingerprint(fingerprint)
    for kid in document.signer_kids:
        key = document.keyring.find(kid)
        if key is not None and key.thumbprint == wanted:
            _check_valid_now(key, now)
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
    # Signing keys the document no longer lists, retired at its date rather than withdrawn (the
    # partner lost them: `old_keys_lost`; its lost encryption keys are revoked).
    retired_lost: tuple[str, ...] = ()


def merge_key_update(
    pinned: Keyring,
    document: VerifiedKeyDocument,
    *,
    fingerprint: str | None,
    now: datetime,
    old_keys_lost: bool = False,
) -> KeyUpdate:
    """The pinned key ring updated with `document`. With `old_keys_lost` (the partner lost its
    keys, a forgotten passphrase or a profile made again, and confirmed a new signing key out
    of band: only with `fingerprint`), the signing keys the document no longer lists are
    retired at its date, so what they signed before stays valid, instead of withdrawn from their
    creation, which rejects everything they ever signed (the module docstring says why that is
    the rule otherwise); its encryption keys are revoked, so that what was sealed to them and
    not confirmed is sent again to its new key."""
    incoming = document.keyring
    if incoming.agency.id != pinned.agency.id:
        # Another agency's own file, handed to the wrong partner's update: an operator's mix-up
        # (exit 2), not a forgery; nothing in it is trusted or pinned.
        raise UsageError(
            f"the file holds keys of {incoming.agency.id}, not of {pinned.agency.id}",
            hint="check you picked the right partner and file",
        )
    _check_document(incoming, now)
    # A pinned date beyond the skew came from a document dated ahead (before that was refused):
    # it cannot make every honest document a rollback.
    pinned_date_credible = pinned.issued is not None and pinned.issued <= now + MAX_CLOCK_SKEW
    if pinned_date_credible and incoming.issued and pinned.issued and incoming.issued < pinned.issued:
        raise IntegrityError(
            "the file is older than the keys already pinned (a rollback)",
            hint="ask the partner for a fresh `keys export`",
        )
    trusted_by = _trust_for_update(pinned, incoming, document, fingerprint, now)
    if old_keys_lost and not trusted_by.startswith("fingerprint"):
        raise UsageError(
            "the file is signed by a key already pinned for the partner: it still has its keys, "
            "so it did not lose them",
            hint="run it again without --old-keys-lost",
        )

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
        merged[key.kid] = _keep_first_retirement(old, key, pinned)
    anchor_kid = incoming.current(KeyUse.SIG).kid  # exactly one (_check_document)
    if merged[anchor_kid].status is KeyStatus.REVOKED:
        revoked_at = merged[anchor_kid].revoked_at
        raise IntegrityError(
            f"the file names {anchor_kid} as the current signing key, but that key was revoked"
            + (f" at {stix_timestamp(revoked_at)}" if revoked_at else "")
            + "; a revoked key is never trusted again",
            hint="treat it as a security event: confirm the partner's keys out of band and ask "
            "for a fresh `keys export`",
        )
    listed = {key.kid for key in incoming.keys}
    retired_lost: list[str] = []
    for kid, key in list(merged.items()):
        if kid not in listed and key.status is not KeyStatus.REVOKED and old_keys_lost:
            if key.use is KeyUse.ENC:
                # Nothing of the past depends on an encryption key, and the partner can no longer
                # open what is sealed to it: revoked, so that envelopes posted to it and not
                # confirmed are queued again, re-addressed to its new key.
                merged[kid] = replace(
                    key,
                    status=KeyStatus.REVOKED,
                    revoked_at=incoming.issued or now,
                    revocation_reason="lost: not in the partner's newest key file",
                )
                newly_revoked.append(kid)
            elif key.status is KeyStatus.CURRENT:
                # Without the clock-skew grace a rotation gets (a sync signing as it happens):
                # the partner lost the key, so nothing it signs after the new file is the partner's.
                merged[kid] = key.retired((incoming.issued or now) - MAX_CLOCK_SKEW)
                retired_lost.append(kid)
        elif kid not in listed and key.status is not KeyStatus.REVOKED:
            merged[kid] = replace(
                key,
                status=KeyStatus.REVOKED,
                revoked_at=key.created,
                revocation_reason="withdrawn: not in the partner's newest key file",
            )
            newly_revoked.append(kid)
    keys = tuple(sorted(merged.values(), key=lambda k: (k.created, k.kid)))
    keyring = Keyring(agency=incoming.agency, keys=keys, issued=incoming.issued or now)
    anchor = keyring.current(KeyUse.SIG)
    return KeyUpdate(
        keyring=keyring,
        trusted_by=trusted_by,
        added=tuple(added),
        newly_revoked=tuple(newly_revoked),
        anchor=anchor,
        retired_lost=tuple(retired_lost),
    )


def _keep_first_retirement(old: KeyInfo, new: KeyInfo, pinned: Keyring) -> KeyInfo:
    """A retirement once learned is not moved later by a later file (as a revocation is not):
    that would widen what the retired key may have signed."""
    known = old.retired_at or pinned.retirement_time(old)
    if known is None or new.status is KeyStatus.CURRENT:
        return new
    if new.retired_at is None or new.retired_at > known:
        return replace(new, retired_at=known)
    return new


def _check_document(keyring: Keyring, now: datetime) -> None:
    if keyring.issued is not None and keyring.issued > now + MAX_CLOCK_SKEW:
        raise IntegrityError(
            f"the key file is dated {stix_timestamp(keyring.issued)}, in the future",
            hint="check the partner's clock and ask for a fresh `keys export`",
        )
    current = [k.kid for k in keyring.keys if k.use is KeyUse.SIG and k.status is KeyStatus.CURRENT]
    if len(current) != 1:
        raise IntegrityError(
            f"the key file names {len(current)} current signing keys ({', '.join(current) or 'none'}); "
            "there must be exactly one",
            hint="ask the partner for a fresh `keys export`",
        )


def _valid_now(key: KeyInfo, now: datetime) -> bool:
    # Arithmetic on `now` only: a key dated 0001-01-01 must not overflow (OverflowError).
    return key.created <= now + MAX_CLOCK_SKEW and now <= key.expires


def _check_valid_now(key: KeyInfo, now: datetime) -> None:
    if not _valid_now(key, now):
        raise IntegrityError(
            f"key {key.kid} is valid from {stix_timestamp(key.created)} to "
            f"{stix_timestamp(key.expires)}, not now: it cannot vouch for keys",
            hint="if it expired, ask the partner to rotate its keys (`keys rotate`) and send a fresh "
            "`keys export`; if it is not valid yet, compare the two machines' clocks",
        )


def _trust_for_update(
    pinned: Keyring, incoming: Keyring, document: VerifiedKeyDocument, fingerprint: str | None, now: datetime
) -> str:
    for kid in document.signer_kids:
        known = pinned.find(kid)
        new = incoming.find(kid)
        if (
            known is not None
            and new is not None
            and known.use is KeyUse.SIG
            and known.status is KeyStatus.CURRENT  # not a retired one (module docstring)
            and known.public_jwk == new.public_jwk
            and _valid_now(known, now)
        ):
            return f"pinned-key {kid}"
    if fingerprint:
        wanted = normalise_fingerprint(fingerprint)
        signer = next(
            (
                k
                for kid in document.signer_kids
                if (k := incoming.find(kid)) is not None and k.thumbprint == wanted
            ),
            None,
        )
        if signer is not None:
            _check_valid_now(signer, now)
            return f"fingerprint {wanted}"
        raise IntegrityError(
            f"fingerprint {wanted} does not match any key that signed the file",
            hint="compare the fingerprint with the partner again, out of band",
        )
    retired = [
        kid
        for kid in document.signer_kids
        if (known := pinned.find(kid)) is not None and known.status is KeyStatus.RETIRED
    ]
    message = "the new key file is not signed by any key already pinned for this partner"
    if retired:
        message += f" as current (only by {', '.join(retired)}, pinned as retired, which vouches for nothing)"
    raise IntegrityError(
        message, hint="confirm the partner's new signing key out of band and pass --fingerprint"
    )
