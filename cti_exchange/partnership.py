"""Partner agencies: pinning their keys, updating them, and their TAXII and sharing settings.

These functions are the Python API behind the `partners` commands.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from cti_exchange.audit.trail import record_event, recorded
from cti_exchange.clock import parse_timestamp, stix_timestamp, utc_now
from cti_exchange.envelope.readdress import has_usable_entry, recipient_kids
from cti_exchange.errors import ConfigError, IntegrityError, UsageError
from cti_exchange.home.profile_home import ProfileHome, validate_profile_data
from cti_exchange.keys.key_document import verify_key_document
from cti_exchange.keys.model import AGENCY_ID, KeyCheckError, Keyring, KeyUse
from cti_exchange.keys.pinning import KeyUpdate, merge_key_update, pin_first_keys
from cti_exchange.profile.model import (
    EXAMPLE_COLLECTION_ID,
    PartnerConfig,
    TaxiiSettings,
    collection_id_problem,
    identity_id_for,
)
from cti_exchange.stix.tlp import Tlp
from cti_exchange.store.envelopes_by_signer import accepted_signed_by, reject_objects_of
from cti_exchange.store.outbound import POSTED
from cti_exchange.store.receipts import receipt_only_envelopes
from cti_exchange.store.store import open_store
from cti_exchange.taxii.endpoint import check_url_is_safe, shown_url
from cti_exchange.taxii.secrets import refuse_our_own_secrets


def check_claimed_identity(agency_id: str, identity_id: str | None) -> None:
    """A partner's STIX identity decides which objects it may version in our store
    (store/objects.py): it must be the one its agency id gives (profile.model.identity_id_for),
    not one it claims, such as ours or another partner's."""
    if identity_id is not None and identity_id != identity_id_for(agency_id):
        raise IntegrityError(
            f"the key file of {agency_id} names the STIX identity {identity_id}, but {agency_id}'s "
            f"is {identity_id_for(agency_id)}",
            hint="the file was not written by `cti-exchange keys export` of that agency; ask for a fresh one",
        )


def check_partner_name(name: str) -> None:
    """A partner's local name names its files in `partners/` and its entry in config.toml
    (schemas/profile.schema.json): checked before anything is written, so `../x` or `a/b`
    can never place a file outside `partners/`."""
    if not AGENCY_ID.fullmatch(name):
        raise UsageError(
            f"partner name {name!r} is not usable: lower-case letters, digits and '-', starting "
            "with a letter or digit, at most 63 characters",
            hint="use the partner's agency id, e.g. cert-in",
        )


def check_collection_id(value: str, *, option: str) -> None:
    """A collection id given to `partners set` must be one (a UUID, TAXII 2.1 section 5.2.1):
    a placeholder (`ID`), an empty value or an option taken for one was stored and failed
    only at the next pull or push, as HTTP 404. Refused before anything is saved."""
    problem = collection_id_problem(value)
    if problem is not None:
        raise UsageError(
            f"{option} {problem}",
            hint=f"give the collection's id, a UUID such as {EXAMPLE_COLLECTION_ID}, as the "
            "partner's server operator gives it (`cti-exchange serve` prints each one); nothing "
            "was changed",
        )


# An environment variable's name as config.toml takes it (schemas/profile.schema.json).
ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")


def check_secret_env(value: str) -> None:
    """`--secret-env` names the variable that holds the TAXII secret. A value that is no such
    name is most often the secret itself, typed where its variable's name goes: refused before
    it is saved or recorded, and never repeated (it is in the shell's history already)."""
    if ENV_NAME.fullmatch(value) is None:
        raise UsageError(
            "--secret-env takes the NAME of an environment variable (e.g. CTI_TAXII_SECRET), "
            "not the secret; what was given is no such name (capital letters, digits and '_')",
            hint="put the secret in that variable where push and pull run "
            "(`export CTI_TAXII_SECRET=...`) or in a 0600 file for --secret-file; if you typed "
            "the secret here, it is in your shell history: remove it there and have the "
            "partner change it; nothing was changed",
        )


