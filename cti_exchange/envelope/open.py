"""Opening an envelope: verify before accept.

The checks run in the order the envelope format requires (docs/ENVELOPE.md, "Receiving"):
decrypt with our key; verify the signature with the sender's pinned key; check the signing key
was valid when the envelope was issued; check the header (addressed to us, never seen, not
issued in the future, clear-text hints equal to the signed header); check channel continuity,
then the maximum age; validate the bundle, whose objects may not be dated after the envelope
was issued.
Each check is a small function that raises `EnvelopeRejected` with a named reason; nothing from
an envelope is returned until every check has passed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import orjson

from cti_exchange.clock import parse_timestamp, stix_timestamp
from cti_exchange.envelope.artifact import RoutingHints, artifact_jwe, routing_hints
from cti_exchange.envelope.header import ChannelPosition, ChannelState, EnvelopeHeader
from cti_exchange.envelope.jose_framing import (
    COMPRESSION,
    SIGNATURE_ALG,
    bounded_inflate,
    deflate,
    first_duplicate_member,
    jwe_decrypt_compressed,
    jwe_recipient_kids,
    jws_payload,
    jws_split,
    jws_verify,
)
from cti_exchange.envelope.reasons import EnvelopeRejected, RejectReason
from cti_exchange.envelope.seal import envelope_digest
from cti_exchange.keys.model import KeyCheckError, KeyInfo, KeyRejection, Keyring, KeyStatus, KeyUse
from cti_exchange.stix.nesting import MAX_NESTING, nesting_beyond_limit
from cti_exchange.untrusted_text import escape_controls


@dataclass(frozen=True)
class ReceiverContext:
    agency_id: str
    decryption_keys: dict[str, dict[str, Any]]  # kid -> our private X25519 JWK (current, retired)
    keyrings: dict[str, Keyring]  # agency id -> pinned keys (partners, and our own ring)
    now: datetime
    seen_envelope: Callable[[str, str], bool]  # (sender agency id, envelope id)
    channel_state: Callable[[str], ChannelState | None]  # by sender agency id
    validate_bundle: Callable[[dict[str, Any]], list[str]]
    max_clock_skew: timedelta = timedelta(minutes=5)
    max_age: timedelta = timedelta(days=30)
    max_plaintext_bytes: int = 256 * 1024 * 1024
    max_envelope_bytes: int = 256 * 1024 * 1024


@dataclass(frozen=True)
class OpenedEnvelope:
    header: EnvelopeHeader
    signer: KeyInfo
    jws: bytes  # the original signed bytes, as received
    jws_deflated: bytes  # the same bytes, raw DEFLATE (RFC 1951): what the store archives
    digest: str
    bundle_bytes: bytes
    bundle: dict[str, Any]
    channel: ChannelPosition | None  # our position on the sender's channel (None: our own copy)
    gap_skipped: tuple[int, ...] = ()


@dataclass
class _Opening:
    """What the checks learn, step by step."""

    artifact: dict[str, Any]
    hints: RoutingHints | None = None
    jws: bytes = b""
    jws_deflated: bytes = b""
    signing_input: bytes = b""
    signature: bytes = b""
    header: EnvelopeHeader | None = None
    signer: KeyInfo | None = None
    bundle_bytes: bytes = b""
    bundle: dict[str, Any] = field(default_factory=dict)
    # The last envelope accepted on the sender's channel to us, read once (_channel_state)
    last: ChannelState | None = None
    last_read: bool = False


def _channel_state(state: _Opening, ctx: ReceiverContext) -> ChannelState | None:
    """The sender's channel state, read from the store once per opening (three checks ask)."""
    assert state.header is not None
    if not state.last_read:
        state.last, state.last_read = ctx.channel_state(state.header.sender), True
    return state.last


