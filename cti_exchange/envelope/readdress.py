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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from cti_exchange.envelope.artifact import artifact_jwe, artifact_with_jwe, routing_hints
from cti_exchange.envelope.jose_framing import jwe_recipient_kids, jwe_rewrap_recipients
from cti_exchange.envelope.reasons import EnvelopeRejected
from cti_exchange.errors import IntegrityError, KeyStoreError
from cti_exchange.keys.model import Keyring, KeyUse

PrivateKeys = dict[str, dict[str, Any]]  # kid -> private JWK


@dataclass(frozen=True)
class Readdressed:
    artifact: dict[str, Any]
    replaced: dict[str, str]  # revoked kid -> the kid the content key is now wrapped for


def _revoked_encryption_keys(rings: Iterable[Keyring]) -> dict[str, Keyring]:
    return {kid: ring for ring in rings for kid in ring.revoked_kids(KeyUse.ENC)}


def _read_queued(artifact: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(envelope id, JWE) of an envelope from our own outbox."""
    envelope_id = "?"
    try:
        envelope_id = routing_hints(artifact).envelope_id
        jwe = artifact_jwe(artifact, max_envelope_bytes=len(str(artifact.get("payload_bin", ""))))
    except EnvelopeRejected as exc:
        raise IntegrityError(
            f"the queued envelope {envelope_id} in the store is damaged: {exc.detail}",
            hint="run `cti-exchange doctor`; restore the store from a backup if it persists",
        ) from None
    return envelope_id, jwe


def recipient_kids(artifact: dict[str, Any]) -> list[str]:
    """The key ids an envelope from our outbox is encrypted to."""
    return jwe_recipient_kids(_read_queued(artifact)[1])


def readdress_envelope(
    artifact: dict[str, Any],
    rings: Iterable[Keyring],
    private_keys: Callable[[], PrivateKeys],
) -> Readdressed | None:
    """The envelope wrapped for current keys in place of revoked ones, or None if none of its
    recipient keys is revoked. `rings`: every partner's pinned ring and our own.
    `private_keys` is called only when there is something to re-address (it may unlock)."""
    revoked = _revoked_encryption_keys(rings)
    if not revoked:
        return None  # the common case: no envelope needs to be read
    envelope_id, jwe = _read_queued(artifact)
    stale = [kid for kid in jwe_recipient_kids(jwe) if kid in revoked]
    if not stale:
        return None
    replacements: dict[str, dict[str, Any]] = {}
    for kid in stale:
        ring = revoked[kid]
        current = ring.current_or_none(KeyUse.ENC)
        if current is None:
            raise KeyStoreError(
                f"envelope {envelope_id} is encrypted to {ring.agency.id}'s key {kid}, which is "
                f"revoked, and no current encryption key of {ring.agency.id} is pinned: it waits "
                "in the outbox",
                hint=f"ask {ring.agency.id} for a fresh `keys export`, then "
                "`cti-exchange partners update-keys PARTNER --jwks FILE`",
            )
        replacements[kid] = current.public_jwk
    try:
        rewrapped = jwe_rewrap_recipients(jwe, private_keys(), replacements)
    except EnvelopeRejected as exc:
        raise IntegrityError(
            f"the queued envelope {envelope_id} cannot be re-addressed: {exc.detail}",
            hint="our own recipient entry does not open with our keys; seal its content again "
            "with `cti-exchange push`",
        ) from None
    return Readdressed(
        artifact=artifact_with_jwe(artifact, json.dumps(rewrapped, separators=(",", ":")).encode()),
        replaced={kid: public["kid"] for kid, public in replacements.items()},
    )