def get_partner(home: ProfileHome, name: str) -> PartnerConfig:
    profile = home.load_profile()
    partner = profile.partners.get(name)
    if partner is None:
        known = ", ".join(sorted(profile.partners)) or "none yet"
        folded = [other for other in profile.partners if other.casefold() == name.casefold()]
        close = folded or difflib.get_close_matches(name, list(profile.partners), n=1, cutoff=0.75)
        guess = f"did you mean {close[0]!r}? " if close else ""
        raise UsageError(
            f"no partner named {name!r}",
            hint=f"{guess}known partners: {known}; add one with `cti-exchange partners add`",
        )
    return partner


def add_partner(
    home: ProfileHome,
    name: str,
    document: bytes,
    *,
    fingerprint: str,
    source: str,
    max_tlp: Tlp = Tlp.AMBER,
    allow_red: bool = False,
    now: datetime | None = None,
) -> tuple[PartnerConfig, Keyring]:
    check_partner_name(name)
    profile = home.load_profile()
    if name in profile.partners:
        raise UsageError(
            f"partner {name!r} is already pinned",
            hint=f"use `cti-exchange partners update-keys {name}` for new keys",
        )
    verified = verify_key_document(document, source=source)
    anchor = pin_first_keys(verified, fingerprint, now=now or utc_now())
    keyring = verified.keyring
    if keyring.agency.id == profile.agency_id:
        raise UsageError("that key file is our own agency's", hint="pin the partner's file instead")
    check_claimed_identity(keyring.agency.id, keyring.agency.identity_id)
    other = profile.partner_by_agency(keyring.agency.id)
    if other is not None:
        raise UsageError(f"agency {keyring.agency.id} is already pinned as partner {other.name!r}")
    partner = PartnerConfig(
        name=name,
        agency_id=keyring.agency.id,
        display_name=keyring.agency.name,
        fingerprint=anchor.thumbprint,
        jwks=str(home.partner_keys_path(name).relative_to(home.root)),
        max_tlp=max_tlp,
        allow_red=allow_red,
        country=keyring.agency.country,
        identity_id=keyring.agency.identity_id,
        added=stix_timestamp(now or utc_now()),
    )
    # The new entry is judged before the pinned files are written: a refusal leaves nothing.
    updated = profile.with_partner(partner)
    validate_profile_data(updated.to_dict(), source=f"the entry for partner {name} made from {source}")
    details = {
        "change": "partner-pinned",
        "agency": keyring.agency.id,
        "pinned_signing_key": anchor.thumbprint,
        "keys": {k.kid: k.thumbprint for k in keyring.keys},
    }
    with recorded(home, "key-change", partner=name, details=details, now=now):
        home.save_partner_keys(name, keyring, verified.raw)
        home.save_profile(updated)
    return partner, keyring


@dataclass(frozen=True)
class SignedAfterRevocation:
    """An envelope we accepted that the keys just pinned refuse: signed by a key revoked (or
    retired) before the time it claims. Whoever held the key may have made it."""

    envelope_id: str
    signer_kid: str
    issued_at: str
    reason: str  # the receiver's reason for it now: revoked-key, retired-key, ...
    detail: str
    objects_rejected: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "envelope_id": self.envelope_id,
            "signer_kid": self.signer_kid,
            "issued_at": self.issued_at,
            "reason": self.reason,
            "detail": self.detail,
            "objects_rejected": self.objects_rejected,
        }