def open_envelope(
    artifact: dict[str, Any], ctx: ReceiverContext, *, accept_gap: bool = False, restart: bool = False
) -> OpenedEnvelope:
    """`restart`: an analyst accepts this envelope as the new start of its sender's channel
    (`quarantine accept-restart`: the partner restored its store from a backup or made its
    profile again): every check but continuity applies, and it is not chained to what we
    accepted, so the maximum age applies to it."""
    state = _Opening(artifact=artifact)
    try:
        check_decrypts(state, ctx)
        check_signature(state, ctx)
        check_signing_key_valid(state, ctx)
        check_addressed_to_us(state, ctx)
        check_not_replayed(state, ctx)
        check_not_issued_in_future(state, ctx)
        check_hints_match(state)
        skipped = check_channel_continuity(state, ctx, accept_gap=accept_gap, restart=restart)
        check_not_backdated(state, ctx)
        check_not_too_old(state, ctx, gap_skipped=skipped, restart=restart)
        check_bundle_valid(state, ctx)
        check_objects_not_dated_after_issue(state, ctx)
    except EnvelopeRejected as rejected:
        if state.header is not None:
            rejected.envelope_id = state.header.envelope_id
            rejected.sender = state.header.sender
        elif state.hints is not None:
            # Clear text anyone can write, as the detail may quote what was not verified (a
            # kid): escaped, so that a lone surrogate (which SQLite cannot store: the pull
            # would fail at this envelope every time) or a terminal escape never goes further.
            rejected.envelope_id = escape_controls(state.hints.envelope_id)
            rejected.sender = escape_controls(state.hints.sender)
        rejected.detail = escape_controls(rejected.detail)
        raise
    assert state.header is not None and state.signer is not None
    return OpenedEnvelope(
        header=state.header,
        signer=state.signer,
        jws=state.jws,
        jws_deflated=state.jws_deflated,
        digest=envelope_digest(state.jws),
        bundle_bytes=state.bundle_bytes,
        bundle=state.bundle,
        channel=state.header.channels.get(ctx.agency_id),
        gap_skipped=skipped,
    )


def check_decrypts(state: _Opening, ctx: ReceiverContext) -> None:
    jwe = artifact_jwe(state.artifact, max_envelope_bytes=ctx.max_envelope_bytes)
    state.hints = routing_hints(state.artifact)
    try:
        protected, data = jwe_decrypt_compressed(jwe, ctx.decryption_keys)
    except EnvelopeRejected as rejected:
        if rejected.reason is RejectReason.NOT_ADDRESSED_TO_US and (revoked := _our_revoked_kids(jwe, ctx)):
            raise EnvelopeRejected(
                RejectReason.ENCRYPTED_TO_REVOKED_KEY,
                f"encrypted to our revoked key {revoked[0]}: the sender has not pinned our current "
                "keys; once it has, it sends the same envelope wrapped for them",
            ) from None
        if rejected.reason is RejectReason.NOT_ADDRESSED_TO_US and (
            why := _for_us_by_clear_text(jwe, state.hints, ctx)
        ):
            raise EnvelopeRejected(RejectReason.SEALED_TO_UNKNOWN_KEY_OF_OURS, why) from None
        raise
    if protected.get("zip") == COMPRESSION:
        state.jws_deflated = data
        state.jws = bounded_inflate(data, ctx.max_plaintext_bytes)
    else:
        if len(data) > ctx.max_plaintext_bytes:
            raise EnvelopeRejected(RejectReason.DECOMPRESSION_LIMIT, "plaintext exceeds the limit")
        state.jws = data
        state.jws_deflated = deflate(data)


def _our_revoked_kids(jwe: dict[str, Any], ctx: ReceiverContext) -> list[str]:
    """The kids of the JWE's recipient entries that are encryption keys of ours we revoked."""
    ours = ctx.keyrings.get(ctx.agency_id)
    revoked = ours.revoked_kids(KeyUse.ENC) if ours is not None else set()
    return [kid for kid in jwe_recipient_kids(jwe) if kid in revoked]


