"""Who takes part in an exchange, built from the profile home: our keys as sender and receiver,
and each partner's pinned keys."""

from __future__ import annotations

from datetime import datetime, timedelta

from cti_exchange.envelope.open import ReceiverContext
from cti_exchange.envelope.seal import RecipientKey, SenderKeys
from cti_exchange.errors import KeyStoreError
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.keys.model import Keyring, KeyStatus, KeyUse
from cti_exchange.profile.model import PartnerConfig
from cti_exchange.stix.validate import validate_bundle
from cti_exchange.store.store import Store


def sender_keys(home: ProfileHome) -> SenderKeys:
    profile = home.load_profile()
    keyring = home.keyring()
    signing = keyring.current(KeyUse.SIG)
    private = home.private_keys()
    if signing.kid not in private:
        raise KeyStoreError(f"the private half of {signing.kid} is missing from {home.keys.private_path}")
    return SenderKeys(
        agency_id=profile.agency_id,
        signing_key=private[signing.kid],
        own_encryption_key=keyring.current(KeyUse.ENC).public_jwk,
    )


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


def all_keyrings(home: ProfileHome) -> dict[str, Keyring]:
    """Pinned partner rings by agency id, and our own (to read our own sent copies)."""
    profile = home.load_profile()
    rings = {p.agency_id: home.partner_keyring(p) for p in profile.partners.values()}
    rings[profile.agency_id] = home.keyring()
    return rings


def receiver_context(home: ProfileHome, store: Store, now: datetime) -> ReceiverContext:
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
        keyrings=all_keyrings(home),
        now=now,
        seen_envelope=store.inbound.seen_envelope,
        channel_state=store.inbound.channel_state,
        validate_bundle=validate_bundle,
        max_clock_skew=timedelta(seconds=limits.max_clock_skew_seconds),
        max_age=timedelta(days=limits.max_age_days),
        max_plaintext_bytes=limits.max_plaintext_bytes,
    )
