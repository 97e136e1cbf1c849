"""Re-addressing a queued envelope whose recipient key was revoked before it was delivered.

An envelope sealed by `push --queue`, `sight --queue` or a receipt may wait in the outbox for
days. If a partner revokes the encryption key it was sealed to (compromised, lost), posting it
as it is would hand its content to whoever holds that key, and the partner itself could not
open it: a revoked key of ours no longer decrypts (`exchange/parties.receiver_context`), so the
envelope would be skipped as not addressed to it and its channel would show a gap.

Re-sealing would give the envelope another id, signature and channel position. Re-addressing
changes only the key wrap: the content key, recovered from our own recipient entry, is wrapped
again for the agency's current key. The signed JWS inside is untouched, so the envelope id,
its sequence and the channel's hash chain stay as they were. The same applies to our own
entry when we revoked our own encryption key.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cti_exchange.envelope.artifact import RoutingHints, artifact_jwe, artifact_with_jwe, routing_hints
from cti_exchange.envelope.jose_framing import jwe_recipient_kids, jwe_rewrap_recipients
from cti_exchange.envelope.reasons import EnvelopeRejected
from cti_exchange.errors import IntegrityError
from cti_exchange.keys.model import Keyring, KeyUse

PrivateKeys = dict[str, dict[str, Any]]  # kid -> private JWK


@dataclass(frozen=True)
class Readdressed:
    artifact: dict[str, Any]
    removed: list[str]  # revoked kids whose entries are gone
    added: list[str]  # kids the content key is now wrapped for as well


def _revoked_encryption_keys(rings: Iterable[Keyring]) -> set[str]:
    return {kid for ring in rings for kid in ring.revoked_kids(KeyUse.ENC)}


def _read_queued(artifact: dict[str, Any]) -> tuple[RoutingHints, dict[str, Any]]:
    """(routing hints, JWE) of an envelope from our own outbox."""
    envelope_id = "?"
    try:
        hints = routing_hints(artifact)
        envelope_id = hints.envelope_id
        jwe = artifact_jwe(artifact, max_envelope_bytes=len(str(artifact.get("payload_bin", ""))))
    except EnvelopeRejected as exc:
        raise IntegrityError(
            f"the queued envelope {envelope_id} in the store is damaged: {exc.detail}",
            hint="run `cti-exchange doctor`; restore the store from a backup if it persists",
        ) from None
    return hints, jwe


def recipient_kids(artifact: dict[str, Any]) -> list[str]:
    """The key ids an envelope from our outbox is encrypted to."""
    return jwe_recipient_kids(_read_queued(artifact)[1])


def readdress_envelope(
    artifact: dict[str, Any],
    rings: Mapping[str, Keyring],
    private_keys: Callable[[], PrivateKeys],
) -> Readdressed | None:
    """The envelope with no entry for a revoked key, and an entry for the current key of each
    agency it is for (its recipients and us) that has none usable; None if nothing changes.
    `rings`: every partner's pinned ring and our own, by agency id. An agency with no current
    key pinned is left without an entry (its delivery waits, see `wrapped_for`), so that the
    others' copies carry nothing a revoked key opens. `private_keys` is called only when there
    is something to change (it may unlock)."""
    return readdressing(artifact, rings, private_keys)[0]


def readdressing(
    artifact: dict[str, Any],
    rings: Mapping[str, Keyring],
    private_keys: Callable[[], PrivateKeys],
) -> tuple[Readdressed | None, list[str] | None]:
    """`readdress_envelope`, and the kids the envelope is wrapped for afterwards, read in the
    same pass (None when no key is revoked anywhere: then nothing is read)."""
    revoked = _revoked_encryption_keys(rings.values())
    if not revoked:
        return None, None  # the common case: no envelope needs to be read
    hints, jwe = _read_queued(artifact)
    kids = jwe_recipient_kids(jwe)
    replacements: dict[str, dict[str, Any] | None] = {}
    additions: list[dict[str, Any]] = []
    for agency in (*hints.recipients, hints.sender):
        ring = rings.get(agency)
        if ring is None:
            continue  # a partner removed since: its entry stays as it was
        theirs = [kid for kid in kids if ring.find(kid) is not None]
        stale = [kid for kid in theirs if kid in revoked]
        if len(stale) == len(theirs) and (current := ring.current_or_none(KeyUse.ENC)) is not None:
            new: dict[str, Any] | None = current.public_jwk
        else:
            new = None  # it still has a usable entry, or no current key to wrap for
        replacements.update(dict.fromkeys(stale))
        if new is not None and stale:
            replacements[stale[0]] = new  # in the place of the entry it replaces
        elif new is not None:
            additions.append(new)
    if not replacements and not additions:
        return None, kids
    try:
        rewrapped = jwe_rewrap_recipients(jwe, private_keys(), replacements, additions)
    except EnvelopeRejected as exc:
        raise IntegrityError(
            f"the queued envelope {hints.envelope_id} cannot be re-addressed: {exc.detail}",
            hint="our own recipient entry does not open with our keys; seal its content again "
            "with `cti-exchange push`",
        ) from None
    added = [public["kid"] for public in (*replacements.values(), *additions) if public is not None]
    readdressed = Readdressed(
        artifact=artifact_with_jwe(artifact, json.dumps(rewrapped, separators=(",", ":")).encode()),
        removed=sorted(replacements),
        added=added,
    )
    return readdressed, jwe_recipient_kids(rewrapped)


def wrapped_for(artifact: dict[str, Any], ring: Keyring) -> bool:
    """Whether the envelope has an entry for a key of the ring's agency that is not revoked."""
    return has_usable_entry(recipient_kids(artifact), ring)


def has_usable_entry(kids: list[str], ring: Keyring) -> bool:
    """Whether one of the recipient `kids` is a key of the ring's agency that is not revoked."""
    revoked = ring.revoked_kids(KeyUse.ENC)
    return any(ring.find(kid) is not None and kid not in revoked for kid in kids)