def _for_us_by_clear_text(jwe: dict[str, Any], hints: RoutingHints, ctx: ReceiverContext) -> str | None:
    """Why an envelope none of our keys opens is for us all the same (a recipient kid named as
    an encryption key of ours, `AGENCY-enc-...`, or the routing hints naming our agency), or
    None: then it is another agency's. Clear text, unverified: it only keeps the envelope held
    instead of dropped."""
    kids = jwe_recipient_kids(jwe)
    ours = [kid for kid in kids if kid.startswith(f"{ctx.agency_id}-enc-")]
    if not ours and (ctx.agency_id not in hints.recipients or not kids):
        return None  # another agency's, or a JWE naming no key at all (malformed, not held)
    sealed_to = f"our key {ours[0]}" if ours else f"keys {', '.join(kids[:3])}"
    return (
        f"for us (by its clear text) but sealed to {sealed_to}, which this profile does not hold: "
        f"keys/ may be older than the partner thinks (restored from a backup taken before `keys "
        f"rotate`?); restore the newer keys, or ask {hints.sender} to re-seal it to our current "
        "key; held, opened again once our keys change. If this profile was made again (the old "
        'keys lost for good), it never opens here: see OPERATIONS.md "Our own keys lost"'
    )


def check_signature(state: _Opening, ctx: ReceiverContext) -> None:
    header, state.signing_input, state.signature = jws_split(state.jws)
    if header.get("alg") != SIGNATURE_ALG:
        # Covers alg "none" and HS256 signed with our public key as the HMAC secret.
        raise EnvelopeRejected(
            RejectReason.UNSUPPORTED_ALGORITHM, f"JWS alg {header.get('alg')!r} is not EdDSA"
        )
    kid = header.get("kid")
    cti = header.get("cti")
    sender = cti.get("sender") if isinstance(cti, dict) else None
    if not isinstance(kid, str) or not isinstance(sender, str):
        raise EnvelopeRejected(RejectReason.BAD_HEADER, "the JWS header lacks kid or cti.sender")
    keyring = ctx.keyrings.get(sender)
    if keyring is None:
        raise EnvelopeRejected(RejectReason.UNKNOWN_SENDER, f"sender {sender!r} is not a pinned partner")
    key = keyring.find(kid)
    if key is None:
        owner = next((a for a, ring in ctx.keyrings.items() if ring.find(kid)), None)
        if owner is not None:
            raise EnvelopeRejected(
                RejectReason.SENDER_KEY_MISMATCH,
                f"key {kid} belongs to {owner}, but the envelope claims sender {sender}",
            )
        raise EnvelopeRejected(RejectReason.UNKNOWN_KEY, f"key {kid} is not pinned for {sender}")
    if key.use is not KeyUse.SIG:
        # Never use a key for what it is not for (RFC 7517 section 4.2); an X25519 key cannot
        # verify EdDSA anyway, so without this the reason would be a misleading bad-signature.
        raise EnvelopeRejected(RejectReason.WRONG_KEY_USE, f"key {kid} is not a signing key")
    if not jws_verify(state.signing_input, state.signature, key.public_jwk):
        raise EnvelopeRejected(RejectReason.BAD_SIGNATURE, f"signature does not verify with {kid}")
    state.header = EnvelopeHeader.from_protected(header)
    state.signer = key


def check_signing_key_valid(state: _Opening, ctx: ReceiverContext) -> None:
    assert state.header is not None and state.signer is not None
    try:
        ctx.keyrings[state.header.sender].signing_key(
            state.signer.kid, at=state.header.issued_at, skew=ctx.max_clock_skew
        )
    except KeyCheckError as exc:
        raise EnvelopeRejected(_KEY_REASONS[exc.reason], exc.message) from None


_KEY_REASONS = {
    KeyRejection.UNKNOWN: RejectReason.UNKNOWN_KEY,
    KeyRejection.WRONG_USE: RejectReason.WRONG_KEY_USE,
    KeyRejection.REVOKED: RejectReason.REVOKED_KEY,
    KeyRejection.RETIRED: RejectReason.RETIRED_KEY,
    KeyRejection.EXPIRED: RejectReason.EXPIRED_KEY,
    KeyRejection.NOT_YET_VALID: RejectReason.KEY_NOT_YET_VALID,
}