@dataclass(frozen=True)
class PartnerKeysUpdated:
    update: KeyUpdate
    requeued: list[str]  # posted envelopes to post again, re-addressed (envelope/readdress.py)
    # Envelopes sealed to a file for the partner, unconfirmed, that it cannot open: each to
    # write again with `cti-exchange seal --readdress ID -o FILE` (exchange/offline.py).
    files_to_readdress: list[str] = field(default_factory=list)
    # Envelopes accepted before we learned their signing key was revoked (or retired) before
    # they were issued: their objects are now `rejected`. An integrity alert (exit 4).
    signed_after_revocation: list[SignedAfterRevocation] = field(default_factory=list)
    unchanged: bool = False  # the file held exactly the keys pinned already

    def integrity_alert(self, name: str) -> IntegrityError | None:
        """The alert the command ends with when accepted envelopes turned out forged-able."""
        flagged = self.signed_after_revocation
        if not flagged:
            return None
        objects = sum(len(f.objects_rejected) for f in flagged)
        first = flagged[0]
        withdrawn = sorted(
            {f.signer_kid for f in flagged}
            & {k.kid for k in self.update.keyring.keys if (k.revocation_reason or "").startswith("withdrawn")}
        )
        if withdrawn:
            # Not "revoked before they were issued": the new file just no longer lists the key.
            return IntegrityError(
                f"{len(flagged)} envelope(s) accepted from {name} were signed by a key its new key "
                f"file no longer lists ({', '.join(withdrawn)}), which is therefore withdrawn as if "
                f"revoked from its creation (first: {first.envelope_id}); their {objects} "
                "object(s) are now rejected and out of exports",
                hint=f"if {name} lost its keys (a profile made again), confirm with it out of band and "
                f"`triage accept` what it sent (`cti-exchange triage list --partner {name} --status "
                "rejected`): had it said so first, --old-keys-lost would have retired them instead; "
                "if it did not lose them, treat this as a security event",
            )
        return IntegrityError(
            f"{len(flagged)} envelope(s) accepted from {name} were signed by a key it revoked "
            f"before they were issued (first: {first.envelope_id}, {first.reason}: {first.detail}); "
            f"their {objects} object(s) are now rejected and out of exports",
            hint=f"see them with `cti-exchange triage list --partner {name} --status rejected`; ask "
            f"{name} out of band whether it sent them, and `triage accept` only what it confirms",
        )


def update_partner_keys(
    home: ProfileHome,
    name: str,
    document: bytes,
    *,
    source: str,
    fingerprint: str | None = None,
    now: datetime | None = None,
    old_keys_lost: bool = False,
) -> PartnerKeysUpdated:
    partner = get_partner(home, name)
    pinned = home.partner_keyring(partner)
    verified = verify_key_document(document, source=source)
    check_claimed_identity(verified.keyring.agency.id, verified.keyring.agency.identity_id)
    update = merge_key_update(
        pinned, verified, fingerprint=fingerprint, now=now or utc_now(), old_keys_lost=old_keys_lost
    )
    if update.keyring == pinned:
        # The file pinned already (sent again): nothing to save, record, queue or flag.
        return PartnerKeysUpdated(update, [], unchanged=True)
    details = {
        "change": "partner-keys-updated",
        "trusted_by": update.trusted_by,
        "added": list(update.added),
        "revoked": list(update.newly_revoked),
        "retired_lost": list(update.retired_lost),
        "pinned_signing_key": update.anchor.thumbprint,
    }
    with recorded(home, "key-change", partner=name, details=details, now=now):
        relative = home.save_partner_keys(name, update.keyring, verified.raw)
        profile = home.load_profile()
        home.save_profile(
            profile.with_partner(replace(partner, jwks=relative, fingerprint=update.anchor.thumbprint))
        )
    return PartnerKeysUpdated(
        update,
        _requeue_to_revoked_keys(home, name, update, now or utc_now()),
        _files_to_revoked_keys(home, name, update),
        _reject_signed_after_revocation(home, name, pinned, update, now or utc_now()),
    )


