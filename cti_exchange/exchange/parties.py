"""Who takes part in an exchange, built from the profile home: our keys as sender and receiver,
and each partner's pinned keys."""

from __future__ import annotations

from datetime import datetime, timedelta

from cti_exchange.clock import stix_timestamp, utc_now
from cti_exchange.envelope.open import ReceiverContext
from cti_exchange.envelope.seal import RecipientKey, SenderKeys
from cti_exchange.errors import ConfigError, KeyStoreError
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.keys.model import KeyInfo, Keyring, KeyStatus, KeyUse
from cti_exchange.profile.model import PartnerConfig
from cti_exchange.stix.validate import validate_bundle
from cti_exchange.store.store import Store


def sender_keys(home: ProfileHome, now: datetime | None = None) -> SenderKeys:
    """Our keys for sealing at `now`. Called before any channel position is taken, so a key
    that cannot seal stops the run with nothing consumed."""
    profile = home.load_profile()
    keyring = home.keyring()
    moment = now or utc_now()
    signing = keyring.current(KeyUse.SIG)
    encryption = keyring.current(KeyUse.ENC)
    for key in (signing, encryption):
        check_own_key_usable(key, moment)
    private = home.private_keys()
    if signing.kid not in private:
        raise KeyStoreError(f"the private half of {signing.kid} is missing from {home.keys.private_path}")
    return SenderKeys(
        agency_id=profile.agency_id,
        signing_key=private[signing.kid],
        own_encryption_key=encryption.public_jwk,
    )


def check_own_key_usable(key: KeyInfo, moment: datetime) -> None:
    """Our current key may seal an envelope issued at `moment`: the receiver's rule for the
    signing key (created before `issued_at`, not expired at it: KeyInfo.check_usable_for_
    signature_at, which allows no skew either), and the same for the encryption key our own copy
    is wrapped for, so a key is never used past the lifetime `keys rotate` is there to bound.
    An envelope signed with an expired key is quarantined by every partner as `expired-key`, and
    each one after it on the channel is held as a sequence gap: refused here instead."""
    what = "signing" if key.use is KeyUse.SIG else "encryption"
    if moment > key.expires:
        raise KeyStoreError(
            f"our current {what} key {key.kid} expired at {stix_timestamp(key.expires)}: partners "
            "would refuse what it seals; nothing was sealed",
            hint="run `cti-exchange keys rotate`, then send partners a fresh `keys export`",
        )
    if moment < key.created:
        raise KeyStoreError(
            f"our current {what} key {key.kid} is dated {stix_timestamp(key.created)}, after our "
            f"clock ({stix_timestamp(moment)}): partners would refuse what it seals; nothing was sealed",
            hint="check this machine's clock; if the key's date is wrong, run `cti-exchange keys rotate`",
        )


def sealing_key_problem(home: ProfileHome, now: datetime) -> KeyStoreError | None:
    """Why our current keys cannot seal now (sender_keys would refuse), or None."""
    keyring = home.keyring()
    try:
        for use in (KeyUse.SIG, KeyUse.ENC):
            check_own_key_usable(keyring.current(use), now)
    except KeyStoreError as problem:
        return problem
    return None


def own_keys_expiring(home: ProfileHome, now: datetime, within: timedelta) -> list[KeyInfo]:
    """Our current keys that expire within `within` of `now` (and have not yet)."""
    return [
        key
        for key in home.keyring().keys
        if key.status is KeyStatus.CURRENT and now <= key.expires and key.expires - now <= within
    ]


def recipient_key(home: ProfileHome, partner: PartnerConfig) -> RecipientKey:
    keyring = home.partner_keyring(partner)
    try:
        encryption = keyring.current(KeyUse.ENC)
    except KeyStoreError:
        raise KeyStoreError(
            f"partner {partner.name} has no current encryption key pinned",
            hint=f"ask it for a fresh `keys export`, then `partners update-keys {partner.name}`",
        ) from None
    return RecipientKey(agency_id=partner.agency_id, encryption_key=encryption.public_jwk)


def all_keyrings(home: ProfileHome, *, needed: PartnerConfig | None = None) -> dict[str, Keyring]:
    """Pinned partner rings by agency id, and our own (to read our own sent copies).

    With `needed` (a pull from that partner, or a posting to it), only its ring and ours must
    be readable: another partner's ring whose file is unsafe or unreadable (left group-writable,
    malformed) is left out, so an envelope claiming that partner as sender is refused
    (unknown-sender), never opened with keys we cannot trust, and a queued envelope's entry for
    it is left as it is (envelope/readdress.py). That partner's own pull and postings report
    the file's error; the others go on. A ring file replaced since it was pinned
    (IntegrityError) is a security event and still stops every pull and posting.
    """
    profile = home.load_profile()
    rings = {}
    for partner in profile.partners.values():
        try:
            rings[partner.agency_id] = home.partner_keyring(partner)
        except (ConfigError, KeyStoreError):
            if needed is None or partner.name == needed.name:
                raise
    rings[profile.agency_id] = home.keyring()
    return rings


def receiver_context(
    home: ProfileHome, store: Store, now: datetime, *, partner: PartnerConfig | None = None
) -> ReceiverContext:
    """What opening envelopes needs; `partner`: the one whose collection is read (all_keyrings)."""
    profile = home.load_profile()
    keyring = home.keyring()
    private = home.private_keys()
    decryption = {
        key.kid: private[key.kid]
        for key in keyring.keys
        if key.use is KeyUse.ENC and key.kid in private and key.status is not KeyStatus.REVOKED
    }
    limits = profile.envelope
    return ReceiverContext(
        agency_id=profile.agency_id,
        decryption_keys=decryption,
        keyrings=all_keyrings(home, needed=partner),
        now=now,
        seen_envelope=store.inbound.seen_envelope,
        channel_state=store.inbound.channel_state,
        validate_bundle=validate_bundle,
        max_clock_skew=timedelta(seconds=limits.max_clock_skew_seconds),
        max_age=timedelta(days=limits.max_age_days),
        max_plaintext_bytes=limits.max_plaintext_bytes,
    )