def check_addressed_to_us(state: _Opening, ctx: ReceiverContext) -> None:
    assert state.header is not None
    if ctx.agency_id not in state.header.recipients and ctx.agency_id != state.header.sender:
        raise EnvelopeRejected(
            RejectReason.NOT_ADDRESSED_TO_US,
            f"signed recipients are {list(state.header.recipients)}, not {ctx.agency_id}",
        )


def check_not_replayed(state: _Opening, ctx: ReceiverContext) -> None:
    assert state.header is not None
    if ctx.seen_envelope(state.header.sender, state.header.envelope_id):
        replayed = EnvelopeRejected(
            RejectReason.REPLAYED, f"envelope {state.header.envelope_id} was already received"
        )
        replayed.digest = envelope_digest(state.jws)
        raise replayed


def check_not_issued_in_future(state: _Opening, ctx: ReceiverContext) -> None:
    assert state.header is not None
    issued = state.header.issued_at
    if issued > ctx.now + ctx.max_clock_skew:
        raise EnvelopeRejected(
            RejectReason.ISSUED_IN_FUTURE,
            f"issued at {stix_timestamp(issued)}, beyond the allowed clock skew",
        )


def check_not_too_old(
    state: _Opening, ctx: ReceiverContext, *, gap_skipped: tuple[int, ...], restart: bool = False
) -> None:
    """The maximum age bounds how far back an envelope we cannot chain to what we accepted
    may be dated (our own copy, one accepted across a gap): a signing key revoked long ago
    still verifies whatever is dated before its revocation. The next envelope on our channel is
    exempt (_continues_our_channel).
    It runs after the continuity check so that it never hides where an envelope stands on the
    channel: checked first, an old envelope behind a lost one was held as too-old, which
    `quarantine accept-gap` cannot take, and one from before our position was held for ever
    instead of refused as out of order. What is accepted is the same either way: without an
    accepted gap only the next envelope passes continuity, and its age is waived anyway.
    An envelope accepted as a channel restart (`restart`) is not chained to what we accepted:
    never exempt."""
    assert state.header is not None
    issued = state.header.issued_at
    if issued < ctx.now - ctx.max_age and (restart or not _continues_our_channel(state, ctx)):
        lifted = " (accepting a gap does not lift the age limit)" if gap_skipped else ""
        if restart:
            lifted = " (accepting a channel restart does not lift the age limit)"
        raise EnvelopeRejected(
            RejectReason.TOO_OLD,
            f"issued at {stix_timestamp(issued)}, older than {ctx.max_age.days} days{lifted}",
        )


def check_not_backdated(state: _Opening, ctx: ReceiverContext) -> None:
    """An envelope signed by a key the sender has since revoked or retired may not be dated
    before the last envelope we accepted on its channel (beyond the clock skew). Such a key
    still verifies whatever is dated before its revocation, so whoever stole it could date an
    envelope back and chain it as the next one; honest envelopes on a channel are sealed, and
    dated, in sequence order. (With a current key, dating back gains nothing.)"""
    assert state.header is not None and state.signer is not None
    if state.signer.status is KeyStatus.CURRENT:
        return
    position = state.header.channels.get(ctx.agency_id)
    last = _channel_state(state, ctx) if position is not None else None
    if last is None or last.issued_at is None:
        return
    issued = state.header.issued_at
    if issued < last.issued_at - ctx.max_clock_skew:
        raise EnvelopeRejected(
            RejectReason.BACKDATED,
            f"issued at {stix_timestamp(issued)}, before the last envelope accepted from "
            f"{state.header.sender} ({stix_timestamp(last.issued_at)}), and signed by "
            f"{state.signer.kid}, which {state.header.sender} has {state.signer.status.value}: "
            "a key no longer current dating an envelope back",
        )