def _reject_signed_after_revocation(
    home: ProfileHome, name: str, pinned: Keyring, update: KeyUpdate, now: datetime
) -> list[SignedAfterRevocation]:
    """Envelopes we accepted from the partner, signed by a signing key whose status this update
    changed (revoked, withdrawn, retired), that the keys now pinned refuse: the receiver's own
    check (Keyring.signing_key at the signed `issued_at`, with our clock skew). A stolen key
    signs in the partner's name until we learn of the revocation; what it signed in that time
    was accepted, and now must not reach our defences. Their objects are set to `rejected` with
    a note saying why (store/envelopes_by_signer.py), each envelope in its own transaction with
    an audit record. An analyst may still `triage accept` what the partner confirms it sent."""
    changed = [
        key.kid
        for key in update.keyring.keys
        if key.use is KeyUse.SIG and (old := pinned.find(key.kid)) is not None and old != key
    ]
    if not changed:
        return []
    skew = timedelta(seconds=home.load_profile().envelope.max_clock_skew_seconds)
    agency = update.keyring.agency.id
    at = stix_timestamp(now)
    flagged: list[SignedAfterRevocation] = []
    with open_store(home) as store:
        for envelope in accepted_signed_by(store.db.conn, agency, changed):
            try:
                update.keyring.signing_key(
                    envelope.signer_kid, at=parse_timestamp(envelope.issued_at), skew=skew
                )
            except KeyCheckError as refused:
                reason, detail = refused.reason.value, refused.message
            else:
                continue
            note = (
                f"set aside by `partners update-keys {name}`: envelope {envelope.envelope_id} "
                f"was signed by {envelope.signer_kid} at {envelope.issued_at}, but {detail}"
            )
            with store.db.transaction() as conn:
                objects = reject_objects_of(
                    conn,
                    envelope,
                    actor=store.actor,
                    at=at,
                    note=note,
                    audit_details={"reason": reason, "detail": detail},
                )
            flagged.append(
                SignedAfterRevocation(
                    envelope.envelope_id, envelope.signer_kid, envelope.issued_at, reason, detail, objects
                )
            )
    return flagged


def _newly_revoked_encryption_keys(update: KeyUpdate) -> set[str]:
    return {
        kid
        for kid in update.newly_revoked
        if (key := update.keyring.find(kid)) is not None and key.use is KeyUse.ENC
    }


def _requeue_to_revoked_keys(home: ProfileHome, name: str, update: KeyUpdate, now: datetime) -> list[str]:
    """Envelopes the partner's server took but the partner has not confirmed, encrypted to an
    encryption key it has now revoked: it cannot open them (and whoever holds that key can).
    They go back to the outbox, where delivery re-addresses them to its current key. One the
    partner did open before revoking (its receipt not back yet) then comes to it a second time
    and is refused there as a replay: nothing is lost or accepted twice."""
    revoked = _newly_revoked_encryption_keys(update)
    if not revoked:
        return []
    with open_store(home) as store:
        requeued = [
            delivery.envelope_id
            for delivery in store.outbound.posted_unconfirmed(name)
            if revoked & set(recipient_kids(delivery.artifact))
        ]
        if requeued:
            store.outbound.requeue(
                name,
                requeued,
                f"encrypted to {name}'s revoked key(s) {', '.join(sorted(revoked))}: posted again, "
                "re-addressed to its current key",
                stix_timestamp(now),
            )
    return requeued


def _files_to_revoked_keys(home: ProfileHome, name: str, update: KeyUpdate) -> list[str]:
    """Envelopes sealed to a file for the partner (`seal`), not confirmed by a receipt, and
    wrapped for an encryption key it has now revoked and for none it still has: it cannot open
    them, and no outbox re-addresses a file. Listed for the operator, who writes each again
    re-addressed (`seal --readdress`); the partner opens that file in the first one's place.
    A partner without TAXII sends no receipts back: it may have opened some before revoking
    the key (a copy of one is then refused there as a replay, and nothing is accepted twice)."""
    revoked = _newly_revoked_encryption_keys(update)
    if not revoked:
        return []
    with open_store(home) as store:
        return [
            delivery.envelope_id
            for delivery in store.outbound.exported_unconfirmed(name)
            if revoked & set(kids := recipient_kids(delivery.artifact))
            and not has_usable_entry(kids, update.keyring)
        ]


def undelivered_envelopes(home: ProfileHome, name: str) -> list[str]:
    """Envelopes sealed to a partner and not yet taken by its server (the outbox)."""
    with open_store(home) as store:
        return [delivery.envelope_id for delivery in store.outbound.pending(name)]


def unconfirmed_envelopes(home: ProfileHome, name: str) -> list[str]:
    """Envelopes the partner's server took that it never acknowledged (no receipt yet); our
    envelopes of receipts only are never acknowledged, so they are not among them."""
    with open_store(home) as store:
        receipts_only = receipt_only_envelopes(store.db.conn)
        return [
            d.envelope_id
            for d in store.outbound.deliveries(name)
            if d.status == POSTED and d.envelope_id not in receipts_only
        ]


