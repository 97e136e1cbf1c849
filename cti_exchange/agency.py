"""Setting up our agency: `init`, and the life of our keys (show, export, rotate, revoke).

These functions are the Python API behind the `init` and `keys` commands.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from cti_exchange.audit.trail import record_event, recorded
from cti_exchange.clock import stix_timestamp, utc_now
from cti_exchange.errors import KeyStoreError, UsageError
from cti_exchange.home.passphrase import check_new_passphrase
from cti_exchange.home.profile_home import ProfileHome, validate_profile_data
from cti_exchange.keys.key_document import sign_key_document
from cti_exchange.keys.material import generate_key_pair
from cti_exchange.keys.model import AgencyRef, KeyInfo, Keyring, KeyStatus, KeyUse
from cti_exchange.profile.model import Operations, Profile, SharingDefaults, new_identity
from cti_exchange.stix.tlp import Tlp


@dataclass(frozen=True)
class InitResult:
    profile: Profile
    keyring: Keyring


def country_from_agency_id(agency_id: str) -> str | None:
    """cert-fr -> FR, cert-in -> IN: the convention national CERTs follow."""
    tail = agency_id.rsplit("-", 1)[-1]
    return tail.upper() if len(tail) == 2 and tail.isalpha() else None


def check_init(home: ProfileHome, *, agency_id: str, country: str | None, default_tlp: Tlp) -> str:
    """What `init` can refuse before anyone types a passphrase; the country it will record."""
    if home.root.exists() and not home.root.is_dir():
        raise UsageError(
            f"the profile home {home.root} is a file, not a directory",
            hint="pass --home (or set CTI_EXCHANGE_HOME to) a new directory, or an empty one",
        )
    country = (country or country_from_agency_id(agency_id) or "").upper()
    if not country:
        raise UsageError(
            f"cannot tell the country of agency {agency_id!r}",
            hint="pass --country with its ISO 3166 code, e.g. --country FR",
        )
    if not (len(country) == 2 and country.isascii() and country.isalpha()):
        # Said here, not by the profile schema's pattern (`agency.country: does not have the
        # expected form (^[A-Z]{2}$)`), which names a config field the analyst never typed.
        raise UsageError(
            f"--country {country!r} is not a two-letter ISO 3166 country code",
            hint="for example --country FR or --country IN",
        )
    if default_tlp is Tlp.CLEAR:
        raise UsageError("the default TLP may not be CLEAR", hint="use green, amber or stricter")
    if home.exists():
        raise UsageError(
            f"a profile already exists at {home.config_path}; init never overwrites it",
            hint="use another --home (or CTI_EXCHANGE_HOME) for a second agency",
        )
    if home.keys.exists():
        raise KeyStoreError(
            f"{home.keys.dir} already holds keys but there is no profile (an interrupted init?)",
            hint=f"move {home.keys.dir} aside and run init again",
        )
    return country


def init_agency(
    home: ProfileHome,
    *,
    agency_id: str,
    name: str,
    country: str | None,
    passphrase: str,
    default_tlp: Tlp = Tlp.AMBER,
    key_lifetime_days: int = 365,
    now: datetime | None = None,
) -> InitResult:
    moment = now or utc_now()
    country = check_init(home, agency_id=agency_id, country=country, default_tlp=default_tlp)
    check_new_passphrase(passphrase)
    profile = Profile(
        agency_id=agency_id,
        agency_name=name,
        country=country,
        identity=new_identity(agency_id, name, stix_timestamp(moment)),
        store_path="store.sqlite",
        sharing=SharingDefaults(default_tlp=default_tlp),
        operations=Operations(key_lifetime_days=key_lifetime_days),
    )
    private = {}
    infos = []
    for use in (KeyUse.SIG, KeyUse.ENC):
        private_jwk, info = generate_key_pair(use, agency_id, moment, key_lifetime_days)
        private[info.kid] = private_jwk
        infos.append(info)
    keyring = Keyring(
        agency=AgencyRef(id=agency_id, name=name, country=country, identity_id=profile.identity_id),
        keys=tuple(infos),
        issued=moment,
    )
    # Validate the profile before writing anything, then keys, then the config last: the
    # config's presence is what marks a complete profile.
    validate_profile_data(profile.to_dict(), source="the new profile")
    home.keys.create(keyring, private, passphrase)
    home.create_profile(profile)
    home.remember_unlocked(passphrase, private)
    record_event(
        home,
        "key-change",
        details={"change": "created", "keys": {k.kid: k.thumbprint for k in keyring.keys}},
        now=moment,
    )
    return InitResult(profile=profile, keyring=keyring)


def export_key_document(home: ProfileHome) -> bytes:
    """Our signed public key document, for partners to pin or update."""
    home.load_profile()
    return sign_key_document(home.keyring(), home.private_keys())


def rotate_keys(
    home: ProfileHome,
    uses: tuple[KeyUse, ...] = (KeyUse.SIG, KeyUse.ENC),
    now: datetime | None = None,
) -> list[KeyInfo]:
    """New current keys; the old ones are retired but kept to verify and decrypt older material."""
    moment = now or utc_now()
    profile = home.load_profile()
    keyring = home.keyring()
    private = dict(home.private_keys())
    new_infos: list[KeyInfo] = []
    keys = []
    for key in keyring.keys:
        if key.use in uses and key.status is KeyStatus.CURRENT:
            key = key.retired(moment)  # `retired_at`: it signs nothing dated after this
        keys.append(key)
    for use in uses:
        private_jwk, info = generate_key_pair(
            use, profile.agency_id, moment, profile.operations.key_lifetime_days
        )
        private[info.kid] = private_jwk
        keys.append(info)
        new_infos.append(info)
    updated = keyring.replace_keys(tuple(keys), issued=moment)
    passphrase = home.passphrase()
    details = {"change": "rotated", "new_keys": {k.kid: k.thumbprint for k in new_infos}}
    with recorded(home, "key-change", details=details, now=moment):
        home.keys.save(updated, private, passphrase)
    home.remember_unlocked(passphrase, private)
    return new_infos


def change_passphrase(home: ProfileHome, new_passphrase: str, now: datetime | None = None) -> None:
    """Encrypts our private keys again under `new_passphrase` (unlocked with the current one,
    as they are on disk now: call it under the profile lock);
    the keys themselves, and what partners pinned, do not change. Recorded in the audit trail
    (without either passphrase). Copies of keys/private.jwe made before (backups) keep the old
    passphrase."""
    moment = now or utc_now()
    home.load_profile()
    # Read again from disk under the caller's lock, not the copy unlocked before the prompts: a
    # `keys rotate` in between would otherwise lose the new keys' private halves.
    private = dict(home.keys.unlock(home.passphrase()))
    if new_passphrase == home.passphrase():
        raise UsageError("the new passphrase is the current one", hint="choose another")
    keyring = home.keyring()
    with recorded(home, "key-change", details={"change": "passphrase"}, now=moment):
        home.keys.save(keyring, private, new_passphrase)
    home.remember_unlocked(new_passphrase, private)


@dataclass(frozen=True)
class RevokeResult:
    revoked: KeyInfo
    replacement: KeyInfo | None


def revoke_key(home: ProfileHome, kid: str, reason: str | None, now: datetime | None = None) -> RevokeResult:
    """Marks a key revoked from now on; a revoked current key is replaced at once."""
    moment = now or utc_now()
    home.load_profile()
    keyring = home.keyring()
    target = keyring.find(kid)
    if target is None:
        known = ", ".join(key.kid for key in keyring.keys)
        raise UsageError(f"no key {kid!r} in our key ring", hint=f"known keys: {known}")
    if target.status is KeyStatus.REVOKED:
        raise UsageError(f"key {kid} is already revoked")
    revoked = replace(target, status=KeyStatus.REVOKED, revoked_at=moment, revocation_reason=reason or None)
    keys = tuple(revoked if key.kid == kid else key for key in keyring.keys)
    details = {"change": "revoked", "kid": kid, "reason": reason}
    with recorded(home, "key-change", details=details, now=moment):
        home.keys.save_keyring(keyring.replace_keys(keys, issued=moment))
    replacement = None
    if target.status is KeyStatus.CURRENT:
        replacement = rotate_keys(home, uses=(target.use,), now=moment)[0]
    return RevokeResult(revoked=revoked, replacement=replacement)
