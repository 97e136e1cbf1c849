"""The audit trail's Python API: record an event, sign the chain head."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from cti_exchange.audit.chain import GENESIS, SignedHead, head_problem, sign_head
from cti_exchange.audit.verification import (
    AuditProblem,
    first_chain_problem,
    head_payload_problem,
    missing_heads,
)
from cti_exchange.clock import stix_timestamp, utc_now
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.keys.model import KeyCheckError, Keyring, KeyUse
from cti_exchange.store.audit_log import append_audit
from cti_exchange.store.store import Store, open_store


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
    with open_store(home) as store:
        store.audit.append(
            at=stix_timestamp(now or utc_now()),
            actor=store.actor,
            action=action,
            partner=partner,
            details=details or {},
        )
        if sign_head:
            sign_audit_head(home, store, now)


@contextmanager
def recorded(
    home: ProfileHome,
    action: str,
    *,
    partner: str | None = None,
    details: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> Iterator[None]:
    """Around a change made outside the store (our key files, a partner's pinned keys): the
    store's write lock is taken first and the record appended once the change is done. A
    store that cannot be opened or written (missing, newer, read-only, locked past the wait)
    refuses before anything changes, and a change that fails records nothing; before, keys
    were saved and then the record failed, leaving a key change the trail never saw. Nothing
    that prompts may run inside: other writers wait for the lock."""
    with open_store(home) as store, store.db.transaction() as conn:
        yield
        append_audit(
            conn,
            at=stix_timestamp(now or utc_now()),
            actor=store.actor,
            action=action,
            partner=partner,
            details=details or {},
        )


def sign_audit_head(home: ProfileHome, store: Store, now: datetime | None = None) -> SignedHead | None:
    """Signs the current head with our signing key (needs the unlocked keys); None if empty,
    already signed, our signing key cannot sign now (expired), or the records since the last
    signed head are not what the trail writes (`unsigned_tail_problem`): push, pull and sync
    then leave the head unsigned, and `audit verify` names the problem."""
    seq, head_hash = store.audit.head()
    if seq == 0:
        return None
    heads = store.audit.signed_heads()
    if heads and heads[-1].seq == seq:
        return None
    moment = now or utc_now()
    profile = home.load_profile()
    keyring = home.keyring()
    if unsigned_tail_problem(store, heads, keyring, profile.agency_id) is not None:
        return None  # signing would vouch for it
    signing = keyring.current(KeyUse.SIG)
    try:
        signing.check_usable_for_signature_at(moment)
    except KeyCheckError:
        # An expired key would sign a head `audit verify` then takes for a forgery; the tail
        # stays unsigned, and `audit verify` says why until the key is rotated.
        return None
    head = sign_head(profile.agency_id, seq, head_hash, home.private_keys()[signing.kid], moment)
    store.audit.add_signed_head(head)
    return head


def unsigned_tail_problem(
    store: Store, heads: list[SignedHead], keyring: Keyring, agency_id: str
) -> AuditProblem | None:
    """Why the records after the last signed head must not be signed unattended: that head no
    longer verifies or no longer matches its record, the records after it do not link to it
    (verification.first_chain_problem), or one of them was written with a head over it that
    is gone (verification.missing_heads: the heads were deleted). Reads only those records, so
    it costs a command what it appended, not the whole trail (`audit verify` checks that)."""
    last = heads[-1] if heads else None
    if last is None:
        tail = store.audit.records()
        start_prev, start_seq, covered = GENESIS, 1, 0
    else:
        why = head_problem(last, keyring) or head_payload_problem(last, agency_id)
        if why is not None:
            return AuditProblem(last.seq, "bad-head", f"the head signed over it cannot be trusted: {why}")
        records = store.audit.records(from_seq=last.seq)
        if not records or records[0].seq != last.seq or records[0].hash != last.hash:
            return AuditProblem(last.seq, "rewritten", "it no longer matches the head signed over it")
        tail = records[1:]
        start_prev, start_seq, covered = last.hash, last.seq + 1, last.seq
    chain = first_chain_problem(tail, start_prev=start_prev, start_seq=start_seq)
    if chain is not None:
        return chain
    missing, _ = missing_heads(tail, covered)
    return missing