def outbox_not_empty(name: str, count: int) -> UsageError:
    return UsageError(
        f"partner {name} still has {count} envelope(s) in the outbox, not yet posted; removed, "
        "they are never delivered and the partner sees a sequence gap if pinned again",
        hint="run `cti-exchange sync` to deliver them first, or pass --drop-outbox to drop them",
    )


def remove_partner(home: ProfileHome, name: str, *, drop_outbox: bool = False) -> PartnerConfig:
    """Forgets a partner. Envelopes still in its outbox hold positions in its channel: dropped,
    the partner would see a sequence gap in whatever we send it later (if it is pinned again),
    so they must be delivered first (`sync`) or dropped knowingly."""
    partner = get_partner(home, name)
    waiting = undelivered_envelopes(home, name)
    if waiting and not drop_outbox:
        raise outbox_not_empty(name, len(waiting))
    if waiting:
        # Dropped first, in one store transaction: interrupted before the profile is saved, the
        # partner is still there with an empty outbox, and running the command again finishes.
        with open_store(home) as store:
            waiting = store.outbound.drop_pending(name, stix_timestamp(utc_now()))
    home.save_profile(home.load_profile().without_partner(name))
    home.remove_partner_keys(name)
    details: dict[str, Any] = {"change": "partner-removed"}
    if waiting:
        details["dropped_envelopes"] = waiting
    record_event(home, "key-change", partner=name, details=details)
    return partner


def configure_partner(
    home: ProfileHome,
    name: str,
    *,
    max_tlp: Tlp | None = None,
    allow_red: bool | None = None,
    taxii_changes: dict[str, Any] | None = None,
) -> PartnerConfig:
    """Changes what we may send a partner and how we reach it over TAXII."""
    partner = get_partner(home, name)
    if max_tlp is not None:
        partner = replace(partner, max_tlp=max_tlp)
    if allow_red is not None:
        partner = replace(partner, allow_red=allow_red)
    changes = {k: v for k, v in (taxii_changes or {}).items() if v is not None}
    for key in ("read_collection", "write_collection"):
        if key in changes:
            check_collection_id(changes[key], option=f"--{key.replace('_', '-')}")
    if "api_root" in changes:
        check_url_is_safe(changes["api_root"], partner=name)  # refused before it is saved
    if "secret_env" in changes:
        check_secret_env(changes["secret_env"])
    # Only what is being set is judged: a bad value already in config.toml is refused when used,
    # and must not stop the command that replaces it.
    refuse_our_own_secrets(
        partner=name,
        base_dir=home.root,
        secret_env=changes.get("secret_env"),
        secret_file=changes.get("secret_file"),
    )
    if changes:
        if partner.taxii is None:
            if "api_root" not in changes:
                raise ConfigError(
                    f"partner {name} has no TAXII settings yet",
                    hint="give --api-root with the first TAXII setting",
                )
            taxii = TaxiiSettings(**changes)
        else:
            taxii = replace(partner.taxii, **changes)
        partner = replace(partner, taxii=taxii)
    before = get_partner(home, name)
    home.save_profile(home.load_profile().with_partner(partner))
    changed = _settings_changed(before, partner)
    if changed:
        record_event(home, "partner-settings", partner=name, details={"changed": changed})
    return partner


def _settings(partner: PartnerConfig) -> dict[str, Any]:
    """What `partners set` changes, as recorded: the TAXII settings hold no secret, only where
    one is (an API root a hand edit gave a password is recorded without it)."""
    taxii = asdict(partner.taxii) if partner.taxii is not None else {}
    if isinstance(taxii.get("api_root"), str):
        taxii["api_root"] = shown_url(taxii["api_root"])
    return {"max_tlp": partner.max_tlp.value, "allow_red": partner.allow_red, **taxii}


def _settings_changed(before: PartnerConfig, after: PartnerConfig) -> dict[str, dict[str, Any]]:
    """{setting: {"from": ..., "to": ...}} for each setting that differs."""
    old, new = _settings(before), _settings(after)
    return {
        key: {"from": old.get(key), "to": new.get(key)}
        for key in sorted(old.keys() | new.keys())
        if old.get(key) != new.get(key)
    }
