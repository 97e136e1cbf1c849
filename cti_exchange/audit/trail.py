"""The audit trail's Python API: record an event, sign the chain head."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cti_exchange.audit.chain import SignedHead, sign_head
from cti_exchange.clock import stix_timestamp, utc_now
from cti_exchange.home.analyst import current_analyst
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.keys.model import KeyCheckError, KeyUse
from cti_exchange.store.store import Store


def record_event(
    home: ProfileHome,
    action: str,
    *,
    partner: str | None = None,
    details: dict[str, Any] | None = None,
    now: datetime | None = None,
    sign_head: bool = False,
) -> None:
    """Appends one record for an action that does not write the store itself (key changes,
    partner pins, exports); with `sign_head` (our keys unlocked), signs the head it makes, so
    cutting that record off the trail shows."""
    with Store(home.store_path(), actor=current_analyst()) as store:
        store.audit.append(
            at=stix_timestamp(now or utc_now()),
            actor=store.actor,
            action=action,
            partner=partner,
            details=details or {},
        )
        if sign_head:
            sign_audit_head(home, store, now)


def sign_audit_head(home: ProfileHome, store: Store, now: datetime | None = None) -> SignedHead | None:
    """Signs the current head with our signing key (needs the unlocked keys); None if empty,
    already signed, or our signing key cannot sign now (expired)."""
    seq, head_hash = store.audit.head()
    if seq == 0:
        return None
    heads = store.audit.signed_heads()
    if heads and heads[-1].seq == seq:
        return None
    moment = now or utc_now()
    profile = home.load_profile()
    signing = home.keyring().current(KeyUse.SIG)
    try:
        signing.check_usable_for_signature_at(moment)
    except KeyCheckError:
        # An expired key would sign a head `audit verify` then takes for a forgery; the tail
        # stays unsigned, and `audit verify` says why until the key is rotated.
        return None
    head = sign_head(profile.agency_id, seq, head_hash, home.private_keys()[signing.kid], moment)
    store.audit.add_signed_head(head)
    return head