def _continues_our_channel(state: _Opening, ctx: ReceiverContext) -> bool:
    """The next envelope on the sender's channel to us, chained to the last one we accepted (or
    the channel's first): it cannot be a replay, so its age is only news, shown with it. Without
    this, a receiver offline longer than max_age would refuse it, hold every later one as a
    gap, and the channel would stay blocked. Not when its key has since been revoked: the
    age limit is what bounds how far back a stolen key can date what it signs."""
    assert state.header is not None
    if state.signer is not None and state.signer.status is KeyStatus.REVOKED:
        return False
    position = state.header.channels.get(ctx.agency_id)
    if position is None:
        return False
    last = _channel_state(state, ctx)
    if last is None:
        return position.sequence == 1
    return position.sequence == last.sequence + 1 and position.previous == last.digest


def check_hints_match(state: _Opening) -> None:
    assert state.header is not None and state.hints is not None
    signed = RoutingHints.of(state.header)
    hints = state.hints
    if hints.issued_at != signed.issued_at and _same_time(hints.issued_at, state.header.issued_at):
        # Another implementation may write 20:15:00Z where we write 20:15:00.000Z.
        hints = replace(hints, issued_at=signed.issued_at)
    if hints != signed:
        differing = [
            name
            for name in ("envelope_id", "sender", "recipients", "sequences", "issued_at")
            if getattr(hints, name) != getattr(signed, name)
        ]
        raise EnvelopeRejected(
            RejectReason.HINT_MISMATCH,
            f"clear-text routing hints differ from the signed header in {', '.join(differing)}",
        )


def _same_time(text: str, moment: datetime) -> bool:
    try:
        return parse_timestamp(text) == moment
    except (TypeError, ValueError, AttributeError, OverflowError):
        return False


# A gap this large is not lost envelopes but a forged or broken sequence number.
MAX_ACCEPTED_GAP = 10_000


def check_channel_continuity(
    state: _Opening, ctx: ReceiverContext, *, accept_gap: bool, restart: bool = False
) -> tuple[int, ...]:
    """Sequence numbers and the hash chain detect withheld, replayed or reordered envelopes.
    `restart`: the envelope becomes the new start of the channel, wherever it stands (the
    analyst confirmed the sender's channel went back: `quarantine accept-restart`)."""
    assert state.header is not None
    position = state.header.channels.get(ctx.agency_id)
    if position is None:  # our own copy of an envelope we sent: not on an inbound channel
        return ()
    if restart:
        return ()
    last = _channel_state(state, ctx)
    expected = 1 if last is None else last.sequence + 1
    if position.sequence < expected:
        raise EnvelopeRejected(
            RejectReason.SEQUENCE_REORDER,
            f"sequence {position.sequence} from {state.header.sender} comes after "
            f"{expected - 1} was accepted" + _restart_advice(state.header.sender),
        )
    if position.sequence > expected:
        gap = position.sequence - expected
        if not accept_gap or gap > MAX_ACCEPTED_GAP:
            raise EnvelopeRejected(
                RejectReason.SEQUENCE_GAP,
                f"missing sequence numbers {_ranges(expected, position.sequence - 1)} from "
                f"{state.header.sender} before {position.sequence}"
                + (f" (more than {MAX_ACCEPTED_GAP} cannot be accepted)" if accept_gap else ""),
            )
        return tuple(range(expected, position.sequence))
    if last is not None and position.previous != last.digest:
        raise EnvelopeRejected(
            RejectReason.CHAIN_MISMATCH,
            f"sequence {position.sequence} names a previous envelope we did not accept"
            + _restart_advice(state.header.sender),
        )
    return ()


RESTART_BY_RECORD = "`cti-exchange quarantine accept-restart ID`"


def naming_record(detail: str, record_id: int | None) -> str:
    """A refusal's detail as an error shows it once its quarantine record is known: the advice
    to accept a restart names the record (`accept-restart 4`) instead of `ID`. The record
    itself keeps the detail as it was (its id is beside it)."""
    if record_id is None:
        return detail
    return detail.replace(RESTART_BY_RECORD, f"`cti-exchange quarantine accept-restart {record_id}`")


def _restart_advice(sender: str) -> str:
    """What a refusal for sequence-reorder or chain-mismatch says to do when the sender's
    channel went back (its store restored from a backup, its profile made again) or a thief's
    envelopes took its positions: the envelopes that follow would all be refused the same way."""
    return (
        f"; if {sender} restored its store from a backup or made its profile again, or a thief "
        f"with its stolen signing key took this position (ask it; docs/OPERATIONS.md), "
        f"{RESTART_BY_RECORD} accepts it as the channel's new start"
    )


def check_bundle_valid(state: _Opening, ctx: ReceiverContext) -> None:
    assert state.header is not None
    state.bundle_bytes = jws_payload(state.signing_input)
    try:
        # orjson parses ~3x faster than the standard library, rejects NaN/Infinity, and stops
        # at 1024 levels of nesting instead of exhausting the stack.
        bundle = orjson.loads(state.bundle_bytes)
    except orjson.JSONDecodeError:
        raise EnvelopeRejected(RejectReason.INVALID_STIX, "the signed payload is not JSON") from None
    if not isinstance(bundle, dict) or bundle.get("type") != "bundle":
        raise EnvelopeRejected(RejectReason.INVALID_STIX, "the signed payload is not a STIX bundle")
    objects = bundle.get("objects")
    if bundle.get("id") != state.header.bundle_id or not isinstance(objects, list):
        raise EnvelopeRejected(RejectReason.BUNDLE_MISMATCH, "the bundle id differs from the signed header")
    if len(objects) != state.header.object_count:
        raise EnvelopeRejected(
            RejectReason.BUNDLE_MISMATCH,
            f"the bundle holds {len(objects)} objects, the header says {state.header.object_count}",
        )
    if (depth := nesting_beyond_limit(bundle)) is not None:
        raise EnvelopeRejected(
            RejectReason.INVALID_STIX,
            f"the bundle is nested {depth} levels deep (at most {MAX_NESTING}): no STIX object is",
        )
    try:
        name = first_duplicate_member(state.bundle_bytes)
    except (ValueError, RecursionError):  # orjson read it: not expected
        raise EnvelopeRejected(RejectReason.INVALID_STIX, "the signed payload is not JSON") from None
    if name is not None:
        # orjson keeps the last of two: RED then CLEAR markings would be stored as CLEAR.
        raise EnvelopeRejected(
            RejectReason.INVALID_STIX, f"the bundle gives the member {name[:60]!r} twice in one object"
        )
    problems = ctx.validate_bundle(bundle)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise EnvelopeRejected(RejectReason.INVALID_STIX, problems[0] + more)
    state.bundle = bundle


def check_objects_not_dated_after_issue(state: _Opening, ctx: ReceiverContext) -> None:
    """The store keeps the latest `modified` of an id current, and ids are predictable (uuidv5
    of the creator and the pattern): an object dated after the envelope that carries it would
    pre-claim the id against every real version to come."""
    assert state.header is not None
    limit = stix_timestamp(state.header.issued_at + ctx.max_clock_skew)
    seconds = limit[:19]  # to the second: timestamps may carry any sub-second precision
    for obj in state.bundle["objects"]:
        for name in ("modified", "created"):
            value = obj.get(name)
            if isinstance(value, str) and value[:19] > seconds:
                raise EnvelopeRejected(
                    RejectReason.INVALID_STIX,
                    f"{obj.get('id')}: {name} {value} is after the envelope was issued "
                    f"({stix_timestamp(state.header.issued_at)}) beyond the allowed clock skew",
                )


def _ranges(first: int, last: int) -> str:
    """first..last as "3, 4, 5" or, past five numbers, "3-40" (without listing them)."""
    if last - first < 5:
        return ", ".join(map(str, range(first, last + 1)))
    return f"{first}-{last}"
